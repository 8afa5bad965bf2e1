"""DWP's own records as the pension rules see them: State Pension claims and how they are paid."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta

import polars as pl

from consumers.kit.customer_records import (
    PERSON_COLUMNS_DDL,
    CustomerRegister,
    PersonRecords,
    RegisterColumn,
    choice,
    day,
    identifier,
    optional_day,
    required,
)
from consumers.kit.letters import LetterSchedule, ScheduledLetter
from consumers.kit.life_events import ENTRY_LOG_SCHEMA, Snapshot
from consumers.kit.matching import matching_indexes
from consumers.runtime import Transaction
from schemas.identifiers import normalise_nino
from schemas.models import MaritalStatus

__all__ = ["SCHEMA", "PaymentSchedule", "PensionRecords"]

SCHEMA = (
    f"""
CREATE TABLE IF NOT EXISTS pensioners (
    pensioner_id         TEXT PRIMARY KEY,
{PERSON_COLUMNS_DDL}
    nino                 TEXT,
    marital_status       TEXT NOT NULL,
    weekly_amount_pence  INTEGER NOT NULL,
    paid_every_days      INTEGER NOT NULL,
    payment_anchor_on    TEXT NOT NULL,
    paid_in              TEXT NOT NULL CHECK (paid_in IN ('arrears', 'advance')),
    status               TEXT NOT NULL CHECK (status IN ('in_payment', 'stopped')),
    entitled_to          TEXT,
    overpayment_pence    INTEGER NOT NULL,
    recovery             TEXT NOT NULL CHECK (recovery IN ('none', 'pending', 'cancelled')),
    next_statement_on    TEXT,
    updated_at           TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS pensioners_nino ON pensioners (nino);
{matching_indexes("pensioners")}
CREATE INDEX IF NOT EXISTS pensioners_statement ON pensioners (next_statement_on);
"""
    + ENTRY_LOG_SCHEMA
)


_PENSION_STATEMENT = LetterSchedule(
    "pension-statement", "pensioners", "pensioner_id", "next_statement_on", nino="nino", also=("status",)
)


@dataclass(frozen=True)
class PaymentSchedule:
    """How one State Pension is paid: an amount a week, every so many days, in arrears or in advance.

    ``anchor`` is any day a payment was (or will be) made; payments fall every ``every_days`` from it. A payment
    in arrears covers the days up to and including its payment day; one in advance covers the days from it.
    """

    weekly_amount_pence: int
    every_days: int
    anchor: date
    in_advance: bool

    def last_payment_on_or_before(self, day: date) -> date:
        """The latest payment day not after ``day``."""
        periods = (day - self.anchor).days // self.every_days
        return self.anchor + timedelta(days=periods * self.every_days)

    def paid_up_to(self, day: date) -> date:
        """The last day covered by the payments made up to and including ``day``."""
        paid_on = self.last_payment_on_or_before(day)
        return paid_on + timedelta(days=self.every_days - 1) if self.in_advance else paid_on

    def paid_for_days_after(self, last_day: date, *, payments_until: date) -> int:
        """Pence paid, by the payments made up to ``payments_until``, for days after ``last_day``."""
        days = (self.paid_up_to(payments_until) - last_day).days
        return max(days, 0) * self.weekly_amount_pence // 7


def _paid_in(value: str) -> str:
    paid_in = required({"paid_in": value}, "paid_in")
    if paid_in not in {"arrears", "advance"}:
        raise ValueError("paid_in must be arrears or advance")
    return paid_in


def _positive(column: str) -> RegisterColumn:
    """A whole number of at least 1."""

    def rule(value: str) -> int:
        try:
            number = int(required({column: value}, column))
        except ValueError:
            raise ValueError(f"{column} must be a whole number") from None
        if number < 1:
            raise ValueError(f"{column} must be at least 1")
        return number

    return RegisterColumn(column, rule, pl.Int64())


REGISTER = CustomerRegister(
    "pensioners",
    "pensioner_id",
    (
        choice("marital_status", MaritalStatus),
        RegisterColumn("paid_in", _paid_in),
        _positive("weekly_amount_pence"),
        _positive("paid_every_days"),
        optional_day("next_statement_on"),
        identifier("nino", normalise_nino),
        day("payment_anchor_on"),
    ),
    starts_with={"status": "in_payment", "entitled_to": None, "overpayment_pence": 0, "recovery": "none"},
)
"""DWP's pension register file: every pension loaded is in payment, with nothing overpaid."""


class PensionRecords(PersonRecords):
    """Reads and writes DWP's pension tables inside one transaction."""

    register = REGISTER

    def __init__(self, transaction: Transaction) -> None:
        super().__init__(transaction, "pensioners", "pensioner_id", identifier=("nino", lambda ids: ids.nino))
        self.pensioners = self.table

    # What the rules change ----------------------------------------------------------------------------------

    def schedule(self, pensioner_id: str) -> PaymentSchedule:
        """How this pension is paid."""
        fields = self.pensioners.fields(
            pensioner_id, "weekly_amount_pence", "paid_every_days", "payment_anchor_on", "paid_in"
        )
        return PaymentSchedule(
            weekly_amount_pence=int(fields["weekly_amount_pence"]),
            every_days=int(fields["paid_every_days"]),
            anchor=date.fromisoformat(str(fields["payment_anchor_on"])),
            in_advance=fields["paid_in"] == "advance",
        )

    def stop_payments(self, pensioner_id: str, entitled_to: date, overpayment_pence: int) -> Snapshot:
        """No payments for days after ``entitled_to``; recover what was already paid for them."""
        return self.pensioners.update(
            pensioner_id,
            {
                "status": "stopped",
                "entitled_to": entitled_to.isoformat(),
                "overpayment_pence": overpayment_pence,
                "recovery": "pending" if overpayment_pence else "none",
            },
        )

    def restart_payments(self, pensioner_id: str, before: Snapshot) -> None:
        """Payments as they were before; a recovery already started is cancelled (kept visible as such)."""
        started = self.pensioners.fields(pensioner_id, "recovery")["recovery"] == "pending"
        self.pensioners.update(pensioner_id, {**before, "recovery": "cancelled" if started else before["recovery"]})

    def record_partnership(self, pensioner_id: str, status: MaritalStatus, new_surname: str | None) -> Snapshot:
        """The new marital status, and the new surname when it changes."""
        changes: dict[str, str] = {"marital_status": status.value}
        if new_surname:
            changes |= self.pensioners.surname(pensioner_id, new_surname)
        return self.pensioners.update(pensioner_id, changes)

    def marital_status(self, pensioner_id: str) -> MaritalStatus:
        """The marital status on the record."""
        return MaritalStatus(str(self.pensioners.fields(pensioner_id, "marital_status")["marital_status"]))

    def record_bereavement(self, pensioner_id: str, status: MaritalStatus) -> Snapshot:
        """Widowed or surviving civil partner from now on; returns the status as it was."""
        return self.pensioners.update(pensioner_id, {"marital_status": status.value})

    # Correspondence -----------------------------------------------------------------------------------------

    def statements_due(self, first: date, last: date) -> Iterator[tuple[ScheduledLetter, str]]:
        """Annual State Pension statements scheduled in [first, last], with each pension's status."""
        for letter, row in _PENSION_STATEMENT.due_in(self._tx, first, last):
            yield letter, row.text("status")
