"""The suppression consumer, killed by SIGKILL right after its Nth database commit and before its Kafka commit.

Usage: python -m tests.support.crashing_consumer CRASH_AFTER_BATCHES BATCH_SIZE  (settings from CIVREG_* env)
"""

from __future__ import annotations

import os
import signal
import sys

from civreg.settings import load_settings
from consumers.departments import department_named
from consumers.operations.running import open_store
from consumers.runtime import BatchReport, DepartmentConsumer


def main() -> None:
    crash_after, batch_size = int(sys.argv[1]), int(sys.argv[2])
    settings = load_settings()
    store = open_store(settings, "suppression")
    consumer = DepartmentConsumer(department_named("suppression"), settings, store, batch_size=batch_size)
    committed = 0

    def die_after_database_commit(_report: BatchReport) -> None:
        nonlocal committed
        committed += 1
        if committed >= crash_after:
            os.kill(os.getpid(), signal.SIGKILL)

    consumer.on_batch_committed(die_after_database_commit)
    consumer.run(until_caught_up=True)


if __name__ == "__main__":
    main()
