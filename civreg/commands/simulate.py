"""``civreg simulate``: synthetic registrations and mailing lists for demos, tests and back-fill rehearsals.

Commands only parse arguments and delegate to ``producers.simulation`` and ``producers.mailing_list``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Annotated, TextIO

import typer

from producers.simulation import DEFAULT_START

__all__ = ["simulate_app", "simulation_errors"]

simulate_app = typer.Typer(
    help="Generate deterministic synthetic registrations and mailing lists (no real personal data).",
    no_args_is_help=True,
)

Count = Annotated[
    int, typer.Option(min=1, help="How many events to generate (about 4,000 is one day of England and Wales).")
]
Seed = Annotated[int, typer.Option(help="Random seed: the same seed, count and start give the same output.")]
Start = Annotated[
    str,
    typer.Option(
        help="First day of the simulated registrations (YYYY-MM-DD); a run that would pass today stops (exit 1)."
    ),
]
_DEFAULT_START = DEFAULT_START.isoformat()


@contextmanager
def _output(path: Path) -> Iterator[TextIO]:
    """The file at ``path``, or standard output for ``-``."""
    if str(path) == "-":
        yield sys.stdout
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        yield handle


@contextmanager
def simulation_errors() -> Iterator[None]:
    """A simulation that would date registrations after today ends with one line and exit 1, not a traceback."""
    from producers.simulation import SimulationReachesToday

    try:
        yield
    except SimulationReachesToday as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


def _start_date(start: str) -> date:
    try:
        return date.fromisoformat(start)
    except ValueError:
        raise typer.BadParameter("must be a date, YYYY-MM-DD", param_hint="--start") from None


@simulate_app.command("registrations")
def registrations(
    count: Count = 10_000,
    seed: Seed = 0,
    start: Start = _DEFAULT_START,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Write JSONL here ('-' for standard output): one {\"event_type\": ...} per line."),
    ] = None,
    publish: Annotated[
        bool, typer.Option("--publish", help="Publish to the bus (CIVREG_* settings) instead of writing a file.")
    ] = False,
) -> None:
    """Generate births, deaths, marriages and civil partnerships with their corrections and voids, in time order.

    A death of a married person or civil partner usually names the surviving spouse or civil partner.
    """
    from producers.simulation import publish_events, simulate_registrations, write_jsonl

    if (out is None) == (not publish):
        raise typer.BadParameter("give exactly one of --out FILE.jsonl or --publish", param_hint="--out/--publish")
    with simulation_errors():
        events = simulate_registrations(count, seed, _start_date(start))
        if out is not None:
            with _output(out) as handle:
                written = write_jsonl(events, handle)
            typer.echo(f"wrote {written} events to {out}", err=True)
            return
    from civreg.settings import load_settings
    from producers.publisher import Publisher  # type: ignore[import-not-found,unused-ignore]

    with simulation_errors(), Publisher(load_settings()) as publisher:
        published = publish_events(events, publisher)
    typer.echo(f"published {published} events", err=True)


@simulate_app.command("mailing-list")
def mailing_list(
    out: Annotated[Path, typer.Option("--out", help="Mailing-list CSV to write ('-' for standard output).")],
    size: Annotated[int, typer.Option(min=1, help="Number of recipients.")] = 1_000,
    count: Annotated[
        int, typer.Option(min=1, help="Events of the simulated registrations the recipients are drawn from.")
    ] = 10_000,
    seed: Seed = 0,
    start: Start = _DEFAULT_START,
    deceased_share: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Share of recipients whose death was registered.")
    ] = 0.1,
    key: Annotated[
        Path | None,
        typer.Option(help="Also write the answer key (recipient_id, status, person_id) to this CSV."),
    ] = None,
) -> None:
    """Write a mailing list drawn from the people of `simulate registrations` with the same --count, --seed, --start.

    It mixes living people, people whose death was registered (some with a NINO, some with only name and address),
    living namesakes of the dead, and people whose death registration was later voided (they must still be sent).
    """
    from producers.mailing_list import simulate_mailing_list, write_mailing_list, write_mailing_list_key
    from producers.simulation import simulate_population

    with simulation_errors():
        population = simulate_population(count, seed, _start_date(start))
    recipients = simulate_mailing_list(population, size, seed, deceased_share=deceased_share)
    with _output(out) as handle:
        written = write_mailing_list(recipients, handle)
    if key is not None:
        with _output(key) as handle:
            write_mailing_list_key(recipients, handle)
    typer.echo(f"wrote {written} recipients to {out}" + (f" and the answer key to {key}" if key else ""), err=True)
