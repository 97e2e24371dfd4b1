"""The `XAccount` port: what the services may ask of an X account, and what X can answer.

Two adapters implement it: `shared.x.browser.PlaywrightX` (a real browser against x.com) and
`shared.x.simulator.SimulatedX` (shadow mode). Results are frozen msgspec structs; every failure is an
`XError` subclass carrying `.code`, `.retryable` and `.in_doubt`, so callers decide on a retry without
parsing messages.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol, runtime_checkable

import msgspec


class Posted(msgspec.Struct, frozen=True, kw_only=True):
    """A tweet X accepted; `tweet_id` was read back from X's answer, never invented."""

    tweet_id: str
    url: str


class TweetView(msgspec.Struct, frozen=True, kw_only=True):
    tweet_id: str
    author: str
    text: str
    created_at: datetime | None = None
    in_reply_to: str | None = None


class TweetMetrics(msgspec.Struct, frozen=True, kw_only=True):
    tweet_id: str
    author: str
    impressions: int = 0
    likes: int = 0
    retweets: int = 0
    replies: int = 0
    bookmarks: int = 0
    quotes: int = 0


# ---------------------------------------------------------------------------------------------- errors


class XError(Exception):
    """Base of every failure the port reports.

    code: a short stable string ("226", "429", "187", "logged_out", "timeout", "in_doubt", ...).
    retryable: the same call may succeed later (after a back-off) without a human.
    in_doubt: a post was submitted and X may have created it; reconcile against the timeline first.
    retry_after: seconds X asked us to wait, when it said so.
    artifacts: paths of the screenshot / page HTML saved for this failure (browser adapter).
    """

    code: str = "error"
    retryable: bool = False
    in_doubt: bool = False

    def __init__(
        self,
        message: str = "",
        *,
        code: str | None = None,
        retryable: bool | None = None,
        in_doubt: bool | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message or self.__class__.__name__)
        if code is not None:
            self.code = code
        if retryable is not None:
            self.retryable = retryable
        if in_doubt is not None:
            self.in_doubt = in_doubt
        self.retry_after = retry_after
        self.artifacts: tuple[str, ...] = ()

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


class XAutomatedError(XError):
    """X answered 226: the request looks automated. Back off for a long while."""

    code = "226"
    retryable = True


class XRateLimited(XError):
    """X answered 429 (HTTP) or error code 88: rate limited."""

    code = "429"
    retryable = True


class XDuplicate(XError):
    """X answered 187: status is a duplicate. Nothing was posted by this call."""

    code = "187"
    retryable = False


class XLoggedOut(XError):
    """The session is missing or X sent us to the login flow."""

    code = "logged_out"
    retryable = False


class XTimeout(XError):
    """X did not answer in time, before anything was submitted."""

    code = "timeout"
    retryable = True


class XPostInDoubt(XError):
    """The post button was clicked but no tweet id could be read back: it may exist on X."""

    code = "in_doubt"
    retryable = False
    in_doubt = True


class XPageMismatch(XError):
    """The page shown is not the tweet asked for, or not by the expected author."""

    code = "page_mismatch"
    retryable = False


class XUnavailable(XError):
    """The page did not load or the tweet does not exist (any more)."""

    code = "unavailable"
    retryable = True


class XUnreadable(XUnavailable):
    """A page that should show a timeline or search shows something else: X's error page, a login wall,
    an empty state that does not say "nothing here", or markup we do not know. It proves nothing: a reader
    must never take it for an empty timeline."""

    code = "unreadable"
    retryable = True


# ------------------------------------------------------------------------------------------------ port


@runtime_checkable
class XAccount(Protocol):
    """One logged-in X account."""

    @property
    def username(self) -> str: ...

    async def post(self, text: str, *, in_reply_to: str | None = None) -> Posted: ...

    async def read_own_timeline(self, limit: int = 50) -> list[TweetView]: ...

    async def read_status_metrics(self, tweet_id: str, *, expected_author: str) -> TweetMetrics: ...

    async def read_account_tweets(self, username: str, limit: int = 20) -> list[TweetView]: ...

    async def search(self, query: str, limit: int = 20) -> list[TweetView]: ...

    async def healthy(self) -> bool: ...

    async def close(self) -> None: ...
