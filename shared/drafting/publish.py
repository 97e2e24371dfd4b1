"""Publishing a decision's first event at most once: the bus refuses it when the decision has an event already
(another run, or another replica, got there)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from shared.bus.core import FIRST_EVENT, WrongSequence
from shared.events import DecisionQueued, DecisionSkipped


async def publish_draft(publish: Callable[..., Awaitable[int]], event: DecisionQueued | DecisionSkipped) -> bool:
    """Publish a decision's first event (guard ``FIRST_EVENT``: the bus checks the decision's own subjects);
    False when the decision already has one (another run got there)."""
    try:
        await publish(event, expect=FIRST_EVENT)
    except WrongSequence:
        return False
    return True
