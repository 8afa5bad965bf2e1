"""How a command group (``civreg acls …``, ``civreg schemas …``) is made: called without a subcommand it prints
its help rather than doing nothing."""

from __future__ import annotations

import typer

__all__ = ["command_group"]


def command_group(help_text: str) -> typer.Typer:
    """A Typer group with ``help_text`` that shows its help when no subcommand is given."""
    return typer.Typer(help=help_text, no_args_is_help=True)
