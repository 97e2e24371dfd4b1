"""Snapshots of each service's state (real nats-server, the services' own runtimes): a restart loads the snapshot
and replays only the tail, and the state it ends with equals a full replay's, compared attribute by attribute.
A snapshot that cannot be trusted (other code or settings, a recreated stream, one ahead of the stream, a corrupt
blob) is ignored and the service replays the whole log."""

from __future__ import annotations

import contextlib
import importlib
from typing import Any

import numpy as np
import pytest

from shared.bus import JetStreamBus
from shared.config import load_settings
from shared.service import ServiceRuntime, build_context, snapshot_fingerprint
from shared.snapshots import SnapshotStore, encode_state, restore_into
from tests.conftest import service_env
from tests.integration.test_projector_scenario import scenario

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

SERVICES = {
    "planner": ("PlannerSettings", {"PLAN_INTERVAL_MINUTES": "0"}),
    "replier": ("ReplierSettings", {"REPLY_INTERVAL_MINUTES": "0"}),
    "poster": ("PosterSettings", {"POSTING_INTERVAL_MINUTES": "0"}),
    "collector": ("CollectorSettings", {"COLLECT_INTERVAL_HOURS": "0"}),
    "learner": ("LearnerSettings", {"LEARN_INTERVAL_MINUTES": "0"}),
}


def same(a: Any, b: Any, path: str = "state") -> None:
    """Deep equality of two states (numpy arrays by value; objects by their attributes)."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        assert isinstance(a, np.ndarray) and isinstance(b, np.ndarray), path
        assert a.shape == b.shape and np.array_equal(a, b), path
    elif isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), f"{path}: keys {set(a) ^ set(b)}"
        for k in a:
            same(a[k], b[k], f"{path}[{k!r}]")
    elif isinstance(a, list | tuple):
        assert type(a) is type(b) and len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            same(x, y, f"{path}[{i}]")
    elif hasattr(a, "__getstate__") and hasattr(a, "__dict__") and not isinstance(a, type):
        assert type(a) is type(b), path
        same(a.__getstate__(), b.__getstate__(), path)  # what a snapshot keeps (e.g. an index's rows in use)
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


async def start(name: str, nats_url: str, namespace: str, **extra: str) -> ServiceRuntime:
    cls_name, env_extra = SERVICES[name]
    settings_cls = getattr(importlib.import_module(f"services.{name}.config"), cls_name)
    build = importlib.import_module(f"services.{name}.bootstrap").build
    environ = service_env(nats_url, namespace, MODE="shadow", **{**env_extra, **extra})
    ctx = await build_context(name, load_settings(settings_cls, environ), environ)
    rt = ServiceRuntime(name, ctx, await build(ctx))
    await rt.start()
    return rt


async def stop(rt: ServiceRuntime, *, clean: bool = True) -> None:
    if clean:
        await rt.stop()
    else:  # a crash: no snapshot on the way out
        rt.snapshots = None
        await rt.stop()
    await rt.ctx.flags.stop()
    await rt.ctx.bus.close()


@pytest.mark.parametrize("name", list(SERVICES))
async def test_restart_replays_only_the_tail_and_equals_a_full_replay(
    name: str, bus: JetStreamBus, nats_url: str, namespace: str
) -> None:
    events = scenario(n_bulk=40)
    cut = len(events) // 2
    await bus.publish_many(events[:cut])

    rt = await start(name, nats_url, namespace, SNAPSHOT_EVERY_EVENTS="1")
    first_end = await bus.last_seq()  # the start recorded the default account's configuration: one event more
    assert first_end == cut + 1
    assert rt.restored is None  # nothing to restore yet: a full replay
    assert rt.snapshot_seq == first_end  # and a snapshot right after catching up
    await stop(rt)

    await bus.publish_many(events[cut:])
    end = await bus.last_seq()
    # the second start restores the snapshot and replays only what came after it
    rt2 = await start(name, nats_url, namespace, SNAPSHOT_EVERY_EVENTS="1")
    try:
        assert rt2.restored is not None and rt2.restored.seq == first_end
        assert rt2.projection is not None
        assert rt2.projection.applied_count == end - first_end
        assert rt2.projection.applied_seq == end
        # the same state as a service that replays everything (snapshots off)
        full = await start(name, nats_url, namespace, SNAPSHOT_EVERY_EVENTS="0")
        try:
            assert full.restored is None and full.projection is not None and full.projection.applied_count == end
            same(rt2.parts.state, full.parts.state)
        finally:
            await stop(full)
    finally:
        await stop(rt2)


async def test_crash_between_snapshots_resumes_from_the_older_one(
    bus: JetStreamBus, nats_url: str, namespace: str
) -> None:
    """kill -9 after more events than the snapshot holds: the restart uses the older snapshot plus a longer tail."""
    events = scenario(n_bulk=60)
    a, b = len(events) // 3, 2 * len(events) // 3
    await bus.publish_many(events[:a])
    rt = await start("planner", nats_url, namespace, SNAPSHOT_EVERY_EVENTS="1")
    snap = rt.snapshot_seq
    await bus.publish_many(events[a:b])
    assert rt.projection is not None
    await rt.projection.wait_for(await bus.last_seq())
    await stop(rt, clean=False)
    await bus.publish_many(events[b:])

    rt2 = await start("planner", nats_url, namespace, SNAPSHOT_EVERY_EVENTS="1")
    full = await start("planner", nats_url, namespace, SNAPSHOT_EVERY_EVENTS="0")
    try:
        assert rt2.restored is not None and rt2.restored.seq == snap
        same(rt2.parts.state, full.parts.state)
    finally:
        await stop(full)
        await stop(rt2)


async def test_periodic_snapshot_while_running(bus: JetStreamBus, nats_url: str, namespace: str) -> None:
    await bus.publish_many(scenario()[:5])
    rt = await start("collector", nats_url, namespace, SNAPSHOT_EVERY_EVENTS="10", SNAPSHOT_CHECK_SECONDS="0.05")
    try:
        assert rt.snapshot_seq == 0  # 5 events: under the threshold, no snapshot yet
        await bus.publish_many(scenario(n_bulk=5)[5:])
        end = await bus.last_seq()
        for _ in range(200):
            if rt.snapshot_seq == end:
                break
            await __import__("asyncio").sleep(0.05)
        assert rt.snapshot_seq == end
    finally:
        await stop(rt)


async def _saved_snapshot(bus: JetStreamBus, nats_url: str, namespace: str, name: str = "collector") -> int:
    await bus.publish_many(scenario(n_bulk=5))
    rt = await start(name, nats_url, namespace, SNAPSHOT_EVERY_EVENTS="1")
    seq = rt.snapshot_seq
    await stop(rt)
    return seq


async def test_snapshot_of_other_settings_is_ignored(bus: JetStreamBus, nats_url: str, namespace: str) -> None:
    await _saved_snapshot(bus, nats_url, namespace, "planner")
    rt = await start("planner", nats_url, namespace, UNIQUENESS_WINDOW_DAYS="7")
    try:
        assert rt.restored is None  # the window is part of the state: a full replay
        assert rt.parts.state.of("default").uniqueness_window.days == 7
    finally:
        await stop(rt)


async def test_snapshot_of_other_code_is_ignored(bus: JetStreamBus, nats_url: str, namespace: str) -> None:
    await _saved_snapshot(bus, nats_url, namespace)
    store = SnapshotStore(bus, "collector", fingerprint="other-code")
    state = importlib.import_module("services.collector.domain").CollectorState()
    assert await store.load_into(state) is None
    assert state.posted == {} and state.events_applied == 0  # untouched


async def test_snapshot_ahead_of_the_stream_or_of_a_recreated_stream_is_ignored(
    bus: JetStreamBus, nats_url: str, namespace: str
) -> None:
    from services.collector.domain import CollectorState

    await _saved_snapshot(bus, nats_url, namespace)
    fp = snapshot_fingerprint("collector", {})
    assert await SnapshotStore(bus, "collector", fp).load_into(CollectorState()) is not None
    # the stream is dropped and recreated (a new deployment, a restore): the old snapshot must not be used
    await bus.js.delete_stream(bus.names.events_stream)
    await bus.ensure()
    await bus.publish_many(scenario()[:3])
    assert await SnapshotStore(bus, "collector", fp).load_into(CollectorState()) is None
    rt = await start("collector", nats_url, namespace)
    try:
        # a full replay: the three events and the default account's configuration, recorded again at start
        assert rt.restored is None and rt.projection is not None and rt.projection.applied_count == 3 + 1
    finally:
        await stop(rt)


async def test_corrupt_snapshot_is_ignored(bus: JetStreamBus, nats_url: str, namespace: str) -> None:
    await _saved_snapshot(bus, nats_url, namespace)
    obs = await bus.object_store_bucket()
    await obs.put("collector", b"\x00not a snapshot")
    rt = await start("collector", nats_url, namespace)
    try:
        assert rt.restored is None and rt.projection is not None
        assert rt.projection.applied_count == await bus.last_seq()
    finally:
        await stop(rt)


def test_restore_refuses_a_state_of_another_shape() -> None:
    from services.collector.domain import CollectorState
    from services.learner.domain import LearnerState

    codec, blob = encode_state(LearnerState())
    assert codec == "msgspec"  # a dataclass of Structs: typed msgpack
    target = CollectorState()
    with pytest.raises(Exception):  # noqa: B017 - msgspec refuses the other type's fields
        restore_into(target, blob, codec)
    from services.poster.domain import PosterState

    codec, blob = encode_state(PosterState())
    assert codec == "pickle"  # a plain class
    with pytest.raises(ValueError, match="attributes differ"):
        restore_into(target, blob, codec)
    with contextlib.suppress(Exception):
        restore_into(target, b"garbage")
    assert target.posted == {}
