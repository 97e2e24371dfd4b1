"""The envelope every event carries, and the helpers to mint one.

Events are frozen msgspec Structs in one tagged union (see ``shared.events.registry``). The envelope fields
live on the base class, so an event on the wire is one flat JSON object:
``{"type": "decision.queued", "event_id": ..., "occurred_at": ..., "schema": 2, "account": "default", ...}``.

Schema 2 added ``account`` (the X account the event belongs to). A schema-1 event (written before accounts)
decodes with ``account = "default"`` and is upcast to schema 2 by ``shared.events.registry.decode``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, ClassVar

import msgspec

from .subjects import DEFAULT_ACCOUNT

#: Wire-format version. A consumer refuses (dead-letters) an event whose schema is newer than this, and upcasts
#: an older one (``shared.events.registry.UPCASTERS``). 1: no account; 2: every event carries ``account``.
SCHEMA_VERSION = 2

#: an account id: a subject token (lower-case letters, digits, ``_`` and ``-``; at most 32)
ACCOUNT_PATTERN = r"^[a-z][a-z0-9_-]{0,31}$"
AccountId = Annotated[str, msgspec.Meta(pattern=ACCOUNT_PATTERN)]


class Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", omit_defaults=False):
    """Base of every event: the envelope."""

    #: the aggregate kind, the second token of the subject (``xbot.evt.<aggregate>.<id>.<name>``)
    aggregate: ClassVar[str] = ""
    #: the past-tense name, the last token of the subject
    name: ClassVar[str] = ""

    event_id: str
    occurred_at: datetime
    schema: int = SCHEMA_VERSION
    #: the X account this event belongs to (its subject names it too: ``shared.events.subjects``)
    account: AccountId = DEFAULT_ACCOUNT
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
