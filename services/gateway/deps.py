"""What the endpoints depend on, as ``Annotated`` dependencies (tests build a ``Gateway`` with their own parts)."""

from __future__ import annotations

import asyncio
import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Header, HTTPException, Query, Request, status
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CollectorRegistry, Histogram

from shared.clock import Clock
from shared.events import ACCOUNT_PATTERN

from .prom import SnapshotCollector, request_histogram


@dataclass
class Gateway:
    """The gateway's wiring: bus, flags, clock, database pool, projector and settings."""

    bus: Any
    flags: Any  # shared.flagstore.FlagStore
    pool: Any  # asyncpg.Pool
    clock: Clock
    admin_token: str | None = None
    ready_max_lag: int = 1000
    projector: Any = None  # services.gateway.projector.Projector
    migrations_ok: bool = True
    projector_name: str = "gateway"
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    latency: Histogram | None = None
    collector: SnapshotCollector | None = None
    #: /api/metrics is computed once per projector position and flag version (and renewed when older than
    #: METRICS_MAX_AGE_S), not per request: (key, taken at, snapshot)
    metrics_cache: tuple[Any, float, dict[str, Any]] | None = None
    metrics_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    #: the background renewal started by a request that found the snapshot past METRICS_REFRESH_AHEAD_S
    metrics_refresh: asyncio.Task[None] | None = None
    metrics_body: tuple[dict[str, Any], bytes] | None = None
    #: /api/metrics?account=<id>: each account's body, encoded once per snapshot (snapshot, {account: body})
    account_bodies: tuple[dict[str, Any], dict[str, bytes]] | None = None
    #: where ``env:`` session references of a profile PUT through the admin API are looked up
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)

    def __post_init__(self) -> None:
        if self.latency is None:
            self.latency = request_histogram(self.registry)
        if self.collector is None:
            self.collector = SnapshotCollector(self.projector)
            self.registry.register(self.collector)


def gateway_of(request: Request) -> Gateway:
    return request.app.state.gateway  # type: ignore[no-any-return]


async def get_gateway(request: Request) -> Gateway:
    """``async`` on purpose: FastAPI runs a plain ``def`` dependency in the thread pool, a thread hand-off (and GIL
    contention with the worker threads) on every request."""
    return gateway_of(request)


GatewayDep = Annotated[Gateway, Depends(get_gateway)]

_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer <ADMIN_TOKEN>")
_header = APIKeyHeader(name="X-Admin-Token", auto_error=False, description="X-Admin-Token: <ADMIN_TOKEN>")


async def require_admin(
    gw: GatewayDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    token: Annotated[str | None, Depends(_header)],
    x_actor: Annotated[str | None, Header(max_length=200, description="who is acting (audited)")] = None,
) -> str:
    """Admin calls: 403 while ADMIN_TOKEN is not configured (admin is off), 401 without the right token
    (compared in constant time). Returns the actor recorded in the events."""
    refused = check_admin(gw.admin_token, bearer.credentials if bearer else None, token)
    if refused is not None:
        code, detail = refused
        raise HTTPException(code, detail, headers={"WWW-Authenticate": "Bearer"} if code == 401 else None)
    return (x_actor or "admin").strip()[:200] or "admin"


def check_admin(admin_token: str | None, bearer: str | None, header: str | None) -> tuple[int, str] | None:
    """None when allowed, else (status, reason): 403 while ADMIN_TOKEN is not configured, 401 without the right
    token (compared in constant time)."""
    if not admin_token:
        return status.HTTP_403_FORBIDDEN, "admin endpoints are disabled: ADMIN_TOKEN is not configured on the gateway"
    given = [t for t in (bearer, header) if t]
    expected = admin_token.encode()
    ok = False
    for t in given:
        ok |= hmac.compare_digest(t.encode(), expected)
    if not ok:
        return status.HTTP_401_UNAUTHORIZED, "missing admin token" if not given else "wrong admin token"
    return None


class AdminGuard:
    """Checks the admin token for every /admin request before the body is read or parsed (plain ASGI), so a
    caller without the token gets 401/403 whatever it sends, and a large body is never read for them."""

    def __init__(self, app: Any, gw: Gateway):
        self.app, self.gw = app, gw

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope.get("path", "").startswith("/admin"):
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
            auth = headers.get("authorization", "")
            bearer = auth[7:].strip() if auth[:7].lower() == "bearer " else None
            refused = check_admin(self.gw.admin_token, bearer, headers.get("x-admin-token"))
            if refused is not None:
                import json

                code, detail = refused
                body = json.dumps({"detail": detail}).encode()
                extra = [(b"www-authenticate", b"Bearer")] if code == 401 else []
                await send({"type": "http.response.start", "status": code, "headers": [
                    (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *extra]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


AdminActor = Annotated[str, Depends(require_admin)]


#: ``?account=<id>``: one account (an account id is a subject token); 422 naming the parameter when malformed
AccountParam = Annotated[str | None, Query(
    pattern=ACCOUNT_PATTERN, description="only this account (its id); without it, every account")]


async def known_accounts(gw: Gateway) -> set[str]:
    """The accounts the gateway knows: the default one, those configured, and any whose events are projected."""
    from .queries import cached_metrics_snapshot

    return set((await cached_metrics_snapshot(gw)).get("accounts") or ())


async def ensure_account(gw: Gateway, account: str | None) -> None:
    """404 naming ``account`` when the gateway knows no such account (None: every account, always fine)."""
    if account is not None and account not in await known_accounts(gw):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no account {account!r}")
