"""GET /env: the seed's flag view, reflecting runtime overrides, with where each value came from."""

from __future__ import annotations

from fastapi import APIRouter

from shared.flags import FLAG_SPECS, env_view

from ..deps import GatewayDep
from ..schemas import EnvView

router = APIRouter(tags=["flags"])


@router.get("/env", response_model=EnvView, summary="Flags, what they allow, and their sources")
async def get_env(gw: GatewayDep) -> EnvView:
    flags = gw.flags.current()
    sources = {s.name: flags.sources.get(s.name, "default") for s in FLAG_SPECS}
    return EnvView(**env_view(flags), sources=sources)
