"""Publish a JSONL or CSV file of events: every row is validated first, so a file with bad rows publishes nothing.

Why one validating pass and a spool: the pass validates every row and keeps only counts, the first errors and the
set of event ids (for duplicates), and encodes each valid event to its Avro body (``Codec.encode_body``) into a
spool: memory up to 64 MiB, a temporary file beyond. Publishing then sends those bytes, adding each subject's
schema id, so no row is parsed, validated or serialised twice, and what is published is exactly what was
validated. Memory is bounded by the id set (about 100 bytes an event), not 15 million models of kilobytes each;
the spool takes about the Avro size of the file on disk. Once an invalid row is met in all-or-nothing mode
nothing will be published, so encoding stops. The file's size and modification time are compared before and
after validating: a file written to meanwhile was not validated as one, and is not published.

A JSONL file of 8 MiB or more is validated on every core (up to four worker processes): validation is most of a
publish's time, and the rows are independent but for the duplicate-id rule, which this process keeps in file
order (see "validating on several cores" below).

Re-running a file after a partial failure is safe: every event keeps its ``event_id`` and departments ignore ids
they have already applied.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import struct
import tempfile
import time
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from enum import IntEnum
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, Self

from confluent_kafka import KafkaException
from rich import filesize
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from civreg.logs import get_logger
from civreg.settings import Settings
from producers.event_files import (
    EventFileReader,
    FileFormat,
    Row,
    RowError,
    ValidationReport,
    _bounded_lines,
    jsonl_raw,
    validate_file,
    with_duplicate_check,
)
from producers.publisher import DeliveryReport, Publisher, PublishError
from producers.stage_times import StageTimes
from schemas.catalogue import EVENT_TYPES
from schemas.codec import Codec
from schemas.models import Event
from schemas.registry import RegistryError
from schemas.topics import Register

__all__ = [
    "ExitCode",
    "FilePublishResult",
    "PublishProgress",
    "RichPublishProgress",
    "publish_file",
    "publish_file_and_report",
    "render_result",
]

log = get_logger(__name__)
_PROGRESS_EVERY = 1000
_SPOOL_IN_MEMORY = 64 * 1024 * 1024
_SPOOLED = struct.Struct(">BBHI")  # event type index, register index, key length, body length; then id, key, body
_REGISTERS = tuple(Register)
_FAILURES_KEPT = 1000
_FAILURES_SHOWN = 20


class ExitCode(IntEnum):
    """What ``civreg publish`` exits with (2 is the CLI's own: bad arguments)."""

    OK = 0
    """Every row valid and every event delivered (or, with --dry-run, every row valid)."""
    INVALID = 1
    """Invalid rows (or no rows): nothing was published."""
    PARTIAL = 3
    """--allow-partial: the valid rows were published, the invalid ones were not."""
    NOT_PUBLISHED = 4
    """Kafka unreachable, topics missing, events not delivered, the file changed, or interrupted."""


class PublishProgress(Protocol):
    """Where progress goes: a rich progress bar on a terminal, nothing in tests."""

    def phase(self, description: str, total: int, unit: str) -> None:
        """Start a phase with ``total`` units (``bytes`` while validating, ``events`` while publishing)."""

    def advance_to(self, completed: int) -> None:
        """Units done so far in the current phase."""


class _NoProgress:
    def phase(self, description: str, total: int, unit: str) -> None:
        pass

    def advance_to(self, completed: int) -> None:
        pass


class RichPublishProgress:
    """A rich progress bar per phase; a context manager (the bars live while it is open)."""

    def __init__(self, console: Console) -> None:
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[counts]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self._task: TaskID | None = None
        self._unit = ""
        self._total = 0

    def __enter__(self) -> Self:
        self._progress.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._progress.stop()

    def phase(self, description: str, total: int, unit: str) -> None:
        """Start a new bar."""
        self._unit, self._total = unit, total
        self._task = self._progress.add_task(description, total=total, counts=self._counts(0))

    def advance_to(self, completed: int) -> None:
        """Move the current bar."""
        if self._task is not None:
            self._progress.update(self._task, completed=completed, counts=self._counts(completed))

    def _counts(self, completed: int) -> str:
        if self._unit == "bytes":
            return f"{filesize.decimal(completed)}/{filesize.decimal(self._total)}"
        return f"{completed:,}/{self._total:,} {self._unit}"


class _Spool:
    """The valid rows of the validating pass, each encoded once, in file order: what the publishing pass sends."""

    def __init__(self, codec: Codec, allow_partial: bool, encode: bool, timings: StageTimes | None = None) -> None:
        self._codec = codec
        self.timings = timings
        self._encode = encode
        self._allow_partial = allow_partial
        self.encoding = encode
        """Whether valid rows are encoded at all (not in a dry run)."""
        self._file: Any = tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY)  # noqa: SIM115 - closed by close
        self.count = 0

    def add(self, row: Row) -> None:
        """Encode a valid row; after an invalid one in all-or-nothing mode, stop (nothing will be published)."""
        event = row.event
        if event is None:
            self._encode = self._encode and self._allow_partial
            return
        if not self._encode:
            return
        started = time.perf_counter() if self.timings is not None else 0.0
        self._file.write(_spool_record(self._codec, event))
        self.count += 1
        if self.timings is not None:
            self.timings.encode += time.perf_counter() - started

    def add_encoded(self, record: bytes | None) -> None:
        """A row's spool record encoded elsewhere (``_spool_record``), or None for an invalid row: as ``add``."""
        if record is None:
            self._encode = self._encode and self._allow_partial
            return
        if not self._encode:
            return
        self._file.write(record)
        self.count += 1

    def __iter__(self) -> Iterator[tuple[str, Register, str, bytes, bytes]]:
        """(event type, register, event id, key, body) of each spooled event."""
        read = self._file.read
        self._file.seek(0)
        for _ in range(self.count):
            type_index, register_index, key_size, body_size = _SPOOLED.unpack(read(_SPOOLED.size))
            event_id = read(36).decode()
            yield EVENT_TYPES[type_index], _REGISTERS[register_index], event_id, read(key_size), read(body_size)

    def close(self) -> None:
        self._file.close()


_TYPE_INDEX = {event_type: index for index, event_type in enumerate(EVENT_TYPES)}
_REGISTER_INDEX = {register: index for index, register in enumerate(_REGISTERS)}


def _spool_record(codec: Codec, event: Event) -> bytes:
    """One event as the spool keeps it: head (type, register, key and body sizes), event id, key, Avro body."""
    key, body, event_id = event.entry.key.encode(), codec.encode_body(event), str(event.event_id).encode()
    head = _SPOOLED.pack(_TYPE_INDEX[event.event_type], _REGISTER_INDEX[event.family], len(key), len(body))
    return head + event_id + key + body


# ---- validating on several cores ------------------------------------------------------------------------------
#
# Why: validating every row (the models' Python validators) is most of a publish's time, and rows are independent
# but for the duplicate-id rule. Worker processes parse, validate and encode chunks of lines; this process reads the
# lines, applies the duplicate rule in file order, counts, and writes the spool, so the report, the errors (same
# lines, fields, rules, order) and the spool are exactly those of one process. Chunks in flight are bounded, so
# memory stays bounded whatever the file's size. JSONL only: a CSV row's meaning depends on the header.

_PARALLEL_FROM_BYTES = 8 * 1024 * 1024
"""Below this (about 7,000 events) starting the workers costs more than they save."""
_MAX_WORKERS = 4
_CHUNK_LINES = 256
_CHUNKS_IN_FLIGHT_PER_WORKER = 4

_Checked = tuple[int, tuple[RowError, ...], bytes | None, str, Register | None, bytes | None]
"""(line, errors, event id bytes, event type, register, spool record): a row as a worker returns it."""

_worker: tuple[EventFileReader, Codec, bool] | None = None


def _workers(reader: EventFileReader, asked: int | None) -> int:
    if reader.file_format is not FileFormat.JSONL:
        return 1
    if asked is not None:
        return max(asked, 1)
    if reader.size < _PARALLEL_FROM_BYTES:
        return 1
    return max(1, min(os.cpu_count() or 1, _MAX_WORKERS))


def _start_worker(path: str, encode: bool) -> None:
    global _worker  # noqa: PLW0603 - one reader and codec per worker process
    # The Avro body does not depend on the schema id (the header is added when publishing), so the local
    # catalogue's codec encodes exactly what the caller's would.
    _worker = (EventFileReader(Path(path), FileFormat.JSONL), Codec(), encode)


def _check_lines(lines: list[tuple[int, bytes | None]]) -> tuple[list[_Checked], float, float, float]:
    """Parse, validate and encode each line of a chunk; also the seconds spent parsing, validating and encoding."""
    assert _worker is not None
    reader, codec, encode = _worker
    clock = time.perf_counter
    parse = validate = encoding = 0.0
    checked: list[_Checked] = []
    for number, line in lines:
        started = clock()
        raw = jsonl_raw(number, line)
        parsed = clock()
        parse += parsed - started
        if raw is None:
            continue
        row, event_id = reader.check(raw)
        validated = clock()
        validate += validated - parsed
        event = row.event
        if event is None:
            checked.append((number, row.errors, event_id, "", None, None))
            continue
        record = _spool_record(codec, event) if encode else b""
        checked.append((number, (), event_id, event.event_type, event.family, record))
        encoding += clock() - validated
    return checked, parse, validate, encoding


def _chunks(reader: EventFileReader, handle: Any) -> Iterator[list[tuple[int, bytes | None]]]:
    chunk: list[tuple[int, bytes | None]] = []
    for number, (line, size) in enumerate(_bounded_lines(handle), start=1):
        reader.bytes_read += size
        chunk.append((number, line))
        if len(chunk) == _CHUNK_LINES:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _validate_in_parallel(
    reader: EventFileReader, spool: _Spool, workers: int, max_errors: int | None, progress: PublishProgress
) -> ValidationReport:
    """``validate_file`` with the rows parsed, validated and encoded by ``workers`` processes (see above)."""
    report = ValidationReport(reader.path, reader.file_format, max_errors)
    seen: dict[bytes, int] = {}
    timings = spool.timings
    started = time.perf_counter()
    context = multiprocessing.get_context("fork")  # workers start at once, the models already imported
    reader.bytes_read = 0
    with (
        reader.path.open("rb") as handle,
        context.Pool(workers, initializer=_start_worker, initargs=(str(reader.path), spool.encoding)) as pool,
    ):
        pending: deque[Any] = deque()
        chunks = _chunks(reader, handle)
        for chunk in itertools.chain(chunks, [None]):
            if chunk is not None:
                pending.append(pool.apply_async(_check_lines, (chunk,)))
                if len(pending) < workers * _CHUNKS_IN_FLIGHT_PER_WORKER:
                    continue
            while pending and (chunk is None or len(pending) >= workers * _CHUNKS_IN_FLIGHT_PER_WORKER):
                checked, parse, validate, encoding = pending.popleft().get()
                if timings is not None:
                    timings.parse += parse
                    timings.validate += validate
                    timings.encode += encoding
                for number, errors, event_id, event_type, register, record in checked:
                    row = with_duplicate_check(Row(number, None, errors), event_id, seen)
                    if register is None or row.errors:
                        report.add(row)
                        spool.add_encoded(None)
                    else:
                        report.add_valid(event_type, register)
                        spool.add_encoded(record)
                progress.advance_to(reader.bytes_read)
    if timings is not None:
        timings.workers = workers
        timings.validating_wall = time.perf_counter() - started
    return report


@dataclass(frozen=True)
class FilePublishResult:
    """What happened to a file: its validation, what was delivered, and why it stopped if it did."""

    report: ValidationReport
    allow_partial: bool = False
    dry_run: bool = False
    published: bool = False
    """Whether the publishing pass ran at all."""
    produced: int = 0
    delivered_by_type: Mapping[str, int] = field(default_factory=dict)
    failed_by_type: Mapping[str, int] = field(default_factory=dict)
    failures: tuple[DeliveryReport, ...] = ()
    unconfirmed: int = 0
    problem: str | None = None

    @property
    def delivered(self) -> int:
        """Events Kafka acknowledged."""
        return sum(self.delivered_by_type.values())

    @property
    def failed(self) -> int:
        """Events Kafka refused or could not deliver."""
        return sum(self.failed_by_type.values())

    @property
    def exit_code(self) -> ExitCode:
        """The CLI's exit code for this outcome."""
        if self.problem is not None or self.failed or self.unconfirmed:
            return ExitCode.NOT_PUBLISHED
        if self.report.valid == 0 or (self.report.invalid and not self.allow_partial):
            return ExitCode.INVALID
        return ExitCode.PARTIAL if self.report.invalid else ExitCode.OK


def _fingerprint(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns


def publish_file(
    path: Path,
    settings: Settings,
    *,
    file_format: FileFormat | None = None,
    allow_partial: bool = False,
    dry_run: bool = False,
    max_errors: int | None = 1000,
    codec: Codec | None = None,
    progress: PublishProgress | None = None,
    flush_timeout: float = 300.0,
    connect_timeout: float = 10.0,
    producer_overrides: dict[str, Any] | None = None,
    timings: StageTimes | None = None,
    workers: int | None = None,
) -> FilePublishResult:
    """Validate every row of ``path``; then, unless a row is invalid (and not ``allow_partial``) or ``dry_run``,
    publish the valid rows and wait for Kafka to confirm them. Never raises for bad rows or Kafka trouble: the
    result says what happened. ``timings``, when given, gathers the time of each stage (``civreg bench``).
    ``workers``: processes validating a JSONL file (None: one per core, up to ``_MAX_WORKERS``, for a file of
    ``_PARALLEL_FROM_BYTES`` or more; 1: in this process)."""
    progress = progress or _NoProgress()
    reader = EventFileReader(path, file_format, timings=timings)
    before = _fingerprint(path)
    progress.phase("Validating", reader.size, "bytes")
    spool = _Spool(codec or Codec(), allow_partial, encode=not dry_run, timings=timings)
    try:
        workers = _workers(reader, workers)
        if workers > 1:
            report = _validate_in_parallel(reader, spool, workers, max_errors, progress)
        else:
            report = validate_file(
                path, reader=reader, max_errors=max_errors, on_progress=progress.advance_to, on_row=spool.add
            )
        log.info("event file validated", file=str(path), rows=report.rows, valid=report.valid, invalid=report.invalid)
        result = FilePublishResult(report, allow_partial, dry_run)
        if dry_run or report.valid == 0 or (report.invalid and not allow_partial):
            return result
        if _fingerprint(path) != before or spool.count != report.valid:
            return replace(result, problem="the file changed while it was validated; nothing was published")
        return _publish_spool(
            path,
            spool,
            settings=settings,
            result=result,
            codec=codec,
            progress=progress,
            flush_timeout=flush_timeout,
            connect_timeout=connect_timeout,
            producer_overrides=producer_overrides,
        )
    finally:
        spool.close()


def _publish_spool(
    path: Path,
    spool: _Spool,
    *,
    settings: Settings,
    result: FilePublishResult,
    codec: Codec | None,
    progress: PublishProgress,
    flush_timeout: float,
    connect_timeout: float,
    producer_overrides: dict[str, Any] | None,
) -> FilePublishResult:
    """The publishing pass: check Kafka and the topics, send every spooled event, wait for Kafka's answers."""
    report = result.report
    try:
        publisher = Publisher(settings, codec, config_overrides=producer_overrides)
    except RegistryError as exc:
        return replace(result, problem=f"cannot use the schema registry ({exc}); nothing was published")
    try:
        missing = publisher.missing_topics(report.valid_by_register, timeout=connect_timeout)
    except KafkaException as exc:
        where = settings.effective_bootstrap_servers
        return replace(result, problem=f"cannot reach Kafka at {where} ({exc}); nothing was published")
    if missing:
        return replace(result, problem=f"topic(s) {', '.join(missing)} do not exist; nothing was published")

    progress.phase("Publishing", report.valid, "events delivered")
    failures: list[DeliveryReport] = []
    started = time.perf_counter()
    produced, problem = _publish_rows(spool, publisher, failures, progress)
    queued = time.perf_counter()
    unconfirmed = 0
    try:
        publisher.flush(flush_timeout)
    except PublishError as exc:
        unconfirmed = exc.unconfirmed
        failures.extend(exc.failures)
    if spool.timings is not None:
        spool.timings.produce += queued - started
        spool.timings.acknowledge += time.perf_counter() - queued
    progress.advance_to(publisher.delivered)
    result = replace(
        result,
        published=True,
        produced=produced,
        delivered_by_type=dict(publisher.delivered_by_type),
        failed_by_type=dict(publisher.failed_by_type),
        failures=tuple(failures[:_FAILURES_KEPT]),
        unconfirmed=unconfirmed,
        problem=problem,
    )
    log.info(
        "event file published",
        file=str(path),
        delivered=result.delivered,
        failed=result.failed,
        unconfirmed=unconfirmed,
        exit_code=int(result.exit_code),
    )
    return result


def _publish_rows(
    spool: _Spool, publisher: Publisher, failures: list[DeliveryReport], progress: PublishProgress
) -> tuple[int, str | None]:
    """Queue every spooled event. Returns how many were queued and why it stopped early, if it did."""
    produced = 0
    publish = publisher.publish_encoded
    try:
        for event_type, register, event_id, key, body in spool:
            try:
                publish(event_type, register, event_id, key, body)
            except PublishError as exc:  # refused when queued: counted by the publisher, listed in the summary
                if len(failures) < _FAILURES_KEPT:
                    failures.extend(exc.failures)
            produced += 1
            if produced % _PROGRESS_EVERY == 0:
                progress.advance_to(publisher.delivered)
    except KeyboardInterrupt:
        return produced, f"interrupted after queueing {produced} events"
    return produced, None


# ---- rendering ------------------------------------------------------------------------------------------------


def _error_table(report: ValidationReport) -> Table:
    table = Table(title=f"Invalid rows in {report.path.name}", title_justify="left")
    table.add_column("Line", justify="right")
    table.add_column("Field")
    table.add_column("Rule")
    for error in report.errors:
        table.add_row(str(error.line), Text(error.field), Text(error.rule))
    return table


def _summary_table(result: FilePublishResult) -> Table:
    report = result.report
    table = Table(title="Summary", title_justify="left")
    table.add_column("Event type")
    table.add_column("Valid rows", justify="right")
    if result.published:
        table.add_column("Delivered", justify="right")
        table.add_column("Failed", justify="right")
    types = sorted(set(report.valid_by_type) | set(result.delivered_by_type) | set(result.failed_by_type))
    for event_type in types:
        cells = [event_type, str(report.valid_by_type[event_type])]
        if result.published:
            cells += [str(result.delivered_by_type.get(event_type, 0)), str(result.failed_by_type.get(event_type, 0))]
        table.add_row(*cells)
    total: list[Text | str] = [Text("Total", style="bold"), str(report.valid)]
    if result.published:
        total += [str(result.delivered), str(result.failed)]
    table.add_row(*total, end_section=True)
    table.add_row("Invalid rows", str(report.invalid))
    return table


def _outcome(result: FilePublishResult) -> Text:
    report = result.report
    code = result.exit_code
    if result.problem is not None:
        return Text(f"Stopped: {result.problem}.", style="bold red")
    if code is ExitCode.NOT_PUBLISHED:
        text = f"{result.failed} event(s) not delivered"
        if result.unconfirmed:
            text += f" and {result.unconfirmed} unconfirmed when the wait ended"
        return Text(f"{text}. Publishing the file again is safe: departments ignore events they have seen.", "bold red")
    if report.rows == 0:
        return Text("The file has no events; nothing was published.", style="bold red")
    if code is ExitCode.INVALID:
        hint = f"; use --allow-partial to publish the {report.valid} valid row(s)" if report.valid else ""
        return Text(f"Nothing was published: {report.invalid} invalid row(s){hint}.", style="bold red")
    verb = "would be published (dry run)" if result.dry_run else "delivered"
    if code is ExitCode.PARTIAL:
        return Text(
            f"{report.valid} valid event(s) {verb}; {report.invalid} invalid row(s) were not published.",
            style="bold yellow",
        )
    return Text(f"All {report.valid} event(s) {verb}.", style="bold green")


def render_result(result: FilePublishResult, console: Console) -> None:
    """Print the error table (if any), failed deliveries (if any), the summary and the outcome."""
    report = result.report
    if report.errors:
        console.print(_error_table(report))
        if report.errors_not_kept:
            console.print(f"... and {report.errors_not_kept} more error(s) not shown (see --max-errors).")
    if result.failures:
        table = Table(title="Events not delivered", title_justify="left")
        for name in ("Event id", "Event type", "Error"):
            table.add_column(name)
        for failure in result.failures[:_FAILURES_SHOWN]:
            table.add_row(Text(failure.event_id), failure.event_type, Text(failure.error or ""))
        console.print(table)
        if result.failed > _FAILURES_SHOWN:
            console.print(f"... and {result.failed - _FAILURES_SHOWN} more.")
    console.print(_summary_table(result))
    console.print(_outcome(result))


def publish_file_and_report(
    path: Path,
    settings: Settings,
    console: Console,
    *,
    file_format: FileFormat | None = None,
    allow_partial: bool = False,
    dry_run: bool = False,
    max_errors: int | None = 1000,
) -> ExitCode:
    """``civreg publish``: publish with a progress bar, print the report, return the exit code."""
    with RichPublishProgress(console) as progress:
        result = publish_file(
            path,
            settings,
            file_format=file_format,
            allow_partial=allow_partial,
            dry_run=dry_run,
            max_errors=max_errors,
            progress=progress,
        )
    render_result(result, console)
    return result.exit_code
