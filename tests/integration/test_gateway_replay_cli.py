"""``xbot replay --rebuild`` drives ``services.gateway.replay.rebuild``: progress, final rate, same rows."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import service_env
from tests.integration.test_projector_replay import snapshot
from tests.integration.test_projector_scenario import migrated, project_all, scenario

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def _run_cli(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "xbot", "replay", "--rebuild"], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


async def test_xbot_replay_rebuild_reproduces_the_tables(bus, namespace, nats_url, database_url, tmp_path) -> None:
    await migrated(database_url)
    await bus.publish_many(scenario(n_bulk=50))
    await project_all(bus, database_url)
    before = await snapshot(database_url)
    env = service_env(nats_url, namespace, DATABASE_URL=database_url, XBOT_HOME=str(tmp_path))
    p = await asyncio.to_thread(_run_cli, env)
    assert p.returncode == 0, p.stderr
    last = await bus.last_seq()
    assert f"rebuilt from {last} events in " in p.stdout and "events/s)" in p.stdout
    assert await snapshot(database_url) == before
