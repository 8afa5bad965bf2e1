"""How ``civreg agreements show`` and the demo print an agreement, and messages of its topic beside it.

Only field names and value shapes are printed, never values (see ``consumers.operations.agreement_sample``).
"""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from consumers.operations.agreement_sample import SampledMessage
from consumers.runtime.agreements import Agreement
from schemas.topics import department_topic

__all__ = ["agreement_table", "sample_table"]


def agreement_table(agreement: Agreement, prefix: str) -> RenderableType:
    """The agreement: who, why, under which law, which event types and which fields (the allow-list)."""
    about = Table(show_header=False, box=None, title=f"Data-sharing agreement: {agreement.department}")
    about.add_column(style="bold")
    about.add_column()
    about.add_row("controller", escape(agreement.controller))
    about.add_row("purpose", escape(agreement.purpose))
    about.add_row("legal gateway", escape(agreement.legal_gateway))
    about.add_row("topic", department_topic(agreement.department, prefix))
    about.add_row("registers", ", ".join(sorted(register.value for register in agreement.registers)))
    about.add_row("stillbirths", "received" if agreement.stillbirths else "withheld")
    fields = Table(title=f"{agreement.department}: the only event types and fields it may receive")
    fields.add_column("event type")
    fields.add_column("in", overflow="fold")
    fields.add_column("allowed fields (everything else is withheld)", overflow="fold")
    for event_type in sorted(agreement.event_types):
        by_record: dict[str, list[str]] = {}
        for path in sorted(agreement.fields_allowed.get(event_type, frozenset())):
            record, _, leaf = path.rpartition(".")
            by_record.setdefault(record, []).append(leaf)
        for index, (record, leaves) in enumerate(by_record.items()):
            fields.add_row(event_type if index == 0 else "", record or "(event)", ", ".join(leaves))
        fields.add_section()
    return Group(about, fields)


def sample_table(sample: SampledMessage, agreement: Agreement, principal: str | None) -> RenderableType:
    """One message of the department's topic decoded with its writer's schema, field by field beside the
    agreement; values shown by shape only."""
    reader = f" read as principal {principal}" if principal else ""
    table = Table(
        title=f"{agreement.department}'s topic, message {sample.partition}/{sample.offset}{reader}: "
        f"{sample.event_type}, schema id {sample.schema_id} ({sample.writer})"
    )
    table.add_column("field")
    table.add_column("agreement")
    table.add_column("in the message (shape, never the value)")
    for path in sorted(set(sample.allowed) | set(sample.carried)):
        carried = sample.carried.get(path)
        allowed = "[green]allowed[/]" if sample.is_allowed(path) else "[bold red]NOT IN THE AGREEMENT[/]"
        table.add_row(path, allowed, carried if carried is not None else "[dim]not carried[/]")
    outside = sample.outside_agreement
    summary = (
        Text(f"every field in the message is in {agreement.department}'s agreement", style="green")
        if not outside
        else Text(f"{len(outside)} field(s) outside the agreement: {', '.join(outside)}", style="bold red")
    )
    shown = ", ".join(sample.withheld[:8]) + (", …" if len(sample.withheld) > 8 else "")
    withheld = Text(
        f"withheld by the agreement, absent from the bytes: {len(sample.withheld)} field(s) of the contract's "
        f"{sample.event_type}" + (f" ({shown})" if shown else "")
    )
    return Group(table, summary, withheld)
