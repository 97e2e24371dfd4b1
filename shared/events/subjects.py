"""Every subject and stream name, spelled once."""

from __future__ import annotations

EVENTS_STREAM = "XBOT_EVENTS"
COMMANDS_STREAM = "XBOT_COMMANDS"
DLQ_STREAM = "XBOT_DLQ"
FLAGS_BUCKET = "xbot_flags"
BUDGET_BUCKET = "xbot_budget"
SNAPSHOT_BUCKET = "xbot_snapshots"

EVT_PREFIX = "xbot.evt"
CMD_PREFIX = "xbot.cmd"
DLQ_PREFIX = "xbot.dlq"

ALL_EVENTS = f"{EVT_PREFIX}.>"
ALL_COMMANDS = f"{CMD_PREFIX}.>"
ALL_DLQ = f"{DLQ_PREFIX}.>"


def _token(value: str) -> str:
    """A subject token: no dots, spaces or wildcards may leak into a subject from an id."""
    bad = set(". *>\t\r\n")
    if not value or any(c in bad for c in value):
        raise ValueError(f"not a valid subject token: {value!r}")
    return value


def event_subject(aggregate: str, aggregate_id: str, name: str, prefix: str = EVT_PREFIX) -> str:
    return f"{prefix}.{_token(aggregate)}.{_token(aggregate_id)}.{_token(name)}"


def aggregate_subjects(aggregate: str, aggregate_id: str, prefix: str = EVT_PREFIX) -> str:
    """All events of one aggregate instance, e.g. one decision's whole history."""
    return f"{prefix}.{_token(aggregate)}.{_token(aggregate_id)}.*"


def event_type_subject(aggregate: str, name: str, prefix: str = EVT_PREFIX) -> str:
    """One event type across all instances, e.g. every ``decision.*.posted``."""
    return f"{prefix}.{_token(aggregate)}.*.{_token(name)}"


def aggregate_all(aggregate: str, prefix: str = EVT_PREFIX) -> str:
    return f"{prefix}.{_token(aggregate)}.>"


def command_subject(job: str, prefix: str = CMD_PREFIX) -> str:
    return f"{prefix}.{_token(job)}"


def dlq_subject(consumer: str, prefix: str = DLQ_PREFIX) -> str:
    return f"{prefix}.{_token(consumer)}"
