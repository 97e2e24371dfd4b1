"""Operational events: job runs and flag changes."""

from __future__ import annotations

from typing import ClassVar

from .base import Event


class JobCompleted(Event, frozen=True, kw_only=True, tag="job.completed"):
    """One run of a job finished. Subject ``xbot.evt.job.<run_id>.completed``."""

    aggregate: ClassVar[str] = "job"
    name: ClassVar[str] = "completed"
    run_id: str
    job: str
    service: str
    status: str  # ok | skipped | failed
    counts: dict[str, int] = {}
    detail: str = ""

    @property
    def aggregate_id(self) -> str:
        return self.run_id


class FlagChanged(Event, frozen=True, kw_only=True, tag="flag.changed"):
    """A runtime override set or cleared (``new_value`` None). Subject ``xbot.evt.flag.<NAME>.changed``."""

    aggregate: ClassVar[str] = "flag"
    name: ClassVar[str] = "changed"
    flag: str
    old_value: str | None
    new_value: str | None
    actor: str
    source: str = "admin"

    @property
    def aggregate_id(self) -> str:
        return self.flag
