"""GET /api/metrics (the seed's JSON, derived from events) and GET /metrics (Prometheus exposition), of every
account or, with ``?account=<id>``, of one."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ..deps import AccountParam, GatewayDep, gateway_of
from ..queries import cached_metrics_snapshot, metrics_of
from ..schemas import ApiMetrics, Problem

router = APIRouter(tags=["metrics"])

ACCOUNT_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "no such account (named)"},
    422: {"model": Problem, "description": "malformed account id (the parameter is named)"},
}


def _account_view(snap: dict[str, Any], account: str | None) -> dict[str, Any]:
    try:
        return metrics_of(snap, account)
    except KeyError:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no account {account!r}") from None


@router.get(
    "/api/metrics", response_model=ApiMetrics, responses=ACCOUNT_ERRORS,
    summary="The seed's metrics JSON (derived from events): the default account's figures at the top and every "
            "account's under 'accounts'; with ?account=<id>, that account's",
)
async def api_metrics(request: Request, account: AccountParam = None) -> Response:
    # the hot endpoint takes the gateway from the request rather than through ``GatewayDep``: a sub-dependency
    # costs FastAPI a second round of dependency solving per request (about a tenth of the bare request's time)
    gw = gateway_of(request)
    snap = await cached_metrics_snapshot(gw)
    if account is None:
        body = gw.metrics_body
        if body is None or body[0] is not snap:  # validated and encoded once per snapshot, not per request
            body = (snap, ApiMetrics(**snap).model_dump_json().encode())
            gw.metrics_body = body
        return Response(body[1], media_type="application/json")
    bodies = gw.account_bodies
    if bodies is None or bodies[0] is not snap:
        bodies = gw.account_bodies = (snap, {})
    encoded = bodies[1].get(account)
    if encoded is None:
        encoded = bodies[1][account] = ApiMetrics(**_account_view(snap, account)).model_dump_json().encode()
    return Response(encoded, media_type="application/json")


@router.get(
    "/metrics", summary="Prometheus exposition: the same figures (each account's labelled account=<id>) and "
                        "request latencies",
    response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}, **ACCOUNT_ERRORS},
)
async def prometheus(gw: GatewayDep, account: AccountParam = None) -> Response:
    assert gw.collector is not None
    gw.collector.snapshot = _account_view(await cached_metrics_snapshot(gw), account)
    return Response(generate_latest(gw.registry), media_type=CONTENT_TYPE_LATEST)
