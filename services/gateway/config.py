"""The gateway's settings (built in ``main``, never at import time)."""

from __future__ import annotations

from pydantic import Field

from shared.config import CommonSettings


class GatewaySettings(CommonSettings):
    DATABASE_URL: str = Field(..., min_length=1)
    GATEWAY_HOST: str = "127.0.0.1"
    GATEWAY_PORT: int = Field(8080, ge=0, le=65535)
    #: admin endpoints answer 403 while this is unset (they are off), 401 without the right token
    ADMIN_TOKEN: str | None = None
    #: /readyz answers 503 while the projector is more than this many events behind the log
    READY_MAX_LAG: int = Field(1000, ge=0)
    PROJECTOR_BATCH: int = Field(1000, ge=1, le=100_000)
    PROJECTOR_FLUSH_MS: float = Field(5.0, ge=0, le=10_000)
    DB_POOL_SIZE: int = Field(5, ge=1, le=100)
