"""The X account port and its adapters.

`shared.x.port` (types and errors) and `shared.x.parsing` are re-exported here; import the adapters
explicitly: `shared.x.browser.PlaywrightX` (real Chromium), `shared.x.simulator.SimulatedX` (shadow mode), or
build the one a mode needs with `shared.x.factory.open_account`; their settings are `shared.x.settings.XSettings`.
"""

from shared.x.parsing import is_valid_tweet_id, parse_count
from shared.x.port import (
    Posted,
    TweetMetrics,
    TweetView,
    XAccount,
    XAutomatedError,
    XDuplicate,
    XError,
    XLoggedOut,
    XPageMismatch,
    XPostInDoubt,
    XRateLimited,
    XTimeout,
    XUnavailable,
    XUnreadable,
)

__all__ = [
    "Posted",
    "TweetMetrics",
    "TweetView",
    "XAccount",
    "XAutomatedError",
    "XDuplicate",
    "XError",
    "XLoggedOut",
    "XPageMismatch",
    "XPostInDoubt",
    "XRateLimited",
    "XTimeout",
    "XUnavailable",
    "XUnreadable",
    "is_valid_tweet_id",
    "parse_count",
]
