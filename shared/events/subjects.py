"""Every subject and stream name, spelled once.

An event's subject names its account, aggregate, instance and event name:
``<ns>.evt.<account>.<aggregate>.<id>.<name>``. The ``default`` account's subjects have no account token,
``<ns>.evt.<aggregate>.<id>.<name>``: the shape every event had before accounts (schema 1), so a log written
then *is* the default account's log, in place -- its publish guards, histories and filters unchanged and
nothing to migrate (docs/decisions/0014-account-in-the-subject.md). The token count tells the two shapes
apart (five tokens after the namespace's ``evt``... six with an account), and an account id may not be an
aggregate's name, so a filter of one never matches the other.
"""

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

#: the account of every event written before accounts, and of a stack configured without an accounts file
DEFAULT_ACCOUNT = "default"
#: the aggregates' names: no account may be called one (its subjects would read as another shape's)
AGGREGATES: frozenset[str] = frozenset({"decision", "outcome", "model", "llm", "job", "flag", "account"})


def _token(value: str) -> str:
    """A subject token: no dots, spaces or wildcards may leak into a subject from an id."""
    bad = set(". *>\t\r\n")
    if not value or any(c in bad for c in value):
        raise ValueError(f"not a valid subject token: {value!r}")
    return value


def _scope(prefix: str, account: str) -> str:
    """The subject's head up to the aggregate: ``<prefix>`` for the default account, else ``<prefix>.<account>``."""
    if account == DEFAULT_ACCOUNT:
        return prefix
    if account in AGGREGATES:
        raise ValueError(f"an account may not be named like an aggregate: {account!r}")
    return f"{prefix}.{_token(account)}"


def event_subject(
    aggregate: str, aggregate_id: str, name: str, prefix: str = EVT_PREFIX, account: str = DEFAULT_ACCOUNT
) -> str:
    return f"{_scope(prefix, account)}.{_token(aggregate)}.{_token(aggregate_id)}.{_token(name)}"


def aggregate_subjects(
    aggregate: str, aggregate_id: str, prefix: str = EVT_PREFIX, account: str = DEFAULT_ACCOUNT
) -> str:
    """All events of one aggregate instance of one account, e.g. one decision's whole history."""
    return f"{_scope(prefix, account)}.{_token(aggregate)}.{_token(aggregate_id)}.*"


def event_type_subjects(aggregate: str, name: str, prefix: str = EVT_PREFIX) -> tuple[str, str]:
    """One event type of every account: the default account's shape and the others'
    (e.g. every ``decision.posted``)."""
    a, n = _token(aggregate), _token(name)
    return f"{prefix}.{a}.*.{n}", f"{prefix}.*.{a}.*.{n}"


def account_subjects(account: str, prefix: str = EVT_PREFIX) -> str:
    """Every event of one account (exactly the subjects of its shape)."""
    return f"{_scope(prefix, account)}.*.*.*"


def parse_event_subject(subject: str) -> tuple[str, str] | None:
    """``(account, "<aggregate>.<name>")`` of an event subject, or None when it is not one. The type is read
    from the tokens the two shapes share, counted from the end."""
    toks = subject.split(".")
    if len(toks) == 5:
        return DEFAULT_ACCOUNT, f"{toks[2]}.{toks[4]}"
    if len(toks) == 6:
        return toks[2], f"{toks[3]}.{toks[5]}"
    return None


def command_subject(job: str, prefix: str = CMD_PREFIX) -> str:
    return f"{prefix}.{_token(job)}"


def dlq_subject(consumer: str, prefix: str = DLQ_PREFIX) -> str:
    return f"{prefix}.{_token(consumer)}"
