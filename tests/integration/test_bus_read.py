"""``JetStreamBus.read`` against a real nats-server: order, ``from_seq``/``since``/``names``, one caught-up marker,
flow control that holds the server back while the reader is slow, and a restart when its consumer disappears."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from shared.bus import CAUGHT_UP, JetStreamBus
from shared.events import DecisionApproved, LlmCallCompleted, new_event_id

pytestmark = pytest.mark.integration
NOW = datetime(2026, 11, 24, tzinfo=UTC)


def approved(i: int) -> DecisionApproved:
    return DecisionApproved(event_id=f"a-{i}-{new_event_id()}", occurred_at=NOW, decision_id=f"d{i}")


def llm(i: int) -> LlmCallCompleted:
    return LlmCallCompleted(event_id=f"l-{i}-{new_event_id()}", occurred_at=NOW, request_id=f"r{i}", kind="chat",
                            model="m", service="planner")


async def _consumers(bus: JetStreamBus) -> list:
    return list(await bus.js.consumers_info(bus.names.events_stream))


async def test_read_in_order_with_one_caught_up_marker_and_names(bus: JetStreamBus) -> None:
    events = [approved(i) if i % 3 else llm(i) for i in range(600)]
    await bus.publish_many(events)
    items = [it async for it in bus.read(names=frozenset({"decision.approved"}))]
    assert items[-1] is CAUGHT_UP and sum(it.caught_up for it in items) == 1
    data = items[:-1]
    assert [it.seq for it in data] == list(range(1, 601))
    # only the event types asked for are decoded (decided from the subject), the others cost nothing
    assert all((it.event is not None) == (i % 3 != 0) for i, it in enumerate(data))
    assert [it.event.decision_id for it in data if it.event is not None] == [f"d{i}" for i in range(600) if i % 3]
    # from_seq, and a start past the end: caught up at once
    assert [it.seq async for it in bus.read(from_seq=590) if not it.caught_up] == list(range(590, 601))
    assert [it async for it in bus.read(from_seq=601)] == [CAUGHT_UP]
    # without decoding: the raw bytes only
    raw = [it async for it in bus.read(from_seq=599, decode_events=False) if not it.caught_up]
    assert [it.event for it in raw] == [None, None] and all(it.data for it in raw)


async def test_read_since_a_time_and_follow(bus: JetStreamBus) -> None:
    await bus.publish_many([approved(i) for i in range(5)])
    await asyncio.sleep(0.3)
    since = datetime.now(UTC)
    await asyncio.sleep(0.3)
    await bus.publish_many([approved(i) for i in range(5, 8)])
    got = [it.event.decision_id async for it in bus.read(since=since) if not it.caught_up]
    assert got == ["d5", "d6", "d7"]
    # follow: the marker once, then live events
    seen: list[str] = []
    marks = 0

    async def follow() -> None:
        nonlocal marks
        async for it in bus.read(from_seq=4, follow=True):
            if it.caught_up:
                marks += 1
                await bus.publish(approved(100))
            else:
                seen.append(it.event.decision_id)
                if it.event.decision_id == "d100":
                    return

    await asyncio.wait_for(follow(), 20)
    assert seen == ["d3", "d4", "d5", "d6", "d7", "d100"] and marks == 1


async def test_a_slow_reader_holds_the_server_back(bus: JetStreamBus) -> None:
    """Flow control: while the reader sits on its first message, the server does not send the whole log
    (a 32 MB window), and the read then goes on to the end in order."""
    n, size = 1500, 60_000
    payload = b"x" * size
    pending = [await bus.js.publish_async(f"{bus.names.evt_prefix}.blob.b{i}.stored", payload) for i in range(n)]
    await asyncio.gather(*pending)
    reader = bus.read(decode_events=False)
    first = await reader.__anext__()
    assert first.seq == 1
    await asyncio.sleep(1.5)  # the server sends what its flow-control window allows, then waits for us
    infos = await _consumers(bus)
    assert len(infos) == 1
    delivered = infos[0].delivered.consumer_seq
    assert delivered < n * 2 // 3, f"{delivered} of {n} delivered while the reader held its first message"
    seqs = [first.seq]
    async for it in reader:
        if it.caught_up:
            break
        seqs.append(it.seq)
    await reader.aclose()
    assert seqs == list(range(1, n + 1))


async def test_read_goes_on_when_its_consumer_disappears(bus: JetStreamBus) -> None:
    """The server loses the ephemeral consumer mid-read (as after a restart): no heartbeat comes, so the read
    starts a new consumer after the last message it handed over; nothing lost, nothing twice."""
    await bus.publish_many([approved(i) for i in range(100)])
    got: list[int] = []
    marks = 0

    async def follow() -> None:
        nonlocal marks
        reader = bus.read(follow=True)
        try:
            async for it in reader:
                if it.caught_up:
                    marks += 1
                    for c in await _consumers(bus):
                        await bus.js.delete_consumer(bus.names.events_stream, c.name)
                    await bus.publish_many([approved(i) for i in range(100, 120)])
                    continue
                got.append(it.seq)
                if len(got) == 120:
                    return
        finally:
            await reader.aclose()

    await asyncio.wait_for(follow(), 30)
    assert got == list(range(1, 121)) and marks == 1
