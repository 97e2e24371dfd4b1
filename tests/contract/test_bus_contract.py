"""One bus contract, run against the in-memory bus and a real nats-server: dedup, optimistic concurrency,
redelivery, nak with delay, term and max_deliver to dead letters, durable resume, replay equals live, concurrency."""

import asyncio
from datetime import UTC, datetime

import pytest

from shared.bus import (
    FIRST_EVENT,
    ConsumerPolicy,
    Delivered,
    Poison,
    Projection,
    Retry,
    WrongSequence,
    after,
    wait_until,
)
from shared.events import DecisionApproved, DecisionPostStarted, DecisionRejected, new_event_id

pytestmark = pytest.mark.integration
NOW = datetime(2026, 11, 24, tzinfo=UTC)


@pytest.fixture(params=["memory", "jetstream"])
async def any_bus(request, nats_url, namespace):
    from shared.bus import BusNames, InMemoryBus, JetStreamBus, StreamSettings
    from tests.conftest import delete_namespace

    if request.param == "memory":
        b = InMemoryBus()
        yield b
        await b.close()
        return
    jb = await JetStreamBus.connect(nats_url, names=BusNames(namespace), settings=StreamSettings(duplicate_window_s=120))
    await jb.ensure()
    yield jb
    await delete_namespace(jb)
    await jb.close()


def approved(did: str, eid: str | None = None) -> DecisionApproved:
    return DecisionApproved(event_id=eid or new_event_id(), occurred_at=NOW, decision_id=did)


async def test_dedup_by_event_id(any_bus) -> None:
    bus = any_bus
    e = approved("d1", "same-id")
    assert await bus.publish(e) == await bus.publish(e)
    assert await bus.last_seq() == 1


async def test_optimistic_concurrency_loser_gets_error(any_bus) -> None:
    bus = any_bus
    s1 = await bus.publish(approved("d1"))
    await bus.publish(approved("d2"))  # another aggregate moving does not matter
    claims = [
        DecisionPostStarted(event_id=new_event_id(), occurred_at=NOW, decision_id="d1", attempt=1, poster_id=p)
        for p in ("a", "b")
    ]
    results = await asyncio.gather(
        *[bus.publish(c, expect=after(s1)) for c in claims], return_exceptions=True
    )
    assert sum(isinstance(r, int) for r in results) == 1
    assert sum(isinstance(r, WrongSequence) for r in results) == 1


async def test_the_guard_is_derived_from_the_event_not_spelled_by_the_caller(any_bus) -> None:
    """A guard names no subject: it is checked against the event's own aggregate, whatever else moved."""
    bus = any_bus
    assert bus.names.history_of(approved("d7")) == f"{bus.names.evt_prefix}.decision.d7.*"
    await bus.publish(approved("d7"), expect=FIRST_EVENT)
    await bus.publish(approved("d8"), expect=FIRST_EVENT)  # another decision's first event: allowed
    with pytest.raises(WrongSequence):
        await bus.publish(approved("d7"), expect=FIRST_EVENT)
    with pytest.raises(ValueError):
        after(-1)


async def test_publish_begin_sends_in_order_and_its_future_gives_the_seq_or_wrong_sequence(any_bus) -> None:
    bus = any_bus
    first = await bus.publish_begin(approved("d1"), expect=FIRST_EVENT)
    later = await bus.publish(approved("d2"))  # a plain publish after it: the log keeps the order they were sent
    refused = await bus.publish_begin(approved("d1"), expect=FIRST_EVENT)
    assert await asyncio.wait_for(first, 5) == 1 and later == 2
    with pytest.raises(WrongSequence):
        await asyncio.wait_for(refused, 5)
    assert await bus.last_seq() == 2


async def test_publish_begin_from_many_tasks_at_once_settles_every_ack(any_bus) -> None:
    bus = any_bus
    futures = await asyncio.gather(*(bus.publish_begin(approved(f"c{i}")) for i in range(20)))
    seqs = await asyncio.wait_for(asyncio.gather(*futures), 5)
    assert sorted(seqs) == list(range(1, 21))


async def test_redelivery_nak_term_dead_letter_and_max_deliver(any_bus) -> None:
    bus = any_bus
    for i in range(3):
        await bus.publish(approved(f"d{i}"))
    seen: dict[str, int] = {}

    async def handler(d: Delivered) -> None:
        did = d.event.decision_id
        seen[did] = seen.get(did, 0) + 1
        if did == "d0" and d.num_delivered == 1:
            raise Retry("flaky", delay_s=0.05)
        if did == "d1":
            raise Poison("never")
        if did == "d2":
            raise RuntimeError("always")

    c = await bus.consume(
        "t", f"{bus.names.evt_prefix}.>", handler,
        policy=ConsumerPolicy(batch=10, max_deliver=3, retry_base_delay_s=0.05, fetch_timeout_s=0.2),
    )
    await bus.publish_raw(f"{bus.names.evt_prefix}.decision.bad.approved", b"{not json")
    assert await wait_until(lambda: c.processed == 1 and c.dead_lettered == 3, timeout=15)
    await c.stop()
    assert seen == {"d0": 2, "d1": 1, "d2": 3}
    assert await bus.dlq_count() == 3


async def test_durable_resume_without_loss_or_double_apply(any_bus) -> None:
    bus = any_bus
    for i in range(20):
        await bus.publish(approved(f"d{i}"))
    got: list[str] = []

    async def handler(d: Delivered) -> None:
        got.append(d.event.decision_id)

    pol = ConsumerPolicy(batch=5, fetch_timeout_s=0.2)
    c = await bus.consume("resume", f"{bus.names.evt_prefix}.>", handler, policy=pol)
    assert await wait_until(lambda: len(got) >= 10, timeout=10)
    await c.stop()
    for i in range(20, 25):
        await bus.publish(approved(f"d{i}"))
    c2 = await bus.consume("resume", f"{bus.names.evt_prefix}.>", handler, policy=pol)
    assert await wait_until(lambda: len(set(got)) == 25, timeout=10)
    await asyncio.sleep(0.3)
    await c2.stop()
    assert len(got) == 25 and len(set(got)) == 25


async def test_replay_equals_live_state(any_bus) -> None:
    bus = any_bus
    live: list[str] = []
    p = Projection(bus, lambda it: live.append(it.event.decision_id), name="live")
    p.start()
    await p.wait_caught_up()
    last = 0
    for i in range(50):
        last = await bus.publish(approved(f"d{i}"))
    await p.wait_for(last)
    await p.stop()
    replayed = [it.event.decision_id async for it in bus.read() if not it.caught_up]
    assert replayed == live and len(live) == 50


async def test_a_projection_with_names_gets_only_those_and_still_reads_to_the_end(any_bus) -> None:
    """Filtered on the types it folds (both subject shapes): it receives those only, of every account, and its
    position still reaches the end of the log (caught up, ``wait_for`` an event it does not fold)."""
    bus = any_bus
    rejected = [DecisionRejected(event_id=new_event_id(), occurred_at=NOW, decision_id=f"r{i}") for i in range(3)]
    await bus.publish_many([approved("d1"), rejected[0], DecisionApproved(event_id=new_event_id(), occurred_at=NOW, decision_id="d2", account="acme"), rejected[1]])
    got: list[tuple[str, str]] = []
    p = Projection(bus, lambda it: got.append((it.event.account, it.event.decision_id)), name="filtered",
                   names=frozenset({"decision.approved"}))
    p.start()
    await p.wait_caught_up(10)
    assert p.applied_seq == await bus.last_seq() == 4 and p.received == 2 and p.applied_count == 4
    a = await bus.publish(approved("d3"))
    b = await bus.publish(rejected[2])
    await p.wait_for(b, timeout=5)
    assert p.applied_seq >= b > a and p.received == 3
    await p.stop()
    assert got == [("default", "d1"), ("acme", "d2"), ("default", "d3")]
    replayed = [it async for it in bus.read(filter_subjects=p.filter_subjects, names=p.names) if not it.caught_up]
    assert [it.event.decision_id for it in replayed] == ["d1", "d2", "d3"] and not any(it.position for it in replayed)


async def test_concurrency_bound(any_bus) -> None:
    bus = any_bus
    for i in range(12):
        await bus.publish(approved(f"d{i}"))
    active = 0
    peak = 0

    async def handler(d: Delivered) -> None:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.05)
        active -= 1

    c = await bus.consume("conc", f"{bus.names.evt_prefix}.>", handler, policy=ConsumerPolicy(batch=12, concurrency=3, fetch_timeout_s=0.2))
    assert await wait_until(lambda: c.processed == 12, timeout=10)
    await c.stop()
    assert peak == 3


async def test_projection_dead_letters_malformed_and_goes_on(any_bus) -> None:
    bus = any_bus
    await bus.publish_raw(f"{bus.names.evt_prefix}.decision.x.approved", b'{"type":"decision.approved"}')
    last = await bus.publish(approved("ok"))
    got = []
    p = Projection(bus, lambda it: got.append(it.event.decision_id), name="proj")
    p.start()
    await p.wait_for(last)
    await p.stop()
    assert got == ["ok"]
    assert await bus.dlq_count() == 1


async def test_dead_letter_carries_the_error_on_jetstream(bus) -> None:
    async def handler(d: Delivered) -> None:
        raise Poison("bad payload")

    await bus.publish(approved("x"))
    c = await bus.consume("dl", f"{bus.names.evt_prefix}.>", handler, policy=ConsumerPolicy(fetch_timeout_s=0.2))
    assert await wait_until(lambda: c.dead_lettered == 1, timeout=10)
    await c.stop()
    m = await bus.js.get_last_msg(bus.names.dlq_stream, f"{bus.names.dlq_prefix}.dl")
    assert m.headers["Xbot-Error"] == "poison: bad payload"
    assert m.headers["Xbot-Original-Subject"] == f"{bus.names.evt_prefix}.decision.x.approved"


async def test_redelivery_after_crash_without_ack(bus, nats_url) -> None:
    """A consumer that dies holding a message (no ack) gets it redelivered to the next one after ack_wait."""
    from shared.bus import JetStreamBus

    await bus.publish(approved("held"))
    other = await JetStreamBus.connect(nats_url, names=bus.names)
    got: list[int] = []
    started = asyncio.Event()

    async def stuck(d: Delivered) -> None:
        started.set()
        await asyncio.sleep(3600)

    pol = ConsumerPolicy(ack_wait_s=1.0, fetch_timeout_s=0.2, in_progress_every_s=3600)
    c1 = await other.consume("crash", f"{bus.names.evt_prefix}.>", stuck, policy=pol)
    await asyncio.wait_for(started.wait(), 5)
    other.nc._transport.close()  # the process "dies": connection gone, no ack ever sent
    await c1.stop(timeout=0.1)

    async def ok(d: Delivered) -> None:
        got.append(d.num_delivered)

    c2 = await bus.consume("crash", f"{bus.names.evt_prefix}.>", ok, policy=pol)
    assert await wait_until(lambda: got == [2], timeout=10)
    await c2.stop()
    await other.close()
