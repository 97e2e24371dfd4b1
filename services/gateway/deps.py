"""What the endpoints depend on, as ``Annotated`` dependencies (tests build a ``Gateway`` with their own parts)."""

from __future__ import annotations

import asyncio
import hmac
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Header, HTTPException, Request, status
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CollectorRegistry, Histogram

from shared.clock import Clock

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
    #: /api/metrics is computed once per projector position (and at most every METRICS_MAX_AGE_S), not per request
    metrics_cache: tuple[Any, float, dict[str, Any]] | None = None
    metrics_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    metrics_body: tuple[dict[str, Any], bytes] | None = None

    def __post_init__(self) -> None:
        if self.latency is None:
            self.latency = request_histogram(self.registry)
        if self.collector is None:
            self.collector = SnapshotCollector(self.projector)
            self.registry.register(self.collector)


def get_gateway(request: Request) -> Gateway:
    return request.app.state.gateway


GatewayDep = Annotated[Gateway, Depends(get_gateway)]

_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer <ADMIN_TOKEN>")
_header = APIKeyHeader(name="X-Admin-Token", auto_error=False, description="X-Admin-Token: <ADMIN_TOKEN>")


def require_admin(
    gw: GatewayDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    token: Annotated[str | None, Depends(_header)],
    x_actor: Annotated[str | None, Header(max_length=200, description="who is acting (audited)")] = None,
) -> str:
    """Admin calls: 403 while ADMIN_TOKEN is not configured (admin is off), 401 without the right token
    (compared in constant time). Returns the actor recorded in the events."""
    if not gw.admin_token:
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            "admin endpoints are disabled: ADMIN_TOKEN is not configured on the gateway")
    given = [t for t in (bearer.credentials if bearer else None, token) if t]
    expected = gw.admin_token.encode()
    ok = False
    for t in given:
        ok |= hmac.compare_digest(t.encode(), expected)
    if not ok:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing admin token" if not given else "wrong admin token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return (x_actor or "admin").strip()[:200] or "admin"


AdminActor = Annotated[str, Depends(require_admin)]
