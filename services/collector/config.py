"""Collector settings (pydantic-settings), built in ``main``; the flags (MODE, REAL_METRICS_ENABLED) live in
``shared.flags``."""

from __future__ import annotations

from pydantic import Field, field_validator

from shared.x.settings import XSettings

from .domain import Hours, parse_horizons


class CollectorSettings(XSettings):
    #: how often ``cmd.collect`` runs, in hours of the service clock
    COLLECT_INTERVAL_HOURS: float = Field(4.0, ge=0)
    #: the horizons after posting at which an outcome is owed, in hours; fractions allowed ("0.25,1,24": a first
    #: read at +15 min)
    COLLECT_HORIZONS_HOURS: str = "1,24"
    #: failed reads of one horizon before its failure is final
    COLLECT_MAX_ATTEMPTS: int = Field(5, ge=1, le=100)
    #: at most this many horizons read in one run (bounds browser time); the rest wait for the next run
    COLLECT_MAX_PER_RUN: int = Field(50, ge=1, le=10_000)

    @field_validator("COLLECT_HORIZONS_HOURS")
    @classmethod
    def _horizons(cls, v: str) -> str:
        parse_horizons(v)
        return v

    def horizons(self) -> tuple[Hours, ...]:
        return parse_horizons(self.COLLECT_HORIZONS_HOURS)
