"""Replier settings (pydantic-settings), built in ``main``. REPLY_MAX_PER_DAY, MIN_POST_INTERVAL_MINUTES, MODE and
the LLM flags live in ``shared.flags``; these are the rest."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from shared.errors import ConfigError
from shared.llm.writers import LLMSettings
from shared.x.settings import XSettings


class ReplierSettings(LLMSettings, XSettings):
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

    def check_live(self, flags: Any) -> None:
        """MODE=live needs OPENAI_API_KEY and our account (X_USERNAME, to skip our own tweets): raise the
        one-line ConfigError the runtime prints at start."""
        super().check_live(flags)
        if flags.live and not self.username():
            raise ConfigError("X_USERNAME is missing (MODE=live replies need our account, to skip our own tweets)")
