"""`xbot up` says which clock the services run on: the one they will choose (shadow clock in shadow mode only,
the wall clock in live mode), from the MODE they will read (the environment's, or a runtime override)."""

from __future__ import annotations

import pytest

from shared.flagstore import FlagStore
from xbot.supervisor import _prepare, clock_line

pytestmark = pytest.mark.integration


def test_the_clock_line_says_what_the_services_run_on() -> None:
    assert clock_line("shadow", 60) == "shadow, shadow clock x60 (an hour every 1 min)"
    assert clock_line("shadow", 1) == "shadow, wall clock (shadow clock x1)"
    live = clock_line("live", 60)
    assert live.startswith("live, wall clock") and "x60" not in live and "shadow clock x" not in live


async def test_prepare_reads_the_mode_the_services_will_run_in(bus, nats_url, namespace, database_url) -> None:
    env = {"XBOT_NAMESPACE": namespace, "MODE": "live"}
    events, mode = await _prepare(nats_url, database_url, env)
    assert (events, mode) == (0, "live")
    # a runtime override wins over the environment, for the services and so for what `xbot up` prints
    store = FlagStore(bus, env)
    await store.start(watch=False)
    try:
        await store.set("MODE", "shadow", actor="test")
    finally:
        await store.stop()
    events, mode = await _prepare(nats_url, database_url, env)
    assert mode == "shadow" and events == 1  # the flag.changed event
    assert (await _prepare(nats_url, database_url, {"XBOT_NAMESPACE": namespace, "MODE": "shadow"}))[1] == "shadow"
