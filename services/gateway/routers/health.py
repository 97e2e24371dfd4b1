"""GET /healthz (process up) and GET /readyz (NATS, migrations, database, projector lag) for compose and k8s."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from shared.db import migrations_pending

from ..deps import GatewayDep
from ..queries import log_last_seq
from ..schemas import Health, Ready

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, summary="Liveness: the process answers")
async def healthz() -> Health:
    return Health(ok=True)


@router.get(
    "/readyz", response_model=Ready, summary="Readiness: NATS connected, migrations applied, projector caught up",
    responses={503: {"model": Ready, "description": "not ready (the body says why)"}},
)
async def readyz(gw: GatewayDep) -> JSONResponse:
    reasons: list[str] = []
    nats_ok = bool(gw.bus.connected)
    if not nats_ok:
        reasons.append("NATS is not connected")
    db_ok, migrations_ok, stored = False, False, 0
    try:
        async with asyncio.timeout(3):
            pending = await migrations_pending(gw.pool)
            if not pending:
                stored = await gw.pool.fetchval(
                    "SELECT last_seq FROM projection_offsets WHERE projector = $1", gw.projector_name) or 0
        db_ok = True
        migrations_ok = not pending and gw.migrations_ok
        if pending:
            reasons.append(f"migrations not applied: {', '.join(pending)}")
    except Exception as exc:
        reasons.append(f"database unavailable: {type(exc).__name__}")
    p = gw.projector
    if p is not None and not p.db_ok:
        db_ok = False
        reasons.append(f"projector cannot write: {p.last_error or 'not started'}")
    if p is not None and p.failed is not None:
        reasons.append(f"projector stopped: {p.failed!r}")
    position = int(p.position) if p is not None else int(stored)
    last = await log_last_seq(gw) if nats_ok else None
    lag = None if last is None else max(0, last - position)
    if lag is None:
        reasons.append("log position unknown")
    elif lag > gw.ready_max_lag:
        reasons.append(f"projector lag {lag} > READY_MAX_LAG={gw.ready_max_lag}")
    body = Ready(
        ready=not reasons, nats=nats_ok, database=db_ok, migrations=migrations_ok, projector_lag=lag,
        max_lag=gw.ready_max_lag, projector_position=position, log_last_seq=last, reasons=reasons,
    )
    return JSONResponse(body.model_dump(), status_code=200 if body.ready else 503)
