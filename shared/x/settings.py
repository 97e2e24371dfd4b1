"""The X account's settings: one definition for every service that talks to X (poster, collector, replier).

A service's settings class inherits ``XSettings``; ``shared.x.factory.open_account`` builds the adapter from it.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from shared.config import CommonSettings


class XSettings(CommonSettings):
    """Which X account, where X is, and how the browser adapter reaches it (live mode only)."""

    #: our account: the poster reconciles against it, the collector checks pages belong to it, the replier never
    #: answers it
    X_USERNAME: str = Field("", pattern=r"^@?[A-Za-z0-9_]{0,15}$")
    X_BASE_URL: str = Field("https://x.com", pattern=r"^https?://[^\s/]+(:[0-9]+)?/?$")
    X_SESSION_FILE: str = ""  # a Playwright storage_state with auth_token + ct0 (refreshed after each use)
    X_SESSION_B64: str = ""  # the same, base64, when no file is at hand
    CHROMIUM_PATH: str = ""  # empty: /usr/bin/chromium when present, else Playwright's own browser
    X_HEADLESS: bool = True
    X_ARTIFACTS_DIR: str = ""  # screenshots + HTML of failed pages; default $XBOT_HOME/artifacts/x
    X_DWELL_MIN_MS: int = Field(600, ge=0)  # human-like pauses between steps
    X_DWELL_MAX_MS: int = Field(2200, ge=0)
    X_TIMEOUT_MS: int = Field(30_000, ge=1000)

    def username(self) -> str:
        return self.X_USERNAME.lstrip("@")

    def artifacts_dir(self) -> Path:
        return Path(self.X_ARTIFACTS_DIR or Path(self.XBOT_HOME).expanduser() / "artifacts" / "x")
