"""HTTP pieces that need no servers: admin auth, the job trigger, /env, flags, cursors, ids, charts."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from services.gateway.app import create_app
from services.gateway.deps import Gateway
from services.gateway.queries import (
    UNSCHEDULED,
    BadCursor,
    beta_mean_sd,
    budget_day,
    decode_cursor,
    encode_cursor,
    id_forms,
    tweet_link,
    valid_id,
)
from services.gateway.svg import Bar, Point, bar_chart, rolling_mean, scatter_chart
from shared.bus.memory import InMemoryBus
from shared.clock import FixedClock
from shared.events import decode_command
from shared.flagstore import FlagStore

pytestmark = pytest.mark.unit
TOKEN = "t0ken-with-some-length"
AT = datetime(2026, 5, 1, 12, tzinfo=UTC)


async def client_for(token: str | None, env: dict[str, str] | None = None) -> tuple[httpx.AsyncClient, Gateway]:
    bus = InMemoryBus()
    flags = FlagStore(bus, env or {})
    await flags.start()
    gw = Gateway(bus=bus, flags=flags, pool=None, clock=FixedClock(AT), admin_token=token)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(gw)), base_url="http://gw")
    return client, gw


async def test_admin_auth_and_the_job_trigger() -> None:
    client, gw = await client_for(TOKEN)
    async with client:
        assert (await client.post("/admin/jobs/run?job=plan")).status_code == 401
        assert (await client.post("/admin/jobs/run?job=plan", headers={"X-Admin-Token": TOKEN[:-1]})).status_code == 401
        assert (await client.post("/admin/jobs/run?job=plan",
                                  headers={"Authorization": f"Bearer {TOKEN}x"})).status_code == 401
        r = await client.post("/admin/jobs/run?job=learn", headers={"Authorization": f"Bearer {TOKEN}", "X-Actor": "eve"})
        assert r.status_code == 202 and r.json()["run_id"].startswith("learn-")
        (msg,) = gw.bus.commands.msgs
        cmd = decode_command(msg.data)
        assert msg.subject == "xbot.cmd.learn" and cmd.params == {"actor": "eve"} and cmd.run_id == r.json()["run_id"]
        r = await client.post("/admin/jobs/run?job=PLAN", headers={"X-Admin-Token": TOKEN})
        assert r.status_code == 422 and r.json()["detail"] == (
            "unknown job 'PLAN'; allowed: plan, reply, posting, collect, learn")
    await gw.flags.stop()
    client, gw = await client_for(None)
    async with client:
        r = await client.post("/admin/jobs/run?job=plan", headers={"X-Admin-Token": "anything"})
        assert r.status_code == 403 and "ADMIN_TOKEN is not configured" in r.json()["detail"]
        assert not gw.bus.commands.msgs
    await gw.flags.stop()


async def test_env_follows_overrides_set_through_admin_flags() -> None:
    client, gw = await client_for(TOKEN, {"MODE": "live", "POSTING_DISABLED": "false"})
    async with client:
        env = (await client.get("/env")).json()
        assert env["postingAllowed"] is False  # LIVE_POSTS still false: fail closed
        assert env["sources"]["POSTING_DISABLED"] == "env"
        r = await client.put("/admin/flags", headers={"X-Admin-Token": TOKEN},
                             json={"values": {"LIVE_POSTS": True}, "actor": "ops"})
        assert r.status_code == 200 and r.json()["flags"]["LIVE_POSTS"] is True
        env = (await client.get("/env")).json()
        assert env["postingAllowed"] is True and env["sources"]["LIVE_POSTS"] == "override"
        (ev,) = [m for m in gw.bus.events.msgs if ".flag." in m.subject]
        assert b'"actor":"ops"' in ev.data
        r = await client.put("/admin/flags", headers={"X-Admin-Token": TOKEN}, json={"values": {"MODE": "turbo"}})
        assert r.status_code == 422 and "MODE" in r.json()["detail"]
        r = await client.put("/admin/flags", headers={"X-Admin-Token": TOKEN}, json={"nope": 1})
        assert r.status_code == 422 and "values" in r.json()["detail"]
        assert (await client.get("/healthz")).json() == {"ok": True, "service": "gateway"}
    await gw.flags.stop()


def test_cursors_round_trip_and_refuse_forgeries() -> None:
    at = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    did = "6f1c0c3e-6d0b-4a43-9d76-2f5d6f3f7a10"
    assert decode_cursor(encode_cursor([at, did])) == (at, did)
    assert decode_cursor(encode_cursor([UNSCHEDULED, did]))[0] == UNSCHEDULED
    for bad in ("", "x", encode_cursor(["not a time", did]), encode_cursor([at, "not-a-uuid"]), "!!!!"):
        with pytest.raises(BadCursor):
            decode_cursor(bad)


def test_ids_links_posteriors_and_budget_day() -> None:
    assert valid_id("6f1c0c3e-6d0b-4a43-9d76-2f5d6f3f7a10") and not valid_id("a.b") and not valid_id("a*")
    assert not valid_id("x" * 129) and not valid_id("")
    assert id_forms("6F1C0C3E6D0B4A439D762F5D6F3F7A10") == [
        "6F1C0C3E6D0B4A439D762F5D6F3F7A10", "6f1c0c3e-6d0b-4a43-9d76-2f5d6f3f7a10", "6f1c0c3e6d0b4a439d762f5d6f3f7a10"]
    assert id_forms("plain") == ["plain"]
    assert tweet_link("123", None, False) == "https://x.com/i/web/status/123"
    assert tweet_link("sim-1", "https://x.com/a/status/1", True) is None  # simulated ids never look like X's
    mean, sd = beta_mean_sd(3, 1)
    assert mean == 0.75 and sd == pytest.approx((3 / (16 * 5)) ** 0.5)
    day, start = budget_day(datetime(2026, 5, 1, 23, 30, tzinfo=UTC) + timedelta(hours=1))
    assert day == "2026-05-02" and start == datetime(2026, 5, 2, tzinfo=UTC)


def test_svg_charts_draw_what_they_are_given() -> None:
    pts = [Point(AT + timedelta(hours=i), 0.01 * i, "sim" if i % 2 else "real") for i in range(6)]
    svg = scatter_chart(pts, title="er")
    assert svg.count("<circle") == 6 and svg.count('class="pt sim"') == 3 and "<polyline" in svg
    assert rolling_mean([1, 2, 3, 4], 2) == [1, 1.5, 2.5, 3.5]
    bars = bar_chart([Bar("<script>", 0.5, 0.1, "n=3"), Bar("b", None)], vmax=1.0)
    assert bars.count("<rect") == 1 and "<script>" not in bars and "&lt;script&gt;" in bars
    assert bars.count('class="err"') == 1
    assert "no data yet" in bar_chart([]) and "nothing" in scatter_chart([], empty="nothing")
    heights = [float(h) for h in re.findall(r'height="([0-9.]+)"><title>', bar_chart([Bar("a", 0.2), Bar("b", 0.4)]))]
    assert heights[1] == pytest.approx(2 * heights[0], rel=0.01)
