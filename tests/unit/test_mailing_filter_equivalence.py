"""The whole-file mailing filter decides every row exactly as ``decide`` does one recipient at a time.

``decide`` (with ``SuppressionList.find``) is the rule as written; ``decide_all`` is the same rule as joins of the
file against the list. Generated data from small awkward pools (tests/support/mailing_cases.py) makes names, dates,
postcodes and identifiers collide in every way the rules distinguish. A real SQLite store; PostgreSQL (its own
``ORDER BY entry_key`` collation) is covered in tests/integration/test_mailing_filter_backends.py.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from civreg.commands.suppression import mailing_app
from consumers.kit.frames import frame_from_rows
from consumers.runtime import SqliteStore
from consumers.suppression import Action, SuppressionList, decide, department, filter_mailing
from consumers.suppression.mailing import decide_all, recipient_from_row
from tests.support.mailing_cases import listed_entries, recipient_rows, store_entries

COLUMNS = ("recipient_id", "given_names", "family_name", "date_of_birth", "postcode", "nino", "nhs_number", "town")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqliteStore]:
    opened = SqliteStore(tmp_path_factory.mktemp("equivalence") / "suppression.sqlite3", department.schema)
    yield opened
    opened.close()


def row_by_row(store: SqliteStore, rows: list[dict[str, str]]) -> list[tuple[str, str, str]]:
    records = SuppressionList(store.read())
    decisions = [decide(records, recipient_from_row(row)) for row in rows]
    return [(d.action.value, d.matched_by, d.reason) for d in decisions]


def whole_file(store: SqliteStore, rows: list[dict[str, str]]) -> list[tuple[str, str, str]]:
    decided = decide_all(store.read(), frame_from_rows(rows, COLUMNS))
    return [(str(a), str(m), str(r)) for a, m, r in decided.iter_rows()]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(min_value=0, max_value=2**32 - 1), listed=st.integers(0, 9), size=st.integers(1, 60))
def test_whole_file_decisions_equal_row_by_row_decisions(store: SqliteStore, seed: int, listed: int, size: int) -> None:
    rng = random.Random(seed)
    with store.transaction() as tx:
        store_entries(tx, listed_entries(rng, listed))
    rows = recipient_rows(rng, size)
    assert whole_file(store, rows) == row_by_row(store, rows)


def test_a_large_generated_run_covers_every_kind_of_decision(store: SqliteStore) -> None:
    rng = random.Random(13)
    with store.transaction() as tx:
        store_entries(tx, listed_entries(rng, 9))
    rows = recipient_rows(rng, 3000)
    expected = row_by_row(store, rows)
    assert whole_file(store, rows) == expected
    kinds = {(action, matched_by) for action, matched_by, _ in expected}
    assert {Action.SEND.value, Action.SUPPRESS.value, Action.HOLD.value} <= {action for action, _ in kinds}
    assert {"nino", "nhs_number", "name_dob_postcode", "name_dob", "dob_postcode", "name_postcode", ""} <= {
        matched_by for _, matched_by in kinds
    }
    assert any(reason.startswith("cannot check: ") and "; " in reason for _, _, reason in expected)


def test_filter_mailing_writes_every_sendable_row_unchanged_and_reports_the_rest(
    store: SqliteStore, tmp_path: Path
) -> None:
    rng = random.Random(7)
    with store.transaction() as tx:
        store_entries(tx, listed_entries(rng, 9))
    rows = recipient_rows(rng, 500)
    path = tmp_path / "run.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    summary = filter_mailing(store, path, tmp_path / "send.csv", tmp_path / "report.csv")

    expected = row_by_row(store, rows)
    with (tmp_path / "send.csv").open(newline="", encoding="utf-8") as handle:
        sent = list(csv.DictReader(handle))
    assert sent == [row for row, (action, _, _) in zip(rows, expected, strict=True) if action == "send"]
    with (tmp_path / "report.csv").open(newline="", encoding="utf-8") as handle:
        reported = [tuple(line.values()) for line in csv.DictReader(handle)]
    assert reported == [
        (row["recipient_id"], *decision) for row, decision in zip(rows, expected, strict=True) if decision[0] != "send"
    ]
    assert summary.recipients == 500
    assert sum(summary.actions.values()) == 500
    assert summary.actions[Action.SEND] == len(sent)


def test_the_mailing_filter_command_splits_the_file_and_names_a_missing_column(
    store: SqliteStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CIVREG_POSTGRES_DSN", raising=False)
    rng = random.Random(3)
    with store.transaction() as tx:
        store_entries(tx, listed_entries(rng, 9))
    rows = recipient_rows(rng, 50)
    path = tmp_path / "run.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    app = typer.Typer()
    app.add_typer(mailing_app, name="mailing")
    args = ["mailing", "filter", str(path), "--database", str(store.path)]
    out, report = tmp_path / "send.csv", tmp_path / "report.csv"
    result = CliRunner().invoke(app, [*args, "--out", str(out), "--report", str(report)])
    assert result.exit_code == 0, result.output
    expected = row_by_row(store, rows)
    sends = sum(1 for action, _, _ in expected if action == "send")
    assert f"50 recipients; hold: {sum(1 for a, _, _ in expected if a == 'hold')}" in result.output
    with out.open(newline="", encoding="utf-8") as handle:
        assert len(list(csv.DictReader(handle))) == sends
    bad = tmp_path / "bad.csv"
    bad.write_text("recipient_id,name\nR1,Margaret Morgan\n", encoding="utf-8")
    refused = CliRunner().invoke(app, ["mailing", "filter", str(bad), "--database", str(store.path)])
    assert refused.exit_code != 0
    assert "missing column(s)" in refused.output
    assert "Margaret" not in refused.output
