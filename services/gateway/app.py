"""``create_app(gateway)``: the FastAPI application (thin: one router per resource, dependencies injected)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import nats.errors
import structlog
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from .deps import AdminGuard, Gateway
from .projector import TRANSIENT
from .routers import accounts, dashboard, decisions, env, flags, health, jobs, metrics

log = structlog.get_logger("gateway")

HERE = Path(__file__).resolve().parent

DESCRIPTION = """
The gateway of xbot: read models projected from the event log, the seed's `/env` and `/api/metrics`,
Prometheus `/metrics`, the admin job trigger and flag switches, the decision queue and timelines, and the
operator's approve / reject / post-now.

Admin endpoints (`/admin/...`) need `Authorization: Bearer <ADMIN_TOKEN>` or `X-Admin-Token: <ADMIN_TOKEN>`;
without the right token they answer 401, and while the gateway has no `ADMIN_TOKEN` they answer 403.
"""


def _problem(status: int, detail: Any) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)


class LatencyMiddleware:
    """Request latencies for /metrics, as plain ASGI (no per-request task like BaseHTTPMiddleware). The histogram's
    child per (method, route, status) is looked up once and kept: ``labels()`` takes a lock and builds the key on
    every call."""

    def __init__(self, app: Any, gw: Gateway):
        self.app, self.gw = app, gw
        self._hist: Any = None
        self._children: dict[tuple[str, str, int], Any] = {}

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = 500

        async def send_status(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or (
                "/static" if scope.get("path", "").startswith("/static/") else "unmatched")
            self._child(scope["method"], path, status).observe(time.perf_counter() - t0)

    def _child(self, method: str, path: str, status: int) -> Any:
        hist = self.gw.latency
        assert hist is not None
        if hist is not self._hist:
            self._hist, self._children = hist, {}
        key = (method, path, status)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = hist.labels(method, path, str(status))
        return child


def create_app(gw: Gateway) -> FastAPI:
    app = FastAPI(title="xbot gateway", version="1.0.0", description=DESCRIPTION)
    app.state.gateway = gw
    app.state.templates = Jinja2Templates(directory=str(HERE / "templates"))
    app.state.templates.env.filters["highlight_claims"] = dashboard.highlight_claims
    for r in (metrics.router, health.router, env.router, jobs.router, flags.router, decisions.router,
              accounts.router, dashboard.router):
        app.include_router(r)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    app.add_middleware(AdminGuard, gw=gw)
    app.add_middleware(LatencyMiddleware, gw=gw)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        """422 naming the problem: ``detail`` says which input and why, ``errors`` has the particulars."""
        errs = exc.errors()
        words = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()) if p != 'body') or 'body'}: {e.get('msg', 'invalid')}"
            for e in errs[:5]
        )
        return JSONResponse({"detail": words or "invalid request", "errors": jsonable_encoder(errs)},
                            status_code=422)

    async def unavailable(request: Request, exc: Exception) -> JSONResponse:
        log.warning("dependency unavailable", path=request.url.path, error=f"{type(exc).__name__}: {exc}")
        return _problem(503, f"a backing service is unavailable ({type(exc).__name__}); try again shortly")

    for exc_type in (*TRANSIENT, nats.errors.Error):
        app.add_exception_handler(exc_type, unavailable)  # type: ignore[arg-type]
    return app
