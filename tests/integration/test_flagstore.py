"""Runtime overrides through the KV bucket: every replica sees a change without a restart, each change is audited."""

import asyncio

import pytest

from shared.bus import wait_until
from shared.errors import ConfigError
from shared.events import FlagChanged
from shared.flagstore import FlagStore

pytestmark = pytest.mark.integration


async def test_override_seen_by_another_replica_and_audited(bus) -> None:
    a, b = FlagStore(bus, {}), FlagStore(bus, {"POSTING_DISABLED": "true"})
    await a.start()
    await b.start()
    try:
        assert b.current().POSTING_DISABLED is True
        await a.set("POSTING_DISABLED", "false", actor="ops@test")
        assert await wait_until(lambda: b.current().POSTING_DISABLED is False, timeout=5)
        assert b.current().sources["POSTING_DISABLED"] == "override"
        await a.set("POSTING_DISABLED", None, actor="ops@test")
        assert await wait_until(lambda: b.current().POSTING_DISABLED is True, timeout=5)
        with pytest.raises(ConfigError):
            await a.set("POSTING_DISABLED", "maybe", actor="x")
        with pytest.raises(ConfigError):
            await a.set("NOPE", "1", actor="x")
        changes = [it.event async for it in bus.read() if not it.caught_up]
        assert [type(c) for c in changes] == [FlagChanged, FlagChanged]
        assert changes[0].actor == "ops@test" and changes[0].new_value == "false" and changes[1].new_value is None
    finally:
        await a.stop()
        await b.stop()


async def test_restarted_replica_loads_existing_overrides(bus) -> None:
    a = FlagStore(bus, {})
    await asyncio.wait_for(a.start(), 20)
    await asyncio.wait_for(a.set("AI_QUOTA_CIRCUIT_OPEN", "true", actor="t"), 20)
    await asyncio.wait_for(a.stop(), 20)
    c = FlagStore(bus, {})
    await asyncio.wait_for(c.start(), 20)
    assert c.current().AI_QUOTA_CIRCUIT_OPEN is True
    await asyncio.wait_for(c.stop(), 20)


async def test_refresh_sees_a_change_made_a_moment_ago_and_reads_little_when_nothing_changed(bus) -> None:
    """The poster's check right before each post: ``refresh`` must see a change another replica just made (no
    watch to wait for), and when nothing changed it must not read every key again."""
    writer, poster = FlagStore(bus, {}), FlagStore(bus, {})
    await writer.start(watch=False)
    await poster.start(watch=False)
    try:
        assert (await poster.refresh()).POSTING_DISABLED is True
        await writer.set("POSTING_DISABLED", "false", actor="ops@test")
        assert (await poster.refresh()).POSTING_DISABLED is False  # at once: no watch, no wait
        await writer.set("POSTING_DISABLED", None, actor="ops@test")  # a delete moves the bucket too
        assert (await poster.refresh()).POSTING_DISABLED is True

        gets = 0
        real_get = poster._kv.get

        async def counting_get(*a, **kw):
            nonlocal gets
            gets += 1
            return await real_get(*a, **kw)

        poster._kv.get = counting_get
        for _ in range(5):
            await poster.refresh()
        assert gets == 0  # unchanged bucket: one stream-info request per refresh, no key reads
        await writer.set("MIN_QUALITY_SCORE", "0.9", actor="ops@test")
        assert (await poster.refresh()).MIN_QUALITY_SCORE == 0.9 and gets > 0
    finally:
        await writer.stop()
        await poster.stop()
