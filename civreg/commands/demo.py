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
    log_level: Annotated[
        str,
        typer.Option(
            "--log-level",
            help="Level of the services' log lines on stderr: DEBUG, INFO, WARNING or ERROR (personal data is "
            "redacted at every level).",
        ),
    ] = "WARNING",
    keep_running: Annotated[
        bool,
        typer.Option(
            "--keep-running", help="Leave the local broker running afterwards, and print the settings to use it."
        ),
    ] = False,
    plaintext: Annotated[
        bool,
        typer.Option(
            "--plaintext",
            help="Run the local broker without TLS, SASL or ACLs (a broker already set up secure stays secure).",
        ),
    ] = False,
    show_department: Annotated[
        str,
        typer.Option(
            "--show-department",
            help="The department whose topic is sampled at the end: one message decoded beside its agreement.",
        ),
    ] = "dvla",
) -> None:
    """Run the whole bus locally: publish simulated registrations, route, run all six services, send letters safely.

    Starts the local broker secured (TLS, one SASL/SCRAM login per principal, ACLs from the agreements; passwords in
    a 0600 file under CIVREG_HOME, never printed) and the schema registry, unless CIVREG_BOOTSTRAP_SERVERS /
    CIVREG_REGISTRY_URL name your own. Each step runs as its principal: the register office publishes simulated
    registrations, the router writes each department's agreed events and fields to its own topic, each department
    reads only its topic with its own login, an operator traces one death and reads every group's lag. It also
    loads each department's simulated register, filters a mailing run, runs each department's letters, prints
    every outcome and every letter held back, and one department's message decoded beside its agreement. Exit
    status 2 if any letter went to a person the simulation says is dead, 1 (one line on stderr) if the broker,
    registry or topics fail. With --keep-running it prints the CIVREG_* settings that point other commands at the
    stack and topics it left.
    """
    from civreg.logs import configure_logging
    from deploy.local.demo import run_demo

    configure_logging(log_level, json=False, client_level="DEBUG" if log_level.upper() == "DEBUG" else "ERROR")
    # Broker, registry and topic failures are CivregErrors: one line on stderr and exit status 1 (civreg.cli).
    summary = run_demo(
        load_settings(),
        count=count,
        mailing_size=mailing_size,
        seed=seed,
        keep_running=keep_running,
        secure=not plaintext,
        sample_department=show_department,
    )
    if summary.letters_to_deceased_sent or summary.sample_outside_agreement:
        raise typer.Exit(2)
