"""``python -m services.gateway`` as a process: starts, projects, serves, refuses a bad config in one line, and
drains on SIGTERM. ``gateway_process`` is reused by the schemathesis and dashboard tests."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import service_env
from tests.integration.test_projector_scenario import TOKEN, scenario
from xbot.embedded import free_port

ROOT = Path(__file__).resolve().parents[2]


def _spawn(env: dict[str, str], log_path: Path) -> subprocess.Popen:
    with open(log_path, "ab") as log:
        return subprocess.Popen([sys.executable, "-m", "services.gateway"], env=env, cwd=ROOT, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)


def _tail(log_path: Path, n: int = 2000) -> str:
    return log_path.read_text()[-n:]


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


@contextlib.asynccontextmanager
async def gateway_process(nats_url: str, namespace: str, database_url: str, log_path: Path,
                          **extra: str) -> AsyncIterator[str]:
    """Run the gateway as its own process until its /readyz answers 200; yields its base URL; SIGTERM after."""
    import asyncio

    port = free_port()
    settings = {"DATABASE_URL": database_url, "GATEWAY_PORT": str(port), "GATEWAY_HOST": "127.0.0.1",
                "ADMIN_TOKEN": TOKEN, "MODE": "live", "READY_MAX_LAG": "0", **extra}  # ready = caught up
    env = service_env(nats_url, namespace, **settings)
    proc = _spawn(env, log_path)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        async with httpx.AsyncClient(base_url=base, timeout=2) as client:
            while True:
                assert proc.poll() is None, f"gateway exited with {proc.returncode}: {_tail(log_path)}"
                assert time.monotonic() < deadline, f"gateway not ready: {_tail(log_path)}"
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get("/readyz")).status_code == 200:
                        break
                await asyncio.sleep(0.1)
        yield base
    finally:
        await asyncio.to_thread(_stop, proc)


@pytest.mark.e2e
async def test_gateway_process_serves_projects_and_drains(bus, namespace, nats_url, database_url, tmp_path) -> None:
    await bus.publish_many(scenario())
    log = tmp_path / "gateway.log"
    async with gateway_process(nats_url, namespace, database_url, log) as base:
        async with httpx.AsyncClient(base_url=base, timeout=5) as client:
            m = (await client.get("/api/metrics")).json()
            assert m["queueSize"] == 5 and m["projectorLag"] == 0 and m["attentionNeeded"] == 1
            r = await client.post("/admin/jobs/run?job=plan", headers={"Authorization": f"Bearer {TOKEN}"})
            assert r.status_code == 202
            assert (await client.get("/")).status_code == 200
    text = _tail(log, 10**7)
    assert "gateway listening on http://127.0.0.1:" in text and "service stopped" in text


@pytest.mark.e2e
def test_a_missing_database_url_stops_the_gateway_with_one_line(nats_url) -> None:
    env = service_env(nats_url, "tmissing")
    env.pop("DATABASE_URL", None)
    p = subprocess.run([sys.executable, "-m", "services.gateway"], env=env, cwd=ROOT, capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 2
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert lines == ["xbot gateway: configuration error: DATABASE_URL is missing"]
