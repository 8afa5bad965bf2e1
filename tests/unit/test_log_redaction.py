"""Redaction by design (issue 11 item 5): whatever a log call passes in, no personal value reaches the output.

The project's own logging set-up (``civreg.logs.configure_logging``) at DEBUG, both renderers; every example event
logged as a model, a dict, JSON text, a repr, in the message, in bound context and inside exceptions (a pydantic
``ValidationError`` quoting its input too). Ids, topics, partitions, offsets, counts and departments stay readable.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import structlog
from pydantic import ValidationError

from civreg.logs import REDACTED, configure_logging, get_logger, is_personal_key, redact_text, redact_value
from schemas.identifiers import nhs_check_digit
from schemas.models import DeathDetails, Event
from tests.support.factories import all_event_examples
from tests.support.personal_data import leaks, personal_values


@pytest.fixture
def logging_configured() -> Iterator[None]:
    """The project's logging at DEBUG for one test, then the previous structlog configuration again."""
    saved = structlog.get_config()
    yield
    structlog.contextvars.clear_contextvars()
    structlog.configure(**saved)


def log_every_way(event: Event) -> None:
    """Log ``event`` in every shape a careless call might use."""
    log = get_logger("redaction-test")
    dumped = event.model_dump(mode="json")
    text = event.model_dump_json()
    log.debug("as-model", payload=event, topic="civreg.registrations.death", partition=2, offset=41, count=3)
    log.debug("as-dict", record=dumped, python_dict=event.model_dump(), items=[dumped, (dumped,)])
    log.debug("as-json", body=text, department="tax", event_id=str(event.event_id))
    log.debug(f"in the message: {text}")
    log.debug(f"as a repr in the message: {event!r} and {event.model_dump()!r}")
    log.bind(bound=event).debug("bound")
    structlog.contextvars.bind_contextvars(context_record=dumped)
    log.debug("context")
    structlog.contextvars.clear_contextvars()
    for message in (text, repr(event), repr(event.model_dump())):
        try:
            raise ValueError(f"could not handle {message}")
        except ValueError as exc:
            log.exception("failed", error=str(exc), error_object=exc)
    try:
        details = next(
            value for value in dumped.values() if isinstance(value, dict) and "date_of_registration" in value
        )
        DeathDetails.model_validate({**details, "date_of_registration": "not a date"})
    except (ValidationError, StopIteration) as exc:
        log.warning("invalid", error=str(exc), exc_info=True)


@pytest.mark.parametrize("as_json", [True, False], ids=["json", "console"])
def test_a_full_event_logged_at_debug_shows_none_of_its_personal_values(
    logging_configured: None, capsys: pytest.CaptureFixture[str], as_json: bool
) -> None:
    configure_logging("DEBUG", json=as_json)
    events = all_event_examples()
    for event in events:
        log_every_way(event)
    captured = capsys.readouterr()
    output = captured.out + captured.err
    values = set().union(*(personal_values(event.model_dump(mode="json")) for event in events))
    assert len(values) > 20  # the examples carry names, dates of birth, every identifier and addresses
    assert leaks(output, values) == []
    assert REDACTED in output
    # What operators need stays readable.
    for readable in ("civreg.registrations.death", "offset", "tax", *(str(event.event_id) for event in events)):
        assert readable in output
    assert "41" in output and "could not handle" in output and "Leeds Register Office" in output


def test_personal_keys_and_readable_keys() -> None:
    for key in ("given_names", "Family_Name", "name", "names_seen", "surname_at_birth", "party_1", "partner_2",
                "surviving_partner", "date_of_birth", "dob", "nino", "nhs_number", "driving_licence_number",
                "passport_number", "address", "lines", "postcode", "town", "mother", "child", "deceased", "person",
                "place_of_death"):  # fmt: skip
        assert is_personal_key(key), key
    readable: tuple[object, ...] = ("event", "event_id", "event_type", "topic", "topics", "partition", "partitions",
                                    "offset", "count", "department", "group", "error", "reason", "entry", "version",
                                    "component", 3, None)  # fmt: skip
    for other in readable:
        assert not is_personal_key(other), other


def test_identifiers_are_masked_anywhere_in_text() -> None:
    first_nine = next(str(n) for n in range(943_476_590, 943_476_700) if nhs_check_digit(str(n)) is not None)
    valid_nhs = f"{first_nine}{nhs_check_digit(first_nine)}"
    wrong_check = f"{first_nine}{(nhs_check_digit(first_nine) or 0) + 1 if nhs_check_digit(first_nine) != 9 else 0}"
    text = (
        f"nino JH112233B, spaced jh 11 22 33 b; nhs {valid_nhs} and {valid_nhs[:3]} {valid_nhs[3:6]} {valid_nhs[6:]};"
        " postcode LS1 4AP or SW1A2AA; licence MORGA753116SM9IJ; offset 12345; wrong check "
        f"{wrong_check}; event 0c9f3c56-1d0e-4a55-9e7c-3f9b1c2d4e5f"
    )
    masked = redact_text(text)
    for value in ("JH112233B", "jh 11 22 33 b", valid_nhs, "LS1 4AP", "SW1A2AA", "MORGA753116SM9IJ", valid_nhs[6:]):
        assert value not in masked
    assert "offset 12345" in masked and wrong_check in masked and "0c9f3c56-1d0e-4a55-9e7c-3f9b1c2d4e5f" in masked


def test_values_under_personal_keys_are_masked_whole_in_text_and_structures() -> None:
    assert redact_text("given_names='Ann Marie' sex=F topic=t") == f"given_names={REDACTED} sex={REDACTED}"
    assert redact_text('{"person": {"a": [1, "}"]}, "offset": 3}') == f'{{"person": {REDACTED}, "offset": 3}}'
    assert redact_text("deceased=Person(given_names='Ann', address=Address(lines=['1 High St'])), version=2") == (
        f"deceased={REDACTED}, version=2"
    )
    tree = {"topic": "t", "partition": 1, "party_1": {"x": 1}, "nino": None, "n": [{"town": "Leeds"}]}
    assert redact_value(tree) == {
        "topic": "t",
        "partition": 1,
        "party_1": REDACTED,
        "nino": None,
        "n": [{"town": REDACTED}],
    }
