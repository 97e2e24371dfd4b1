"""The one place an `XAccount` adapter is built for a mode: the simulator for shadow mode, the browser for live.

    x = await open_account(settings, simulated=False)                 # PlaywrightX, started
    x = await open_account(settings, simulated=True, now=clock.now)   # SimulatedX

A future adapter (the official API v2) joins here, chosen by the account's publisher.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from .port import XAccount, XLoggedOut

Submitted = Callable[[], Awaitable[None]]


async def open_account(
    s: Any,
    *,
    simulated: bool,
    now: Callable[[], datetime] | None = None,
    seed: int | None = None,
    on_submitted: Submitted | None = None,
) -> XAccount:
    """``s`` is an ``XSettings`` (``username()``, ``artifacts_dir()`` and the X_* settings). ``on_submitted`` runs
    right after a post is handed to X, before its answer is read (the crash matrix's TEST-ONLY hook)."""
    if simulated:
        return simulated_account(s, now=now, seed=seed, on_submitted=on_submitted)
    if not s.username():
        raise XLoggedOut("X_USERNAME is not set: the browser cannot know whose timeline is ours")
    from .browser import PlaywrightX  # Playwright is only imported in live mode

    x = PlaywrightX(
        username=s.username(),
        base_url=s.X_BASE_URL,
        chromium_path=s.CHROMIUM_PATH or None,
        headless=s.X_HEADLESS,
        session_file=s.X_SESSION_FILE or None,
        session_b64=s.X_SESSION_B64 or None,
        artifacts_dir=s.artifacts_dir(),
        dwell_ms=(s.X_DWELL_MIN_MS, max(s.X_DWELL_MIN_MS, s.X_DWELL_MAX_MS)),
        timeout_ms=s.X_TIMEOUT_MS,
        on_submitted=on_submitted,
    )
    try:
        await x.start()
    except BaseException:
        await x.close()
        raise
    return x


def simulated_account(
    s: Any,
    *,
    now: Callable[[], datetime] | None = None,
    seed: int | None = None,
    on_submitted: Submitted | None = None,
) -> XAccount:
    """The shadow-mode account: a simulator named like our account, seeded by SHADOW_SEED."""
    from .simulator import SimulatedX

    return SimulatedX(
        username=s.username() or "xbot_shadow",
        seed=s.SHADOW_SEED if seed is None else seed,
        now=now,
        on_submitted=on_submitted,
    )


def browser_opener(s: Any) -> Callable[[], Awaitable[XAccount]]:
    """An opener of the live account for a service that opens it lazily (collector, replier)."""

    async def open_x() -> XAccount:
        return await open_account(s, simulated=False)

    return open_x


def account_settings(s: Any, profile: Any, environ: Any, *, builtin: bool) -> Any:
    """The X settings of one account (``profile``: an ``AccountProfile``): its username, its session (the
    profile's ``file:`` / ``env:`` reference), its own artifacts directory and its own simulated audience
    (``SHADOW_SEED`` mixed with the account id). ``builtin``: the default account of the environment, whose
    settings are ``s`` itself."""
    if builtin:
        return s
    import zlib

    update: dict[str, Any] = {"X_USERNAME": profile.username, "X_SESSION_FILE": "", "X_SESSION_B64": "",
                              "SHADOW_SEED": (s.SHADOW_SEED * 1_000_003 + zlib.crc32(profile.id.encode()))
                              % 2**31}
    ref = profile.session_ref()
    if ref is not None and ref.kind == "file":
        update["X_SESSION_FILE"] = ref.target
    elif ref is not None and ref.kind == "env":
        update["X_SESSION_B64"] = environ.get(ref.target, "")
    update["X_ARTIFACTS_DIR"] = str(s.artifacts_dir() / profile.id)
    return s.model_copy(update=update)
