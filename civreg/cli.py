"""The ``civreg`` command. It only parses arguments and delegates; the work lives in the packages."""

from __future__ import annotations

import typer

__all__ = ["app", "main"]

app = typer.Typer(
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
    from civreg.commands.consume import consume

    app.command("consume")(consume)
    from civreg.commands.demo import demo

    app.command("demo")(demo)
    from civreg.commands.dev import dev_app, topics_app

    app.add_typer(dev_app, name="dev")
    app.add_typer(topics_app, name="topics")
    from civreg.commands.publish import publish

    app.command("publish")(publish)
    from civreg.commands.simulate import simulate_app

    app.add_typer(simulate_app, name="simulate")
    from civreg.commands.suppression import mailing_app, suppress_app

    app.add_typer(mailing_app, name="mailing")
    app.add_typer(suppress_app, name="suppress")


def main() -> None:
    """Console entry point."""
    _register_commands()
    app()
