"""A back-fill progress bar for ``civreg consume``: total lag as the department catches up with the log.

Shown for ``--until-caught-up`` (a back-fill run), or once a running consumer is at least ``threshold`` messages
behind (a department added later, or one back from an outage); it closes when the department has caught up.
"""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

__all__ = ["BackfillBar"]


class BackfillBar:
    """``update(processed, behind)`` after each batch (``consumers.operations.running.ProgressCallback``)."""

    def __init__(self, department: str, *, always: bool, threshold: int = 10_000, console: Console | None = None):
        self.department = department
        self.always = always
        self.threshold = threshold
        self._console = console or Console(stderr=True)
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def update(self, processed: int, behind: int) -> None:
        """Start, advance or (caught up, when not a back-fill run) close the bar."""
        if self._progress is None:
            if behind == 0 or not (self.always or behind >= self.threshold):
                return
            self._progress = Progress(
                TextColumn(f"{self.department} back-fill"),
                BarColumn(),
                MofNCompleteColumn(),
                TaskProgressColumn(),
                TimeElapsedColumn(),
                TextColumn("eta"),
                TimeRemainingColumn(),
                console=self._console,
            )
            self._progress.start()
            self._task = self._progress.add_task("back-fill", total=behind)
        assert self._task is not None
        self._progress.update(self._task, completed=processed, total=processed + behind)
        if behind == 0 and not self.always:
            self.close()

    def close(self) -> None:
        """Stop the bar (it stays on screen with its final numbers)."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
            self._task = None

    def __enter__(self) -> BackfillBar:
        return self

    def __exit__(
        self, _type: type[BaseException] | None, _value: BaseException | None, _traceback: TracebackType | None
    ) -> None:
        self.close()
