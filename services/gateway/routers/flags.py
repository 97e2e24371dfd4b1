"""GET/PUT /admin/flags: read and set runtime overrides (the go-live switches without a redeploy)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status

from shared.errors import ConfigError
from shared.flags import FLAG_SPECS, SPECS, env_view, format_value, parse_value

from ..deps import AdminActor, GatewayDep
from ..schemas import FlagSpecOut, FlagsUpdate, FlagsView, Problem
from .jobs import ADMIN_ERRORS

router = APIRouter(tags=["flags"])


def flags_view(gw: GatewayDep) -> FlagsView:
    flags = gw.flags.current()
    return FlagsView(
        flags={s.name: getattr(flags, s.name) for s in FLAG_SPECS},
        sources={s.name: flags.sources.get(s.name, "default") for s in FLAG_SPECS},
        overrides=gw.flags.overrides(),
        specs=[FlagSpecOut(name=s.name, kind=s.kind, default=s.default, doc=s.doc) for s in FLAG_SPECS],
        summary=env_view(flags)["summary"],
    )


@router.get("/admin/flags", response_model=FlagsView, responses=ADMIN_ERRORS,
            summary="Effective flags, their sources and the runtime overrides")
async def get_flags(gw: GatewayDep, actor: AdminActor) -> FlagsView:
    return flags_view(gw)


@router.put(
    "/admin/flags", response_model=FlagsView,
    responses={**ADMIN_ERRORS, 422: {"model": Problem, "description": "unknown flag or invalid value (named)"}},
    summary="Set or clear (null) runtime overrides; each change is a flag.changed event with who and when",
)
async def put_flags(gw: GatewayDep, actor: AdminActor, body: FlagsUpdate) -> FlagsView:
    changes: list[tuple[str, str | None]] = []
    for name, value in body.values.items():
        spec = SPECS.get(name)
        if spec is None:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                                f"unknown flag {name[:64]!r}; known: {', '.join(SPECS)}")
        if value is None:
            changes.append((name, None))
            continue
        raw = format_value(value)
        try:
            parse_value(spec, raw)
        except ConfigError as exc:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
        changes.append((name, raw))
    who: str = (body.actor or actor).strip() or actor
    for name, new in changes:  # every value checked before any is written
        await gw.flags.set(name, new, actor=who, source="admin")
    return flags_view(gw)
