"""Commands: requests to run a job, on the work-queue stream ``XBOT_COMMANDS`` (subject ``xbot.cmd.<job>``)."""

from __future__ import annotations

from datetime import datetime

import msgspec

JOBS = ("plan", "reply", "posting", "collect", "learn")


class Command(msgspec.Struct, frozen=True, kw_only=True):
    job: str
    run_id: str
    requested_at: datetime
    requested_by: str = "admin"  # admin | schedule | cli
    slot: str | None = None  # the schedule slot, when periodic
    params: dict[str, str] = {}
    schema: int = 1
