"""POST /admin/jobs/run?job=... (the seed's admin trigger) and GET /api/jobs (recent runs)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, status
from fastapi.responses import JSONResponse

from shared.events import JOBS, Command, utcnow

from ..deps import AccountParam, AdminActor, GatewayDep, ensure_account
from ..queries import job_runs
from ..schemas import JobAccepted, JobRun, Problem

router = APIRouter(tags=["jobs"])

ADMIN_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "missing or wrong admin token"},
    403: {"model": Problem, "description": "admin endpoints are off: ADMIN_TOKEN is not configured"},
}


@router.post(
    "/admin/jobs/run", status_code=202, response_model=JobAccepted,
    summary="Trigger one run of a job now (of every account, or ?account=<id>'s); answers at once with the run id",
    responses={**ADMIN_ERRORS, 404: {"model": Problem, "description": "no such account (named)"},
               422: {"model": Problem, "description": "unknown job (the allowed ones are named) or malformed "
                                                      "account id"}},
)
async def run_job(
    gw: GatewayDep,
    actor: AdminActor,
    job: Annotated[str | None, Query(description=f"one of: {', '.join(JOBS)}", max_length=100,
                                     json_schema_extra={"enum": list(JOBS)})] = None,
    account: AccountParam = None,
) -> JSONResponse:
    if job not in JOBS:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"unknown job {job!r}; allowed: {', '.join(JOBS)}" if job else f"job is required; allowed: {', '.join(JOBS)}",
        )
    await ensure_account(gw, account)
    params = {"actor": actor, **({"account": account} if account is not None else {})}
    cmd = Command(job=job, run_id=f"{job}-{uuid.uuid4().hex[:12]}", requested_at=utcnow(), requested_by="admin",
                  params=params)
    await gw.bus.publish_command(cmd)
    body = JobAccepted(job=job, run_id=cmd.run_id, requested_at=cmd.requested_at, account=account)
    return JSONResponse(body.model_dump(mode="json"), status_code=202)


@router.get("/api/jobs", response_model=list[JobRun], summary="Recent job runs (job.completed)")
async def list_jobs(
    gw: GatewayDep,
    job: Annotated[str | None, Query(max_length=100, description="only this job")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 20,
) -> list[JobRun]:
    return [JobRun(**r) for r in await job_runs(gw, limit, job)]
