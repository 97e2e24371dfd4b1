"""Collector settings (pydantic-settings), built in ``main``; the flags (MODE, REAL_METRICS_ENABLED) live in
``shared.flags``."""

from __future__ import annotations

from pydantic import Field, field_validator

from shared.config import CommonSettings

from .domain import Hours, parse_horizons


class BrowserSettings(CommonSettings):
    """Where the browser adapter finds X, Chromium and the session (live mode only)."""

    X_BASE_URL: str = "https://x.com"
    CHROMIUM_PATH: str = ""  # empty: /usr/bin/chromium when present, else Playwright's own browser
    X_SESSION_FILE: str = ""  # a Playwright storage_state with auth_token + ct0 (refreshed after each run)
    X_SESSION_B64: str = ""  # the same, base64, when no file is at hand
    X_ARTIFACTS_DIR: str = ""  # screenshots + HTML of failed pages; empty: a temp dir
    X_DWELL_MIN_MS: int = Field(600, ge=0)
    X_DWELL_MAX_MS: int = Field(2200, ge=0)
    X_TIMEOUT_MS: int = Field(30_000, ge=1000)


class CollectorSettings(BrowserSettings):
    #: how often ``cmd.collect`` runs, in hours of the service clock
    COLLECT_INTERVAL_HOURS: float = Field(4.0, ge=0)
    #: the horizons after posting at which an outcome is owed, in hours; fractions allowed ("0.25,1,24": a first
    #: read at +15 min)
    COLLECT_HORIZONS_HOURS: str = "1,24"
    #: failed reads of one horizon before its failure is final
    COLLECT_MAX_ATTEMPTS: int = Field(5, ge=1, le=100)
    #: at most this many horizons read in one run (bounds browser time); the rest wait for the next run
    COLLECT_MAX_PER_RUN: int = Field(50, ge=1, le=10_000)
    #: our account: a status page by anyone else is rejected (needed in live mode)
    X_USERNAME: str = Field("", pattern=r"^@?[A-Za-z0-9_]{0,15}$")

    @field_validator("COLLECT_HORIZONS_HOURS")
    @classmethod
    def _horizons(cls, v: str) -> str:
        parse_horizons(v)
        return v

    def horizons(self) -> tuple[Hours, ...]:
        return parse_horizons(self.COLLECT_HORIZONS_HOURS)

    def username(self) -> str:
        return self.X_USERNAME.lstrip("@")

