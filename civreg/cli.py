"""The ``civreg`` command. It only parses arguments and delegates; the work lives in the packages.

Exit codes: 0 done, 1 a project error (``civreg.errors.CivregError``: one line on stderr, ``error: ...``, never a
traceback), 2 a usage error; a few commands add their own, listed in their ``--help``.
"""

from __future__ import annotations

import sys
from typing import Any

import typer
from typer.core import TyperGroup

from civreg.errors import CivregError
from civreg.stopping import install_stop_handlers

__all__ = ["app", "main", "report_error"]


def report_error(exc: BaseException) -> int:
    """Print a project error as ``error: <first line>`` on stderr (further lines after it); its exit code."""
    text = str(exc).strip() or type(exc).__name__
    first, _, rest = text.partition("\n")
    typer.echo(f"error: {first}", err=True)
    if rest:
        typer.echo(rest, err=True)
    return exc.exit_code if isinstance(exc, CivregError) else 1


class _Civreg(TyperGroup):
    """Every command's project errors (and raw Kafka client errors) end as one line and an exit code, here once."""

    def invoke(self, ctx: Any) -> Any:  # click's Context (typer vendors click; its path is private)
        from confluent_kafka import KafkaException

        try:
            return super().invoke(ctx)
        except CivregError as exc:
            raise typer.Exit(report_error(exc)) from None
        except KafkaException as exc:
            from civreg.kafka_config import error_text

            raise typer.Exit(report_error(CivregError(f"Kafka: {error_text(exc)}"))) from None


app = typer.Typer(
    cls=_Civreg,
    name="civreg",
    help="Civil registration notification bus: publish registrations, run department consumers, operate the bus.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """Civil registration notification bus. Settings come from CIVREG_* environment variables (see README)."""


def _register_commands() -> None:
    """Attach each area's sub-commands."""
    # Sub-apps (one line each, alphabetical):
    from civreg.commands.acls import acls_app

    app.add_typer(acls_app, name="acls")
    from civreg.commands.agreements import agreements_app

    app.add_typer(agreements_app, name="agreements")
    from civreg.commands.bench import bench

    app.command("bench")(bench)
    from civreg.commands.consume import consume

    app.command("consume")(consume)
    from civreg.commands.route import disclosures, route

    app.command("disclosures")(disclosures)
    app.command("route")(route)
    from civreg.commands.dead_letters import dead_letters_app

    app.add_typer(dead_letters_app, name="dead-letters")
    from civreg.commands.demo import demo

    app.command("demo")(demo)
    from civreg.commands.dev import dev_app, topics_app

    app.add_typer(dev_app, name="dev")
    app.add_typer(topics_app, name="topics")
    from civreg.commands.letters import letters_app

    app.add_typer(letters_app, name="letters")
    from civreg.commands.publish import publish

    app.command("publish")(publish)
    from civreg.commands.relay import outbox_app, relay

    app.command("relay")(relay)
    app.add_typer(outbox_app, name="outbox")
    from civreg.commands.review import review_app

    app.add_typer(review_app, name="review")
    from civreg.commands.registers import registers_app, simulate_registers
    from civreg.commands.simulate import simulate_app

    app.add_typer(registers_app, name="registers")
    simulate_app.command("registers")(simulate_registers)
    app.add_typer(simulate_app, name="simulate")
    from civreg.commands.schemas import schemas_app

    app.add_typer(schemas_app, name="schemas")
    from civreg.commands.status import status

    app.command("status")(status)
    from civreg.commands.suppression import mailing_app, suppress_app

    app.add_typer(mailing_app, name="mailing")
    app.add_typer(suppress_app, name="suppress")
    from civreg.commands.trace import trace

    app.command("trace")(trace)


def main() -> None:
    """Console entry point."""
    if sys.argv[1:2] == ["consume"]:  # before the commands' imports: SIGTERM while starting is a clean stop
        install_stop_handlers()
    _register_commands()
    app()
