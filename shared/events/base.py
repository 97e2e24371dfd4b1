"""The envelope every event carries, and the helpers to mint one.

Events are frozen msgspec Structs in one tagged union (see ``shared.events.registry``). The envelope fields
live on the base class, so an event on the wire is one flat JSON object:
``{"type": "decision.queued", "event_id": ..., "occurred_at": ..., "schema": 1, ...}``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import ClassVar

import msgspec

#: Wire-format version. A consumer refuses (dead-letters) an event whose schema is newer than this.
SCHEMA_VERSION = 1


class Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", omit_defaults=False):
    """Base of every event: the envelope."""

    #: the aggregate kind, the second token of the subject (``xbot.evt.<aggregate>.<id>.<name>``)
    aggregate: ClassVar[str] = ""
    #: the past-tense name, the last token of the subject
    name: ClassVar[str] = ""

    event_id: str
    occurred_at: datetime
    schema: int = SCHEMA_VERSION
    correlation_id: str | None = None
    causation_id: str | None = None

    @property
    def aggregate_id(self) -> str:  # overridden per aggregate
        raise NotImplementedError

    @property
    def type(self) -> str:
        return f"{self.aggregate}.{self.name}"


def new_event_id() -> str:
    return uuid.uuid4().hex


def utcnow() -> datetime:
    return datetime.now(UTC)


def float32_bytes(vector: object) -> bytes:
    """Embeddings travel as little-endian float32 bytes, not lists of floats."""
    import numpy as np

    return np.asarray(vector, dtype="<f4").tobytes()


def bytes_float32(data: bytes):  # -> numpy.ndarray
    import numpy as np

    return np.frombuffer(data, dtype="<f4")
