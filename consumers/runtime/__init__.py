"""The one consumer runtime every department runs on: consume, decode, dispatch, store, dead-letter."""

from consumers.runtime.dead_letters import DeadLetter
from consumers.runtime.department import Department
from consumers.runtime.errors import PermanentError, PoisonMessage, TransientError
from consumers.runtime.outcomes import Outcome, Result
from consumers.runtime.service import BatchReport, DepartmentConsumer, EventOutcome
from consumers.runtime.sqlite_store import SqliteStore, SqliteTransaction
from consumers.runtime.store import Store, Transaction

__all__ = [
    "BatchReport",
    "DeadLetter",
    "Department",
    "DepartmentConsumer",
    "EventOutcome",
    "Outcome",
    "PermanentError",
    "PoisonMessage",
    "Result",
    "SqliteStore",
    "SqliteTransaction",
    "Store",
    "Transaction",
    "TransientError",
]
