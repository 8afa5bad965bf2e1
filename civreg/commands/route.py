"""``civreg route`` and ``civreg disclosures``: the router, and the citizen's disclosure report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from civreg.logs import configure_logging
from civreg.settings import load_settings

__all__ = ["disclosures", "route"]


def route(
    until_caught_up: Annotated[
        bool, typer.Option("--until-caught-up", help="Stop once every registration topic is routed to its end.")
    ] = False,
    batch_size: Annotated[int, typer.Option(min=1, max=10_000, help="Messages per Kafka transaction.")] = 500,
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING or ERROR.")] = "INFO",
    metrics_port: Annotated[
        int | None,
        typer.Option(min=0, max=65_535, help="Serve /metrics, /healthz and /readyz on this port; 0 = off."),
    ] = None,
) -> None:
    """Run the router: each department receives, on its own topic, only the events and fields its agreement allows.

    Every delivery is recorded in the disclosure ledger in the same Kafka transaction. SIGTERM or Ctrl-C finishes
    the transaction in hand and exits cleanly; a router killed at any instant neither loses nor duplicates anything.
    """
    from consumers.routing.router import run_router

    configure_logging(log_level)
    totals = run_router(
        load_settings(), until_caught_up=until_caught_up, batch_size=batch_size, metrics_port=metrics_port
    )
    routed = ", ".join(f"{d}: {n}" for d, n in sorted(totals.routed.items())) or "nothing new"
    typer.echo(f"routed {routed}; dead letters: {sum(totals.dead_letters.values())}")


def disclosures(
    entry: Annotated[str, typer.Option("--entry", help="The entry key, as 'civreg trace' shows it.")],
    html_path: Annotated[
        Path | None,
        typer.Option("--html", help="Write the printable page here (default: $CIVREG_HOME/disclosures/<entry>.html)."),
    ] = None,
) -> None:
    """Print who a registration was shared with, which fields, when and under which law; write it as HTML too."""
    from consumers.routing.disclosures import entry_disclosures, render_html, render_text

    settings = load_settings()
    found = entry_disclosures(settings, entry)
    typer.echo(render_text(entry, found), nl=False)
    path = html_path or settings.home / "disclosures" / f"{entry.replace('/', '_')}.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(entry, found), encoding="utf-8")
    typer.echo(f"printable page: {path}")
