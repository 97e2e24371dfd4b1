"""Learner settings (pydantic-settings), built in ``main``; SUCCESS_ER_THRESHOLD and MODE are flags
(``shared.flags``), so an operator can change them at runtime."""

from __future__ import annotations

from pydantic import Field

from shared.config import CommonSettings


class LearnerSettings(CommonSettings):
    #: how often ``cmd.learn`` runs, in minutes of the service clock (0 = only on demand)
    LEARN_INTERVAL_MINUTES: float = Field(60.0, ge=0)
    #: also request a run after every N new outcomes (0 = off)
    LEARN_EVERY_N_OUTCOMES: int = Field(0, ge=0, le=1_000_000)
