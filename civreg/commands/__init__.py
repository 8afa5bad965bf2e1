"""Typer sub-apps: each parses its arguments and delegates to producers, consumers or deploy."""
