"""Faults at the bus level, against real nats-server processes: a server restart mid-run, a node of a 3-node
JetStream cluster killed mid-run, and malformed payloads (hand-made and hypothesis-generated)."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.bus import (
    BusNames,
    ConsumerPolicy,
    Delivered,
    JetStreamBus,
    Projection,
    StreamSettings,
    wait_until,
)
from shared.events import SCHEMA_VERSION, DecisionApproved, encode, new_event_id
from xbot.embedded import EmbeddedNats, free_port

pytestmark = [pytest.mark.integration, pytest.mark.chaos]
NOW = datetime(2026, 11, 24, tzinfo=UTC)


def ev(i: int) -> DecisionApproved:
    return DecisionApproved(event_id=f"ev-{i}", occurred_at=NOW, decision_id=f"d{i}")


async def _publish_retrying(bus: JetStreamBus, e: DecisionApproved, attempts: int = 300) -> None:
    """What a service does: publish with the event id as Nats-Msg-Id, retry while the server is away."""
    for _ in range(attempts):
        try:
            await bus.publish(e)
            return
        except Exception:
            await asyncio.sleep(0.1)
    raise AssertionError(f"could not publish {e.event_id}")


async def test_server_restart_mid_run_loses_nothing(tmp_path: Path) -> None:
    srv = EmbeddedNats(tmp_path / "n1").start()
    bus = await JetStreamBus.connect(srv.url, names=BusNames("restart"))
    await bus.ensure()
    seen: list[str] = []
    proj = Projection(bus, lambda it: seen.append(it.event.decision_id), name="p")
    proj.start()
    await proj.wait_caught_up()
    consumed: set[str] = set()

    async def handler(d: Delivered) -> None:
        consumed.add(d.event.decision_id)

    c = await bus.consume("c", f"{bus.names.evt_prefix}.>", handler, policy=ConsumerPolicy(fetch_timeout_s=0.2))
    try:
        for i in range(100):
            await _publish_retrying(bus, ev(i))
        srv.stop()  # file storage kept
        await asyncio.sleep(0.5)
        srv.start()
        for i in range(100, 200):
            await _publish_retrying(bus, ev(i))
        want = {f"d{i}" for i in range(200)}
        assert await wait_until(lambda: want <= consumed, timeout=30), len(consumed)
        assert await wait_until(lambda: set(seen) == want, timeout=30), len(seen)
        assert len(seen) == 200  # no double apply
    finally:
        await c.stop()
        await proj.stop()
        await bus.close()
        srv.stop()


async def test_three_node_cluster_survives_a_node_kill(tmp_path: Path) -> None:
    ports = [free_port() for _ in range(3)]
    cports = [free_port() for _ in range(3)]
    routes = ",".join(f"nats://127.0.0.1:{p}" for p in cports)
    nodes = [
        EmbeddedNats(tmp_path / f"n{i}", ports[i], name=f"n{i}",
                     extra_args=["--cluster_name", "xbot", "--cluster", f"nats://127.0.0.1:{cports[i]}",
                                 "--routes", routes])
        for i in range(3)
    ]
    for n in nodes:
        n.start()
    url = ",".join(n.url for n in nodes)
    bus = None
    try:
        for _ in range(200):  # the cluster elects its meta leader
            with contextlib.suppress(Exception):
                bus = await JetStreamBus.connect(url, names=BusNames("cluster"), settings=StreamSettings(replicas=3))
                await bus.ensure()
                break
            if bus is not None:
                await bus.close()
                bus = None
            await asyncio.sleep(0.3)
        assert bus is not None, "cluster never became ready"
        info = await bus.js.stream_info(bus.names.events_stream)
        assert info.config.num_replicas == 3
        for i in range(100):
            await _publish_retrying(bus, ev(i))
        nodes[1].kill()
        for i in range(100, 200):
            await _publish_retrying(bus, ev(i))
        got: list[str] = []
        for _ in range(60):  # the stream may still be electing a new leader: read again, bounded
            try:
                got = [it.event.decision_id async for it in bus.read() if not it.caught_up]
                if len(got) == 200:
                    break
            except Exception:
                pass
            await asyncio.sleep(0.5)
        assert got == [f"d{i}" for i in range(200)]
        nodes[1].start()  # the node rejoins
        replicas: list = []
        for _ in range(300):
            with contextlib.suppress(Exception):
                info = await bus.js.stream_info(bus.names.events_stream)
                replicas = info.cluster.replicas or []
                if len(replicas) == 2 and all(r.current for r in replicas):
                    break
            await asyncio.sleep(0.2)
        assert len(replicas) == 2 and all(r.current for r in replicas)
    finally:
        if bus is not None:
            await bus.close()
        for n in nodes:
            n.stop()


MALFORMED = [
    b"", b"null", b"{}", b"[1,2]", b"\xff\xfe", b'{"type":"decision.queued"}', b'{"type":"unknown.thing","event_id":"x"}',
    encode(ev(1)).replace(b'"schema":%d' % SCHEMA_VERSION, b'"schema":%d' % (SCHEMA_VERSION + 1)), b"{" * 5000, b'{"type":"decision.approved","event_id":1}',
]


async def test_malformed_events_dead_lettered_service_goes_on(bus) -> None:
    good: list[str] = []

    async def handler(d: Delivered) -> None:
        good.append(d.event.decision_id)

    c = await bus.consume("fuzz", f"{bus.names.evt_prefix}.>", handler, policy=ConsumerPolicy(fetch_timeout_s=0.2))
    for i, payload in enumerate(MALFORMED):
        await bus.publish_raw(f"{bus.names.evt_prefix}.decision.m{i}.approved", payload)
        await bus.publish(ev(i))
    big = b'{"type":"decision.approved","pad":"' + b"x" * (2 * 1024 * 1024) + b'"}'
    with pytest.raises(Exception):  # noqa: B017 - oversized messages are refused by the stream (max_msg_size)
        await bus.publish_raw(f"{bus.names.evt_prefix}.decision.big.approved", big)
    assert await wait_until(lambda: len(good) == len(MALFORMED) and c.dead_lettered == len(MALFORMED), timeout=20)
    await c.stop()
    assert await bus.dlq_count() == len(MALFORMED)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=st.one_of(st.binary(max_size=300), st.dictionaries(st.text(max_size=10), st.text(max_size=20)).map(
    lambda d: __import__("json").dumps(d).encode())))
def test_decode_never_crashes_on_arbitrary_payloads(payload: bytes) -> None:
    from shared.events import DecodeError, decode

    try:
        decode(payload)
    except DecodeError:
        pass


async def test_projection_survives_fuzzed_payloads(bus) -> None:
    import random

    rng = random.Random(7)
    seen: list[str] = []
    proj = Projection(bus, lambda it: seen.append(it.event.decision_id), name="fuzzproj")
    proj.start()
    await proj.wait_caught_up()
    bad = 0
    last = 0
    for i in range(200):
        if rng.random() < 0.3:
            payload = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 64)))
            await bus.publish_raw(f"{bus.names.evt_prefix}.decision.f{i}.approved", payload,
                                  {"Nats-Msg-Id": new_event_id()})
            bad += 1
        else:
            last = await bus.publish(ev(i))
    await proj.wait_for(last)
    await proj.stop()
    assert len(seen) == 200 - bad
    assert await wait_until(lambda: True)
    assert await bus.dlq_count() == bad
