"""The tagged union of every event, and encode/decode."""

from __future__ import annotations

from typing import Union

import msgspec

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
from .subjects import event_subject

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


def decode(data: bytes) -> Event:
    try:
        event = _decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise DecodeError(str(exc)) from exc
    if event.schema > SCHEMA_VERSION or event.schema < 1:
        raise DecodeError(f"unsupported schema version {event.schema} (this build reads <= {SCHEMA_VERSION})")
    return event


def decode_command(data: bytes) -> Command:
    try:
        cmd = _cmd_decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise DecodeError(str(exc)) from exc
    if cmd.schema > SCHEMA_VERSION or cmd.schema < 1:
        raise DecodeError(f"unsupported command schema version {cmd.schema}")
    return cmd


def subject_of(event: Event, prefix: str = "xbot.evt") -> str:
    return event_subject(event.aggregate, event.aggregate_id, event.name, prefix=prefix)
