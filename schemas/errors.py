"""The root of the project's expected failures, so the CLI reports every one the same way.

It lives in the contract package, the bottom layer, so every layer above (the codec and registry client here, the
core, producers, consumers, the CLI) can join it without importing upwards. An expected failure (a registry or
broker away, a topic missing, a refused schema, a bad file) is a ``CivregError``; ``civreg`` prints its message as
one line on stderr (``error: ...``) and exits with its ``exit_code`` (1 unless the class says otherwise), never a
traceback. Other exceptions are bugs and keep theirs. Classes elsewhere join by inheriting from it
(``class RegistryError(CivregError, RuntimeError)``), so callers that catch the builtin type keep working.
"""

from __future__ import annotations

__all__ = ["EXIT_ERROR", "CivregError"]

EXIT_ERROR = 1
"""Exit code of a command that failed with a project error (2 is a usage error, as everywhere in click)."""


class CivregError(Exception):
    """An expected failure the user can act on; its message says what to do, without personal data."""

    exit_code: int = EXIT_ERROR
