"""Publishing a decision's first event at most once: the bus refuses it when the decision has an event already
(another run, or another replica, got there)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from shared.bus.core import FIRST_EVENT, WrongSequence
from shared.events import DecisionQueued, DecisionSkipped


async def publish_draft(publish: Callable[..., Awaitable[int]], event: DecisionQueued | DecisionSkipped, prefix: str) -> bool:
    """Publish a decision's first event; False when the decision already has one (another run got there)."""
    try:
        await publish(event, **first_event_guard(event.decision_id, prefix))
    except WrongSequence:
        return False
    return True


def first_event_guard(decision_id: str, prefix: str) -> dict[str, Any]:
    """The publish arguments that make the server refuse an event unless it is the decision's first."""
    return {"expect": FIRST_EVENT}  # the bus derives the decision's subjects from the event
