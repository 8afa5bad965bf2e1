"""The project's expected failures as the core and CLI see them (the root, ``CivregError``, is in ``schemas.errors``).

An expected failure (a registry or broker away, a topic missing, a refused schema, a bad file) is a
``CivregError``; ``civreg`` prints its message as one line on stderr (``error: ...``) and exits with its
``exit_code`` (1 unless the class says otherwise), never a traceback. Other exceptions are bugs and keep theirs.
Classes elsewhere join by inheriting from it (``class RegistryError(CivregError, RuntimeError)``), so callers that
catch the builtin type keep working.
"""

from __future__ import annotations

from schemas.errors import EXIT_ERROR, CivregError

__all__ = ["EXIT_ERROR", "CivregError", "MissingTopics"]


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
