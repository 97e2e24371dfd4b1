"""Settings (pydantic-settings), built in each service's ``main``; never at import time."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from .bus.core import BusNames, StreamSettings
from .errors import ConfigError
from .flags import Flags, load_env_flags


class CommonSettings(BaseSettings):
    """Settings every service reads. Flags (the seed's table) are read by ``shared.flags``, not here."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", case_sensitive=True)

    NATS_URL: str = "nats://127.0.0.1:4222"
    XBOT_NAMESPACE: str = Field("xbot", pattern=r"^[a-z][a-z0-9_-]{0,30}$")
    STREAM_REPLICAS: int = Field(1, ge=1, le=5)
    STREAM_MAX_AGE_DAYS: float = Field(0, ge=0)
    DUPLICATE_WINDOW_SECONDS: float = Field(600, gt=0)
    LOG_FORMAT: str = Field("auto", pattern=r"^(auto|json|console)$")
    LOG_LEVEL: str = Field("INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR)$")
    SHADOW_CLOCK_SPEED: float = Field(1.0, gt=0, le=100000)
    SERVICE_HEALTH_PORT: int = Field(0, ge=0, le=65535)  # 0 = no health endpoint
    XBOT_HOME: str = ".xbot"
    #: the accounts file (TOML; docs/accounts.example.toml); empty: $XBOT_HOME/accounts.toml when it exists,
    #: else one account, ``default``, built from this environment (read by ``shared.accounts.load_accounts``)
    XBOT_ACCOUNTS_FILE: str = ""
    #: split the accounts across the replicas of a service: each account is served by one replica at a time,
    #: holding a lease of this many seconds in the KV bucket ``<ns>_leases`` (0 = off: every replica serves
    #: every account; the log's guards keep each draft and post single either way)
    ACCOUNT_LEASE_SECONDS: float = Field(0, ge=0, le=600)
    SHADOW_SEED: int = 7
    SNAPSHOT_EVERY_EVENTS: int = Field(10_000, ge=0)
    SNAPSHOT_CHECK_SECONDS: float = Field(30.0, gt=0)

    def names(self) -> BusNames:
        return BusNames(self.XBOT_NAMESPACE)

    def stream_settings(self) -> StreamSettings:
        return StreamSettings(
            replicas=self.STREAM_REPLICAS,
            max_age_days=self.STREAM_MAX_AGE_DAYS,
            duplicate_window_s=self.DUPLICATE_WINDOW_SECONDS,
        )


class DatabaseSettings(CommonSettings):
    DATABASE_URL: str = Field(..., min_length=1)


def load_settings(cls: type[BaseSettings], environ: dict[str, str] | None = None) -> Any:
    """Build settings, turning the first validation error into one line naming the variable."""
    env = dict(os.environ if environ is None else environ)
    try:
        load_env_flags(env)  # strict flag parsing happens at start, for every service
        if environ is None:
            return cls()
        kwargs: dict[str, Any] = {k: v for k, v in env.items() if k in cls.model_fields}
        return cls(**kwargs)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"]) or "settings"
        kind = "is missing" if err["type"] == "missing" else f"is invalid: {err['msg']}"
        raise ConfigError(f"{loc} {kind}") from None


def env_flags(environ: dict[str, str] | None = None) -> Flags:
    from .flags import flags_from_env

    return flags_from_env(os.environ if environ is None else environ)


def exit_on_config_error(exc: ConfigError, service: str) -> None:
    """Print each problem on its own line (an accounts file may have several) and exit with 2."""
    for line in str(exc).splitlines() or [""]:
        print(f"xbot {service}: configuration error: {line}", file=sys.stderr)
    raise SystemExit(2)


def home_dir(settings: CommonSettings) -> Path:
    p = Path(settings.XBOT_HOME).expanduser()
    p.mkdir(parents=True, exist_ok=True)
    return p
