"""GET /api/metrics (the seed's JSON, derived from events) and GET /metrics (Prometheus exposition)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ..deps import GatewayDep, gateway_of
from ..queries import cached_metrics_snapshot
from ..schemas import ApiMetrics

router = APIRouter(tags=["metrics"])


@router.get("/api/metrics", response_model=ApiMetrics, summary="The seed's metrics JSON (derived from events)")
async def api_metrics(request: Request) -> Response:
    # the hot endpoint takes the gateway from the request rather than through ``GatewayDep``: a sub-dependency
    # costs FastAPI a second round of dependency solving per request (about a tenth of the bare request's time)
    gw = gateway_of(request)
    snap = await cached_metrics_snapshot(gw)
    body = gw.metrics_body
    if body is None or body[0] is not snap:  # validated and encoded once per snapshot, not per request
        body = (snap, ApiMetrics(**snap).model_dump_json().encode())
        gw.metrics_body = body
    return Response(body[1], media_type="application/json")


@router.get(
    "/metrics", summary="Prometheus exposition: the same figures and request latencies",
    response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
)
async def prometheus(gw: GatewayDep) -> Response:
    assert gw.collector is not None
    gw.collector.snapshot = await cached_metrics_snapshot(gw)
    return Response(generate_latest(gw.registry), media_type=CONTENT_TYPE_LATEST)
