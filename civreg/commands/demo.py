"""``civreg demo``: run the whole bus locally and print what happened."""

from __future__ import annotations

from typing import Annotated

import typer

from civreg.settings import load_settings

__all__ = ["demo"]


def demo(
    count: Annotated[int, typer.Option(min=100, max=1_000_000, help="Simulated registrations to publish.")] = 3000,
    mailing_size: Annotated[int, typer.Option(min=10, help="Recipients in the simulated mailing run.")] = 2000,
    seed: Annotated[int, typer.Option(help="Seed of the simulation (same seed, same registrations).")] = 2016,
    keep_running: Annotated[
        bool, typer.Option("--keep-running", help="Leave the local broker running afterwards.")
    ] = False,
) -> None:
    """Start the local broker, publish simulated registrations, run the suppression service, filter a mailing run.

    Prints events by type, the service's outcome for each, and the letters it held back. Uses the local
    embedded broker unless CIVREG_BOOTSTRAP_SERVERS names your own cluster.
    """
    from civreg.logs import configure_logging
    from deploy.demo import run_demo
    from deploy.local_kafka import LocalKafkaError

    configure_logging("WARNING", json=False, client_level="ERROR")
    try:
        summary = run_demo(
            load_settings(), count=count, mailing_size=mailing_size, seed=seed, keep_running=keep_running
        )
    except LocalKafkaError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    if summary.letters_to_deceased_sent:
        raise typer.Exit(2)
