"""Projections subscribe only to what they fold (issue 17), against a real nats-server: a projection with ``names``
reads through a multi-filter consumer (``filter_subjects``, both subject shapes), so the server delivers only
those types of every account; caught up, ``wait_for`` and a catch-up still work when the log ends with events it
does not fold (its ``applied_seq`` is the position it has read up to); a lost consumer and a restart from a
snapshot's sequence lose nothing and apply nothing twice."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from shared.bus import CAUGHT_UP, JetStreamBus, Projection
from shared.bus.jetstream import ReadCursor, type_subjects
from shared.events import DecisionApproved, DecisionRejected, LlmCallCompleted, new_event_id

pytestmark = pytest.mark.integration
NOW = datetime(2026, 11, 24, tzinfo=UTC)
FOLDED = frozenset({"decision.approved"})


def approved(i: int, account: str = "default") -> DecisionApproved:
    return DecisionApproved(event_id=f"a-{i}-{new_event_id()}", occurred_at=NOW, decision_id=f"d{i}",
                            account=account)


def rejected(i: int, account: str = "default") -> DecisionRejected:
    return DecisionRejected(event_id=f"r-{i}-{new_event_id()}", occurred_at=NOW, decision_id=f"d{i}",
                            account=account)


def llm(i: int) -> LlmCallCompleted:
    return LlmCallCompleted(event_id=f"l-{i}-{new_event_id()}", occurred_at=NOW, request_id=f"r{i}", kind="chat",
                            model="m", service="planner")


class Counting:
    """The projection's ``apply``, counting what it receives."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, str, str]] = []

    def __call__(self, item) -> None:
        self.seen.append((item.seq, item.event.account, item.event.decision_id))


async def _consumer_infos(bus: JetStreamBus) -> list:
    return list(await bus.js.consumers_info(bus.names.events_stream))


async def test_the_server_delivers_only_the_folded_types_of_every_account(bus: JetStreamBus) -> None:
    events = []
    for i in range(60):
        events += [approved(i), rejected(i), llm(i), approved(i, "acme"), rejected(i, "acme")]
    seqs = await bus.publish_many(events)
    apply = Counting()
    p = Projection(bus, apply, name="filtered", names=FOLDED)
    assert p.filter_subjects == sorted(bus.names.event_type("decision", "approved"))
    p.start()
    try:
        await p.wait_caught_up(20)
        # the consumer is a multi-filter one, on exactly the two shapes of the folded type
        infos = await _consumer_infos(bus)
        assert len(infos) == 1
        assert sorted(infos[0].config.filter_subjects) == p.filter_subjects and not infos[0].config.filter_subject
        # the server delivered the folded events only: 2 of every 5, in both shapes
        assert infos[0].delivered.consumer_seq == 120
        assert p.received == 120 and p.applied_count == len(events)  # read through: the skipped ones too
        folded = [s for s, e in zip(seqs, events, strict=True) if isinstance(e, DecisionApproved)]
        assert [s for s, _, _ in apply.seen] == folded
        assert {a for _, a, _ in apply.seen} == {"default", "acme"}
        # caught up: the position is the end of the log, though its last events are not folded
        assert p.applied_seq == await bus.last_seq() == seqs[-1]
    finally:
        await p.stop()


async def test_wait_for_an_event_it_does_not_fold_returns(bus: JetStreamBus) -> None:
    apply = Counting()
    p = Projection(bus, apply, name="filtered", names=FOLDED)
    p.start()
    try:
        await p.wait_caught_up(10)
        assert p.applied_seq == 0
        a = await bus.publish(approved(1))
        b = await bus.publish(rejected(1))  # not folded: never delivered
        await p.wait_for(b, timeout=5)
        assert p.applied_seq >= b and [s for s, _, _ in apply.seen] == [a]
        # many unfolded events in a row, of another account too, then a wait on the last
        last = (await bus.publish_many([rejected(i, "acme") for i in range(50)] + [llm(2)]))[-1]
        await p.wait_for(last, timeout=5)
        assert p.applied_seq == last and len(apply.seen) == 1
        # a catch-up as ServiceContext.catch_up does it: compare the log's end with applied_seq, then wait
        await bus.publish_many([approved(3, "acme"), rejected(3)])
        end = await bus.last_seq()
        if end > p.applied_seq:
            await p.wait_for(end, timeout=5)
        assert p.applied_seq == end and [d for _, _, d in apply.seen] == ["d1", "d3"]
        # one decision's history: its last event is not folded
        hist_end = await bus.last_seq(bus.names.history("decision", "d3"))
        await p.wait_for(hist_end, timeout=5)
        # our own writes, folded: applied as they come
        own = await bus.publish(approved(4))
        await p.wait_for(own, timeout=5)
        assert apply.seen[-1][2] == "d4" and p.applied_seq == own
    finally:
        await p.stop()


async def test_caught_up_when_the_log_ends_with_unfolded_events_or_has_none_folded(bus: JetStreamBus) -> None:
    # nothing folded at all: caught up at once, at the end of the log
    await bus.publish_many([rejected(i) for i in range(30)])
    p = Projection(bus, Counting(), name="none", names=FOLDED)
    p.start()
    try:
        await p.wait_caught_up(10)
        assert p.applied_seq == 30 and p.received == 0
    finally:
        await p.stop()
    # folded ones, then a tail of others
    await bus.publish_many([approved(i) for i in range(10)] + [llm(i) for i in range(10)])
    apply = Counting()
    p = Projection(bus, apply, name="tail", names=FOLDED)
    p.start()
    try:
        await p.wait_caught_up(10)
        assert p.applied_seq == 50 and len(apply.seen) == 10
    finally:
        await p.stop()


async def test_a_restart_from_a_snapshot_position_and_a_lost_consumer_lose_nothing(bus: JetStreamBus) -> None:
    await bus.publish_many([approved(i) if i % 2 else rejected(i) for i in range(40)])
    first = Counting()
    p = Projection(bus, first, name="one", names=FOLDED)
    p.start()
    await p.wait_caught_up(10)
    at = p.applied_seq
    await p.stop()
    assert at == 40 and len(first.seen) == 20
    # the next one starts after the position (a snapshot's sequence): only what came since
    await bus.publish_many([rejected(100), approved(101), rejected(102)])
    second = Counting()
    p = Projection(bus, second, name="two", names=FOLDED, from_seq=at + 1)
    p.start()
    try:
        await p.wait_caught_up(10)
        assert [d for _, _, d in second.seen] == ["d101"] and p.applied_seq == 43
        # the server loses the consumer: the read starts a new one after the last message taken
        for c in await _consumer_infos(bus):
            await bus.js.delete_consumer(bus.names.events_stream, c.name)
        seqs = await bus.publish_many([approved(200), rejected(201), approved(202)])
        await p.wait_for(seqs[-1], timeout=20)
        await asyncio.sleep(0.2)
        assert [d for _, _, d in second.seen] == ["d101", "d200", "d202"]
    finally:
        await p.stop()


async def test_read_with_filter_subjects_yields_positions_only_when_asked(bus: JetStreamBus) -> None:
    await bus.publish_many([approved(1), rejected(1), approved(2), rejected(2)])
    subjects = type_subjects(bus.names, FOLDED)
    # without follow: the folded messages and the marker, no position
    items = [it async for it in bus.read(filter_subjects=subjects, names=FOLDED)]
    assert [it.seq for it in items[:-1]] == [1, 3] and items[-1] is CAUGHT_UP
    # with follow: a position at the end of the log before the marker, and another when asked
    cursor = ReadCursor()
    got: list[tuple[int, bool]] = []

    async def follow() -> None:
        async for it in bus.read(filter_subjects=subjects, names=FOLDED, follow=True, cursor=cursor):
            if it.caught_up:
                got.append((0, False))
                seq = await bus.publish(rejected(3))
                cursor.want(seq)
                continue
            got.append((it.seq, it.position))
            if it.position and it.seq == 5:
                return

    await asyncio.wait_for(follow(), 10)
    assert got == [(1, False), (3, False), (4, True), (0, False), (5, True)]
    with pytest.raises(ValueError):
        [it async for it in bus.read("x.>", filter_subjects=subjects)]
