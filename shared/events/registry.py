"""The tagged union of every event, and encode/decode."""

from __future__ import annotations

from collections.abc import Callable
from typing import Union

import msgspec

from .account import AccountConfigured
from .base import SCHEMA_VERSION, Event
from .commands import Command
from .decision import (
    DecisionApproved,
    DecisionAttentionNeeded,
    DecisionDoubtResolved,
    DecisionPartPosted,
    DecisionPosted,
    DecisionPostFailed,
    DecisionPostSkipped,
    DecisionPostStarted,
    DecisionQueued,
    DecisionRejected,
    DecisionRescheduled,
    DecisionSkipped,
)
from .llm import LlmCallCompleted, LlmCallFailed
from .model import ModelUpdated
from .ops import FlagChanged, JobCompleted
from .outcome import OutcomeCollectionFailed, OutcomeRecorded
from .subjects import DEFAULT_ACCOUNT, event_subject

EVENT_TYPES: tuple[type[Event], ...] = (
    DecisionQueued,
    DecisionSkipped,
    DecisionPostSkipped,
    DecisionPostStarted,
    DecisionPartPosted,
    DecisionPosted,
    DecisionPostFailed,
    DecisionApproved,
    DecisionRejected,
    DecisionRescheduled,
    DecisionAttentionNeeded,
    DecisionDoubtResolved,
    OutcomeRecorded,
    OutcomeCollectionFailed,
    ModelUpdated,
    LlmCallCompleted,
    LlmCallFailed,
    JobCompleted,
    FlagChanged,
    AccountConfigured,
)

AnyEvent = Union[EVENT_TYPES]  # type: ignore[valid-type]  # noqa: UP007 - msgspec needs a real Union

TYPE_NAMES: dict[str, type[Event]] = {f"{t.aggregate}.{t.name}": t for t in EVENT_TYPES}

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(AnyEvent)
_cmd_decoder = msgspec.json.Decoder(Command)


class DecodeError(ValueError):
    """The payload is not an event we can read: malformed, unknown type, or a newer schema."""


def encode(event: Event | Command) -> bytes:
    return _encoder.encode(event)


def _v1_to_v2(event: Event) -> Event:
    """Schema 1 had no account: everything then was the one account's, now called ``default``. (The decoder
    already filled the field's default; a schema-1 payload naming another account is not a schema-1 event.)"""
    if event.account != DEFAULT_ACCOUNT:
        raise DecodeError(f"a schema-1 event has no account, this one names {event.account!r}")
    return msgspec.structs.replace(event, schema=2)


#: schema version -> the function that lifts an event of that version one version up
UPCASTERS: dict[int, Callable[[Event], Event]] = {1: _v1_to_v2}


def upcast(event: Event) -> Event:
    """An event of an older schema, as this build's schema says it (each step one version)."""
    while event.schema < SCHEMA_VERSION:
        event = UPCASTERS[event.schema](event)
    return event


def decode(data: bytes) -> Event:
    try:
        event = _decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise DecodeError(str(exc)) from exc
    if event.schema > SCHEMA_VERSION or event.schema < 1:
        raise DecodeError(f"unsupported schema version {event.schema} (this build reads <= {SCHEMA_VERSION})")
    return event if event.schema == SCHEMA_VERSION else upcast(event)


def decode_command(data: bytes) -> Command:
    try:
        cmd = _cmd_decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise DecodeError(str(exc)) from exc
    if cmd.schema > SCHEMA_VERSION or cmd.schema < 1:
        raise DecodeError(f"unsupported command schema version {cmd.schema}")
    return cmd


def subject_of(event: Event, prefix: str = "xbot.evt") -> str:
    return event_subject(event.aggregate, event.aggregate_id, event.name, prefix=prefix, account=event.account)
