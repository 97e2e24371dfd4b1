"""Replier settings (pydantic-settings), built in ``main``. REPLY_MAX_PER_DAY, MIN_POST_INTERVAL_MINUTES, MODE and
the LLM flags live in ``shared.flags``; these are the rest."""

from __future__ import annotations

from pydantic import Field

from shared.decisions import LLMSettings


class ReplierSettings(LLMSettings):
    #: how often ``cmd.reply`` runs, in minutes of the service clock (0 = only on demand)
    REPLY_INTERVAL_MINUTES: float = Field(30.0, ge=0)
    #: accounts whose recent tweets we may answer (comma separated, with or without @)
    REPLY_TARGET_ACCOUNTS: str = ""
    #: X searches whose results we may answer (comma separated)
    REPLY_SEARCH_QUERIES: str = "AI agents,LLM engineering,developer productivity"
    #: never answer a tweet older than this
    REPLY_MAX_AGE_HOURS: float = Field(24.0, gt=0, le=24 * 30)
    #: at most this many replies drafted per run
    REPLY_BATCH: int = Field(3, ge=1, le=100)
    #: tweets read per account or query
    REPLY_CANDIDATES_PER_SOURCE: int = Field(20, ge=1, le=200)
    #: our account (its tweets are never answered); required in live mode
    X_USERNAME: str = Field("", pattern=r"^@?[A-Za-z0-9_]{0,15}$")
    # where the browser adapter finds X, Chromium and the session (live mode only)
    X_BASE_URL: str = "https://x.com"
    CHROMIUM_PATH: str = ""
    X_SESSION_FILE: str = ""
    X_SESSION_B64: str = ""
    X_ARTIFACTS_DIR: str = ""
    X_DWELL_MIN_MS: int = Field(600, ge=0)
    X_DWELL_MAX_MS: int = Field(2200, ge=0)
    X_TIMEOUT_MS: int = Field(30_000, ge=1000)

    def username(self) -> str:
        return self.X_USERNAME.lstrip("@")
