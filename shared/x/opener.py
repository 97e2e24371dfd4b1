"""Open the real browser adapter from a service's X settings (one definition for the collector and replier)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from .port import XAccount


def browser_opener(s: Any) -> Callable[[], Awaitable[XAccount]]:
    """``s`` has ``username()`` and the X_* / CHROMIUM_PATH settings. Playwright is imported lazily (live mode only)."""

    async def open_x() -> XAccount:
        from .browser import PlaywrightX

        x = PlaywrightX(
            username=s.username(),
            base_url=s.X_BASE_URL,
            chromium_path=s.CHROMIUM_PATH or None,
            session_file=s.X_SESSION_FILE or None,
            session_b64=s.X_SESSION_B64 or None,
            artifacts_dir=s.X_ARTIFACTS_DIR or None,
            dwell_ms=(s.X_DWELL_MIN_MS, max(s.X_DWELL_MIN_MS, s.X_DWELL_MAX_MS)),
            timeout_ms=s.X_TIMEOUT_MS,
        )
        try:
            await x.start()
        except BaseException:
            await x.close()
            raise
        return x

    return open_x
