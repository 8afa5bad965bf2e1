"""Where a department's back-fill spends its time per event: ``python -m deploy.local.bench.backfill_profile``.

Why: the consumer suite gives rates; this says what bounds them. It publishes N simulated events, routes them,
loads the department's register of the same population, then runs the department consumer until caught up on each
engine twice: once under cProfile (µs per event by stage) and once plain (the rate, and SQL statements per event
by statement text; on PostgreSQL also the round trips per event: the statements that waited for the server, fewer
than the statements since the batch runs pipelined). Uses the broker, registry and PostgreSQL of
``CIVREG_BOOTSTRAP_SERVERS``, ``CIVREG_REGISTRY_URL`` and ``CIVREG_POSTGRES_DSN``. A developer's tool: it prints SQL
text, never parameters.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from civreg.codec_from_settings import open_registry_resolver
from civreg.logs import configure_logging
from civreg.settings import Settings
from consumers.departments import DEPARTMENTS
from consumers.routing.router import Router
from consumers.runtime.postgres_store import PostgresTransaction
from consumers.runtime.sqlite_store import SqliteTransaction
from deploy.local.bench.consumer import _civreg, _drop, _store_with_register
from deploy.topics import apply_topics
from producers.customer_records import simulate_customer_records
from producers.publisher import Publisher
from producers.simulation import simulate_population
from schemas.codec import Codec

__all__ = ["main"]

_Stats = dict[tuple[str, str], list[float]]


@contextmanager
def _counted() -> Iterator[_Stats]:
    """Count and time every statement both engines run, by (method, SQL text)."""
    stats: _Stats = defaultdict(lambda: [0.0, 0.0])
    originals: list[tuple[type[Any], str, Callable[..., Any]]] = []
    for cls in (SqliteTransaction, PostgresTransaction):
        for name in ("execute", "execute_many"):
            original = getattr(cls, name)
            originals.append((cls, name, original))

            def timed(self: Any, sql: str, *args: Any, _o: Callable[..., Any] = original, _n: str = name) -> Any:
                start = time.perf_counter()
                try:
                    return _o(self, sql, *args)
                finally:
                    entry = stats[(_n, " ".join(sql.split())[:100])]
                    entry[0] += 1
                    entry[1] += time.perf_counter() - start

            setattr(cls, name, timed)
    try:
        yield stats
    finally:
        for cls, name, original in originals:
            setattr(cls, name, original)


def _cum(stats: pstats.Stats, file: str, func: str) -> float:
    table: dict[tuple[str, int, str], tuple[Any, ...]] = stats.stats  # type: ignore[attr-defined]
    return sum(float(v[3]) for (f, _, n), v in table.items() if file in f and n == func)


def _stages(profile: cProfile.Profile, engine: str, events: int) -> dict[str, float]:
    """µs per event by stage; SQL inside the rules is counted as SQL, not as rules."""
    stats = pstats.Stats(profile)
    table: dict[tuple[str, int, str], tuple[Any, ...]] = stats.stats  # type: ignore[attr-defined]
    store = "sqlite_store.py" if engine == "sqlite" else "postgres_store.py"
    total = _cum(stats, "service.py", "run")
    kafka = sum(float(v[2]) for (f, _, n), v in table.items() if "cimpl" in n or "cimpl" in f)
    read, decode = _cum(stats, "codec.py", "_read"), _cum(stats, "codec.py", "decode")
    agreement = sum(_cum(stats, "agreements.py", f) for f in ("minimise", "withheld_because", "receives"))
    digest = _cum(stats, "dispatch.py", "content_digest")
    sql = _cum(stats, store, "execute") + _cum(stats, store, "execute_many")
    commit = _cum(stats, store, "transaction")
    outside = _cum(stats, "store.py", "preload") + _cum(stats, "store.py", "flush")
    rules = _cum(stats, "dispatch.py", "dispatch") - (sql - outside) - agreement - digest
    rows = {
        "Kafka (consume, offsets, acknowledgements)": kafka,
        "decode (fastavro)": read,
        "validation (pydantic)": decode - read,
        "agreement minimisation": agreement,
        "content digest": digest,
        "SQL statements": sql,
        "transaction commit": commit,
        "rules, entry log, matching (Python only)": rules,
    }
    rows["other (runtime loop, batching)"] = total - sum(rows.values())
    rows["total under cProfile"] = total
    return {k: v / events * 1e6 for k, v in rows.items()}


def main(argv: Sequence[str] | None = None) -> None:
    """Publish, route, and profile one department's back-fill on each engine."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--department", default="tax")
    parser.add_argument("--engines", default="sqlite,postgres")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    configure_logging("WARNING")  # as the services run by default: a log line per batch is no part of the profile
    workdir = Path(tempfile.mkdtemp(prefix="civreg-profile-"))
    settings = Settings().model_copy(
        update={"topic_prefix": f"prof-{uuid.uuid4().hex[:8]}", "database_dir": workdir, "registry_auto_register": True}
    )
    apply_topics(settings, tuple(DEPARTMENTS), replication_factor=1, profile="local")
    codec = Codec(open_registry_resolver(settings, settings.registry_url or ""), topic_prefix=settings.topic_prefix)
    population = simulate_population(args.events, args.seed)
    with Publisher(settings, codec=codec) as publisher:
        for event in population.events:
            publisher.publish(event)
    Router(settings, poll_timeout=0.1, check_interval=0.2).run(until_caught_up=True)
    rows = [r.row for r in simulate_customer_records(population, args.department, args.seed)]
    print(f"register of {len(rows)} rows")
    for engine in args.engines.split(","):
        for profiled in (True, False):
            store = _store_with_register(settings, args.department, engine, workdir, rows)
            profile = cProfile.Profile()
            waited_before = getattr(store, "round_trips", None)  # PostgreSQL: statements and syncs that waited
            with _counted() as statements:
                if profiled:
                    profile.enable()
                run = _civreg(settings, args.department, store, codec, 500)
                if profiled:
                    profile.disable()
            waited = None if waited_before is None else getattr(store, "round_trips", 0) - waited_before
            _drop(store)
            events = max(run.messages, 1)
            if profiled:
                print(f"\n{engine}: {run.messages} events, µs per event by stage (cProfile)")
                for stage, micros in _stages(profile, engine, events).items():
                    print(f"  {stage:<45} {micros:>8,.0f}")
                continue
            count = sum(v[0] for v in statements.values())
            rate = run.messages / run.seconds
            trips = "" if waited is None else f", {waited / events:.2f} round trips/event (pipelined)"
            print(f"{engine}: {rate:,.0f} events/s unprofiled, {count / events:.2f} statements/event{trips}")
            for (method, sql), (calls, seconds) in sorted(statements.items(), key=lambda kv: -kv[1][1])[:15]:
                print(f"  {calls / events:5.2f}/event {seconds / events * 1e6:6.0f} µs/event  {method}: {sql}")


if __name__ == "__main__":
    main()
