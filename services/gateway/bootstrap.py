"""The one place the gateway is wired: database pool and migrations, projector, HTTP server."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import asyncpg
import structlog
import uvicorn

from shared.bus.core import cancel_quietly
from shared.db import apply_migrations, create_pool
from shared.errors import ConfigError
from shared.service import ServiceContext, ServiceParts

from .app import create_app
from .config import GatewaySettings
from .deps import Gateway
from .projector import TRANSIENT, Projector

log = structlog.get_logger("gateway")


class _Server(uvicorn.Server):
    """uvicorn under the service runtime: the runtime owns SIGTERM/SIGINT and the drain."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def connect_database(dsn: str, *, attempts: int = 60, pool_size: int = 5) -> asyncpg.Pool:
    """A pool, once PostgreSQL answers (bounded wait: compose may start us first), with migrations applied."""
    last: BaseException | None = None
    for _ in range(attempts):
        try:
            pool = await create_pool(dsn, min_size=1, max_size=pool_size, timeout=10, command_timeout=30)
            await apply_migrations(pool)
            return pool
        except TRANSIENT as exc:
            last = exc
            await asyncio.sleep(1.0)
    raise ConfigError(f"DATABASE_URL is not reachable: {last}")


async def build(ctx: ServiceContext) -> ServiceParts:
    settings: GatewaySettings = ctx.settings
    pool = await connect_database(settings.DATABASE_URL, pool_size=settings.DB_POOL_SIZE)
    projector = Projector(ctx.bus, settings.DATABASE_URL, name="gateway", batch_size=settings.PROJECTOR_BATCH,
                          flush_s=settings.PROJECTOR_FLUSH_MS / 1000)
    gw = Gateway(
        bus=ctx.bus, flags=ctx.flags, pool=pool, clock=ctx.clock, admin_token=settings.ADMIN_TOKEN or None,
        ready_max_lag=settings.READY_MAX_LAG, projector=projector,
    )
    app = create_app(gw)
    server = _Server(uvicorn.Config(app, host=settings.GATEWAY_HOST, port=settings.GATEWAY_PORT, log_config=None,
                                    access_log=False, lifespan="off", timeout_graceful_shutdown=5))
    if not gw.admin_token:
        log.warning("ADMIN_TOKEN is not set: the admin endpoints answer 403 (off)")

    async def run_projector() -> None:
        await projector.run(follow=True)

    async def run_http() -> None:
        task = asyncio.create_task(server.serve(), name="gateway-http")
        try:
            while not server.started and not task.done():
                await asyncio.sleep(0.05)
            if server.started:
                log.info(f"gateway listening on http://{settings.GATEWAY_HOST}:{settings.GATEWAY_PORT} "
                         f"(dashboard /, API docs /docs)")
            await asyncio.shield(task)
        except asyncio.CancelledError:
            server.should_exit = True  # drain: finish requests in flight, then stop listening
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(task, 10)
            raise

    async def on_stop() -> None:
        await cancel_quietly(gw.metrics_refresh)
        await projector.stop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(pool.close(), 5)

    def health() -> dict[str, object]:
        return {"projector_position": projector.position, "projector_db_ok": projector.db_ok,
                "events_applied": projector.events_applied, "dead_lettered": projector.dead_lettered}

    def ready() -> bool:
        return projector.db_ok and projector.caught_up.is_set() and projector.failed is None

    return ServiceParts(background=[run_http, run_projector], on_stop=on_stop, ready=ready, health=health)


__all__ = ["build", "connect_database"]
