"""The root of the project's expected failures, so the CLI reports every one the same way.

An expected failure (a registry or broker away, a topic missing, a refused schema, a bad file) is a
``CivregError``; ``civreg`` prints its message as one line on stderr (``error: ...``) and exits with its
``exit_code`` (1 unless the class says otherwise), never a traceback. Other exceptions are bugs and keep theirs.
Classes elsewhere join by inheriting from it (``class RegistryError(CivregError, RuntimeError)``), so callers that
catch the builtin type keep working.
"""

from __future__ import annotations

__all__ = ["EXIT_ERROR", "CivregError", "MissingTopics"]

EXIT_ERROR = 1
"""Exit code of a command that failed with a project error (2 is a usage error, as everywhere in click)."""


class CivregError(Exception):
    """An expected failure the user can act on; its message says what to do, without personal data."""

    exit_code: int = EXIT_ERROR


class MissingTopics(CivregError):
    """Topics a command needs do not exist on the cluster (not created yet, or another topic prefix)."""

    def __init__(self, missing: list[str], prefix: str) -> None:
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        subject = f"topics {shown} do not exist" if len(missing) > 1 else f"topic {shown} does not exist"
        super().__init__(
            f"{subject}: run 'civreg topics apply', or set CIVREG_TOPIC_PREFIX to the prefix the topics were "
            f"created with (now {prefix!r})"
        )
        self.missing = missing
