"""The bus: JetStream client, consumer loop, ack policy, projection runner, in-memory fake."""

from .core import (
    FIRST_EVENT,
    Bus,
    BusNames,
    ConsumerPolicy,
    Delivered,
    Expect,
    Poison,
    Retry,
    StreamSettings,
    WrongSequence,
    after,
    subject_matches,
)
from .jetstream import CAUGHT_UP, JetStreamBus, ReadItem, wait_until
from .memory import InMemoryBus
from .projection import Projection

__all__ = [
    "Bus", "BusNames", "ConsumerPolicy", "Delivered", "Expect", "FIRST_EVENT", "after", "Poison", "Retry", "StreamSettings", "WrongSequence",
    "subject_matches", "CAUGHT_UP", "JetStreamBus", "ReadItem", "wait_until", "Projection", "InMemoryBus",
]
