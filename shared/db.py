"""PostgreSQL: an asyncpg pool and versioned SQL migrations applied at start (idempotent, under a lock)."""

from __future__ import annotations

from importlib import resources
from typing import Any

import asyncpg
import structlog

log = structlog.get_logger("db")

MIGRATION_LOCK = 724_031_117  # pg_advisory_lock key: one migrator at a time


def migration_files() -> list[tuple[str, str]]:
    root = resources.files("shared") / "migrations"
    files = sorted((p.name, p.read_text()) for p in root.iterdir() if p.name.endswith(".sql"))
    return files


async def create_pool(dsn: str, *, min_size: int = 1, max_size: int = 5, **kw: Any) -> asyncpg.Pool:
    return await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size, **kw)


async def apply_migrations(conn_or_pool: Any, extra: list[tuple[str, str]] | None = None) -> list[str]:
    """Apply pending migrations in order; returns the versions applied now."""
    applied_now: list[str] = []
    async with _acquire(conn_or_pool) as conn:
        await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
        try:
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version TEXT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
            done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
            for name, sql in migration_files() + (extra or []):
                if name in done:
                    continue
                async with conn.transaction():
                    await conn.execute(sql)
                    await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", name)
                applied_now.append(name)
                log.info("migration applied", version=name)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)
    return applied_now


async def migrations_pending(conn_or_pool: Any) -> list[str]:
    async with _acquire(conn_or_pool) as conn:
        exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")} if exists else set()
    return [n for n, _ in migration_files() if n not in done]


class _acquire:
    def __init__(self, conn_or_pool: Any):
        self.src = conn_or_pool
        self.conn: Any = None

    async def __aenter__(self) -> Any:
        if isinstance(self.src, asyncpg.Pool):
            self.conn = await self.src.acquire()
            return self.conn
        return self.src

    async def __aexit__(self, *exc: object) -> None:
        if self.conn is not None:
            await self.src.release(self.conn)
