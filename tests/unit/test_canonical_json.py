"""The content digest's JSON is the standard library's ``json.dumps(sort_keys=True, separators=(",", ":"))`` byte for
byte, whichever library wrote it: digests already stored must still match the same content."""

from __future__ import annotations

import hashlib
import json
import typing
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from consumers.runtime.dispatch import canonical_json, content_digest
from producers.simulation import simulate_registrations
from schemas.models import EVENT_MODELS

_SCALARS = st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | st.text(max_size=20)
_ASCII_SCALARS = st.none() | st.booleans() | st.integers() | st.text(st.characters(max_codepoint=0x7F), max_size=20)


def _documents(scalars: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    values = st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
        max_leaves=12,
    )
    return st.dictionaries(st.text(max_size=8), values, max_size=6)


def _standard(value: dict[str, Any]) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


@settings(max_examples=400)
@given(_documents(_SCALARS))
def test_any_document_is_written_as_the_standard_library_writes_it(value: dict[str, Any]) -> None:
    assert canonical_json(value) == _standard(value)


@settings(max_examples=400)
@given(_documents(_ASCII_SCALARS))
def test_ascii_documents_with_quotes_backslashes_and_control_characters_too(value: dict[str, Any]) -> None:
    assert canonical_json(value) == _standard(value)


def test_the_digest_of_simulated_events_is_the_one_stored_before() -> None:
    for event in simulate_registrations(500, 13):
        content = event.model_dump(mode="json", exclude={"event_id", "recorded_at"}, exclude_defaults=True)
        before = hashlib.sha256(_standard({"event_type": event.event_type, **content})).hexdigest()
        assert content_digest(event) == before


def _annotations(model: Any, seen: set[Any]) -> list[Any]:
    found: list[Any] = []
    for field in model.model_fields.values():
        stack = [field.annotation]
        while stack:
            annotation = stack.pop()
            found.append(annotation)
            stack.extend(typing.get_args(annotation))
            if hasattr(annotation, "model_fields") and annotation not in seen:
                seen.add(annotation)
                found.extend(_annotations(annotation, seen))
    return found


def test_no_event_field_is_a_float_whose_spelling_the_two_libraries_would_differ_on() -> None:
    for model in EVENT_MODELS.values():
        assert float not in _annotations(model, set()), model.__name__
