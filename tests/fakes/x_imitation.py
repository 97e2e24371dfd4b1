"""A local web app imitating x.com closely enough to exercise the real browser adapter.

Pages are shells whose script fetches `/i/api/graphql/<qid>/<Operation>` like X's web client; the DOM uses
X's data-testid attributes; CreateTweet answers like X (ids of 19 digits, X's error codes). Cookie login
with `auth_token` + `ct0`; a missing or unknown session is sent to `/i/flow/login`.

    with start_x_imitation(user="alice") as x:      # uvicorn in a thread, on a free 127.0.0.1 port
        x.write_session(path)                       # a Playwright storage_state for alice
        x.state.set_mode("226", times=1)            # next CreateTweet answers "looks automated"
        x.state.count_text("hello")                 # how many tweets with that text exist

Failure modes (`state.set_mode`): "226", "187", "drop_after_accept" (CreateTweet only; the last one creates
the tweet, then kills the connection mid-answer), "429" (every GraphQL call), "logged_out" (everything);
`slow=<seconds>` with `slow_on` in all|pages|api|create delays answers (on create: the tweet is created
first, then the answer is delayed). `times=n` makes a mode clear itself after n affected requests.
Page modes (`state.set_page_mode`, independent of the above, `page_times=n`): timeline and search pages show
X's error page ("error_page"), a login wall inside the page ("login_wall"), nothing ("blank") or tweets in
markup the adapter does not know ("odd_markup"). Empty timelines and searches use X's own empty-state markup
(`empty_state_header_text`), and search understands `from:` and quoted phrases.
Cross-process: `POST /__control` (same keys) and `GET /__state`; `ImitationClient` wraps both.
Standalone: `python -m tests.fakes.x_imitation --port 8765 --user alice --session-out /tmp/alice.json`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import random
import re
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

TEMPLATES = Path(__file__).with_name("x_templates")
QUERY_IDS = {
    "CreateTweet": "oB-5XsHNAbjvARJEc8CZFw",
    "TweetDetail": "nBS-WpgA6ZG0CyNHD517JQ",
    "UserTweets": "V7H0Ap3_Hh2FyS75OCDO3Q",
    "UserTweetsAndReplies": "E4wA5vo2sjVyvpliUffSCw",
    "SearchTimeline": "AIdc203rPpK_k_2KWSdm7g",
    "HomeLatestTimeline": "DiTkXJgLqBBxCs7zaYsbtA",
}
CREATE_MODES = frozenset({"226", "187", "drop_after_accept"})
MODES = CREATE_MODES | {"429", "logged_out"}
#: what a timeline or search page (``/<user>``, ``/<user>/with_replies``, ``/search``) shows instead of its
#: tweets while a page mode is set: X's "this page doesn't exist" error page, a login wall drawn inside the
#: page (no redirect), nothing at all (the page never settles), or tweets in markup the adapter does not know
PAGE_MODES = frozenset({"error_page", "login_wall", "blank", "odd_markup"})
SLOW_SCOPES = frozenset({"all", "pages", "api", "create"})
METRIC_KEYS = ("impressions", "likes", "retweets", "replies", "bookmarks", "quotes")
MAX_TEXT = 280
PAGE_SIZE = 20

_ERRORS = {
    "226": (
        226,
        "Authorization: This request looks like it might be automated. To protect our users from spam and "
        "other malicious activity, we can't complete this action right now. Please try again later. (226)",
    ),
    "187": (187, "Authorization: Status is a duplicate. (187)"),
    "186": (186, "Authorization: Tweet needs to be a bit shorter. (186)"),
    "385": (
        385,
        "Authorization: You attempted to reply to a Tweet that is deleted or not visible to you. (385)",
    ),
}


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class FakeTweet:
    tweet_id: str
    author: str
    text: str
    created_at: datetime
    in_reply_to: str | None = None
    metrics: dict[str, int] = field(default_factory=lambda: dict.fromkeys(METRIC_KEYS, 0))

    def to_json(self) -> dict[str, Any]:
        return {
            "tweet_id": self.tweet_id,
            "author": self.author,
            "text": self.text,
            "created_at": self.created_at.isoformat(),
            "in_reply_to": self.in_reply_to,
            "metrics": dict(self.metrics),
        }


class ImitationState:
    """Everything the imitation knows; thread-safe (the server runs in its own thread)."""

    def __init__(
        self,
        *,
        users: Sequence[str] = ("alice", "bob", "carol"),
        seed: int = 1,
        now: Callable[[], datetime] = _utc_now,
        detect_duplicates: bool = False,
        aria_counts: bool = True,
    ) -> None:
        self._lock = threading.RLock()
        self._rng = random.Random(seed)
        self._next = 1_800_000_000_000_000_000 + (seed % 1000) * 1_000_000_000_000
        self._now = now
        self.users: tuple[str, ...] = tuple(users)
        self.user_ids = {u: str(1_000_000_000 + i * 7_919) for i, u in enumerate(self.users)}
        self.tokens = {self.auth_token(u): u for u in self.users}
        self.tweets: dict[str, FakeTweet] = {}
        self.mode: str | None = None
        self.times: int | None = None
        self.slow: float = 0.0
        self.slow_on: str = "all"
        self.detect_duplicates = detect_duplicates
        self.aria_counts = aria_counts
        #: draw the side navigation (account switcher, home link); X's compose page may come without it
        self.nav_markers = True
        self.create_requests = 0
        self.page_mode: str | None = None
        self.page_times: int | None = None
        #: how many timeline / search pages were served (so a test can see that a reconcile looked)
        self.timeline_pages = 0

    # -- accounts
    @staticmethod
    def auth_token(user: str) -> str:
        return f"imitation-auth-{user}"

    @staticmethod
    def ct0(user: str) -> str:
        return f"imitation-ct0-{user}"

    # -- tweets
    def _new_id(self) -> str:
        self._next += 4_194_304 + self._rng.randrange(4096)
        return str(self._next)

    def add_tweet(
        self,
        author: str,
        text: str,
        *,
        in_reply_to: str | None = None,
        created_at: datetime | None = None,
        metrics: dict[str, int] | None = None,
    ) -> str:
        with self._lock:
            tweet = FakeTweet(self._new_id(), author, text, created_at or self._now(), in_reply_to)
            if metrics:
                self._apply_metrics(tweet, metrics)
            self.tweets[tweet.tweet_id] = tweet
            return tweet.tweet_id

    @staticmethod
    def _apply_metrics(tweet: FakeTweet, counts: dict[str, int]) -> None:
        for key, value in counts.items():
            if key not in METRIC_KEYS:
                raise ValueError(f"unknown metric {key!r}; expected one of {METRIC_KEYS}")
            tweet.metrics[key] = int(value)

    def set_metrics(self, tweet_id: str, **counts: int) -> None:
        with self._lock:
            self._apply_metrics(self.tweets[tweet_id], counts)

    def get(self, tweet_id: str) -> FakeTweet | None:
        with self._lock:
            return self.tweets.get(tweet_id)

    def tweets_with_text(self, text: str, author: str | None = None) -> list[FakeTweet]:
        with self._lock:
            return [
                t for t in self.tweets.values() if t.text == text and (author is None or t.author == author)
            ]

    def count_text(self, text: str, author: str | None = None) -> int:
        return len(self.tweets_with_text(text, author))

    def newest_first(self, tweets: Iterable[FakeTweet]) -> list[FakeTweet]:
        return sorted(tweets, key=lambda t: (t.created_at, int(t.tweet_id)), reverse=True)

    # -- failure modes
    def set_mode(
        self, mode: str | None = None, *, times: int | None = None, slow: float = 0.0, slow_on: str = "all"
    ) -> None:
        if mode is not None and mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; expected one of {sorted(MODES)}")
        if slow_on not in SLOW_SCOPES:
            raise ValueError(f"unknown slow_on {slow_on!r}; expected one of {sorted(SLOW_SCOPES)}")
        if times is not None and times < 1:
            raise ValueError("times must be >= 1")
        with self._lock:
            self.mode, self.times, self.slow, self.slow_on = mode, times, max(0.0, float(slow)), slow_on

    def clear_mode(self) -> None:
        self.set_mode(None)

    def set_page_mode(self, mode: str | None, *, times: int | None = None) -> None:
        """Timeline and search pages show ``mode`` (one of PAGE_MODES) for the next ``times`` of them (all
        while ``times`` is None); independent of ``set_mode``, so an answer can be lost *and* the timeline be
        unreadable afterwards."""
        if mode is not None and mode not in PAGE_MODES:
            raise ValueError(f"unknown page mode {mode!r}; expected one of {sorted(PAGE_MODES)}")
        if times is not None and times < 1:
            raise ValueError("page_times must be >= 1")
        with self._lock:
            self.page_mode, self.page_times = mode, times

    def take_page_mode(self) -> str | None:
        with self._lock:
            self.timeline_pages += 1
            mode = self.page_mode
            if mode is not None and self.page_times is not None:
                self.page_times -= 1
                if self.page_times <= 0:
                    self.page_mode, self.page_times = None, None
            return mode

    def take_mode(self, kind: str) -> str | None:
        """The mode that applies to a request of `kind` (page|api|create), consuming one of `times`."""
        with self._lock:
            mode = self.mode
            applies = (
                mode == "logged_out"
                or (mode == "429" and kind != "page")
                or (mode in CREATE_MODES and kind == "create")
            )
            if not applies:
                return None
            if self.times is not None:
                self.times -= 1
                if self.times <= 0:
                    self.mode, self.times = None, None
            return mode

    def delay_for(self, kind: str) -> float:
        with self._lock:
            scope = {"page": "pages", "api": "api", "create": "create"}[kind]
            if self.slow_on == "all" or self.slow_on == scope or (self.slow_on == "api" and kind == "create"):
                return self.slow
            return 0.0

    def reset(self) -> None:
        with self._lock:
            self.tweets.clear()
            self.mode, self.times, self.slow, self.slow_on = None, None, 0.0, "all"
            self.create_requests = 0
            self.page_mode, self.page_times, self.timeline_pages = None, None, 0
            self.nav_markers = True

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "users": list(self.users),
                "tweets": [t.to_json() for t in self.newest_first(self.tweets.values())],
                "mode": self.mode,
                "times": self.times,
                "slow": self.slow,
                "slow_on": self.slow_on,
                "detect_duplicates": self.detect_duplicates,
                "aria_counts": self.aria_counts,
                "nav_markers": self.nav_markers,
                "create_requests": self.create_requests,
                "page_mode": self.page_mode,
                "page_times": self.page_times,
                "timeline_pages": self.timeline_pages,
            }

    def apply_control(self, body: dict[str, Any]) -> dict[str, Any]:
        """What `POST /__control` does; raises ValueError/KeyError/TypeError on bad input."""
        out: dict[str, Any] = {"ok": True}
        if body.get("reset"):
            self.reset()
        if any(k in body for k in ("mode", "times", "slow", "slow_on")):
            self.set_mode(
                body.get("mode"),
                times=body.get("times"),
                slow=float(body.get("slow") or 0.0),
                slow_on=body.get("slow_on") or "all",
            )
        if "page_mode" in body or "page_times" in body:
            self.set_page_mode(body.get("page_mode"), times=body.get("page_times"))
        for key in ("detect_duplicates", "aria_counts", "nav_markers"):
            if key in body:
                with self._lock:
                    setattr(self, key, bool(body[key]))
        for tweet_id, counts in (body.get("metrics") or {}).items():
            self.set_metrics(str(tweet_id), **counts)
        if body.get("add_tweet"):
            spec = body["add_tweet"]
            created = spec.get("created_at")
            out["added"] = self.add_tweet(
                str(spec["author"]),
                str(spec["text"]),
                in_reply_to=spec.get("in_reply_to"),
                created_at=datetime.fromisoformat(created) if created else None,
                metrics=spec.get("metrics"),
            )
        return out


# ------------------------------------------------------------------------------------- X-shaped JSON


def _x_time(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%a %b %d %H:%M:%S +0000 %Y")


def tweet_result(state: ImitationState, t: FakeTweet) -> dict[str, Any]:
    parent = state.tweets.get(t.in_reply_to) if t.in_reply_to else None
    uid = state.user_ids.get(t.author, "1")
    user = {"screen_name": t.author, "name": t.author.capitalize()}
    return {
        "__typename": "Tweet",
        "rest_id": t.tweet_id,
        "core": {
            "user_results": {"result": {"__typename": "User", "rest_id": uid, "core": user, "legacy": user}}
        },
        "views": {"count": str(t.metrics["impressions"]), "state": "EnabledWithCount"},
        "legacy": {
            "id_str": t.tweet_id,
            "user_id_str": uid,
            "full_text": t.text,
            "created_at": _x_time(t.created_at),
            "conversation_id_str": t.in_reply_to or t.tweet_id,
            "in_reply_to_status_id_str": t.in_reply_to,
            "in_reply_to_screen_name": parent.author if parent else None,
            "reply_count": t.metrics["replies"],
            "retweet_count": t.metrics["retweets"],
            "favorite_count": t.metrics["likes"],
            "bookmark_count": t.metrics["bookmarks"],
            "quote_count": t.metrics["quotes"],
            "lang": "en",
        },
    }


def _item(state: ImitationState, t: FakeTweet) -> dict[str, Any]:
    return {"itemContent": {"itemType": "TimelineTweet", "tweet_results": {"result": tweet_result(state, t)}}}


def _timeline(state: ImitationState, tweets: list[FakeTweet], variables: dict[str, Any], *, modules: bool):
    offset = int(variables.get("cursor") or 0)
    count = max(1, min(int(variables.get("count") or PAGE_SIZE), 100))
    page = tweets[offset : offset + count]
    entries: list[dict[str, Any]] = []
    for t in page:
        parent = state.tweets.get(t.in_reply_to) if (modules and t.in_reply_to) else None
        if parent is not None:
            entries.append(
                {
                    "entryId": f"profile-conversation-{t.tweet_id}",
                    "content": {
                        "entryType": "TimelineTimelineModule",
                        "items": [{"item": _item(state, parent)}, {"item": _item(state, t)}],
                    },
                }
            )
        else:
            entries.append(
                {
                    "entryId": f"tweet-{t.tweet_id}",
                    "content": {"entryType": "TimelineTimelineItem", **_item(state, t)},
                }
            )
    if offset + count < len(tweets):
        entries.append(
            {
                "entryId": f"cursor-bottom-{offset + count}",
                "content": {
                    "entryType": "TimelineTimelineCursor",
                    "value": str(offset + count),
                    "cursorType": "Bottom",
                },
            }
        )
    return {"timeline": {"instructions": [{"type": "TimelineAddEntries", "entries": entries}]}}


_QUERY_TOKEN = re.compile(r'"([^"]*)"|(\S+)')


def _plain(text: str) -> str:
    """Text as X's search compares it: case-folded, punctuation dropped, spaces collapsed."""
    return " ".join("".join(ch if ch.isalnum() else " " for ch in text.casefold()).split())


def _matches(query: str, t: FakeTweet) -> bool:
    """X's search operators we need: ``from:user``, quoted exact phrases, plain words (all must match)."""
    text = f" {_plain(t.text)} "
    terms = 0
    for phrase, word in _QUERY_TOKEN.findall(query):
        terms += 1
        if word.lower().startswith("from:"):
            if t.author.lower() != word[5:].lower():
                return False
        elif f" {_plain(phrase or word)} " not in text:
            return False
    return terms > 0


def _error_body(key: str) -> dict[str, Any]:
    code, message = _ERRORS[key]
    return {
        "errors": [
            {
                "message": message,
                "locations": [{"line": 18, "column": 3}],
                "path": ["create_tweet"],
                "extensions": {
                    "name": "AuthorizationError",
                    "source": "Client",
                    "code": code,
                    "kind": "Permissions",
                },
                "code": code,
                "kind": "Permissions",
                "name": "AuthorizationError",
                "source": "Client",
            }
        ],
        "data": {},
    }


# ----------------------------------------------------------------------------------------------- app


class _DropConnection(Response):
    """Starts a 200 answer, sends a few bytes, then kills the TCP connection (the client never gets the id)."""

    def __init__(self) -> None:
        super().__init__(status_code=200)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")],
            }
        )
        await send({"type": "http.response.body", "body": b'{"data":{"create_tweet":', "more_body": True})
        raw_send = scope.get("x_imitation_raw_send")
        transport = getattr(getattr(raw_send, "__self__", None), "transport", None)
        if transport is None:
            raise ConnectionAbortedError("drop_after_accept")
        transport.abort()
        await asyncio.sleep(0.05)  # let the server see the connection lost before we return


_TIMELINE_PATH = re.compile(r"^/(search|\w{1,15}(/with_replies)?)/?$")


def _page_shell(state: ImitationState, user: str, page_mode: str | None = None) -> str:
    config = json.dumps(
        {"user": user, "qids": QUERY_IDS, "ariaCounts": state.aria_counts, "pageMode": page_mode}
    )
    script = (TEMPLATES / "app.js").read_text(encoding="utf-8")
    nav = (
        f"""<a href="/home" data-testid="AppTabBar_Home_Link" aria-label="Home" role="link">Home</a>
<a href="/compose/post" data-testid="SideNav_NewTweet_Button" aria-label="Post" role="link">Post</a>
<button data-testid="SideNav_AccountSwitcher_Button" aria-label="Account menu" role="button">@{user}</button>"""
        if state.nav_markers
        else ""
    )
    return f"""<!DOCTYPE html>
<html dir="ltr" lang="en"><head><meta charset="utf-8"><title>X</title>
<style>article{{border-bottom:1px solid #eee;padding:12px;min-height:120px}}
[role=dialog]{{position:fixed;top:40px;left:30%;background:#fff;border:1px solid #ccc;padding:16px;z-index:9}}
[data-testid=tweetTextarea_0]{{min-height:60px;min-width:400px;border:1px solid #ddd}}</style></head>
<body><div id="react-root"><div style="display:flex">
<header role="banner"><nav aria-label="Primary" role="navigation">
{nav}
</nav></header>
<main role="main"><div data-testid="primaryColumn"></div></main></div></div>
<script>window.__X__ = {config};</script>
<script>{script}</script>
</body></html>"""


_LOGIN_PAGE = """<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Log in to X / X</title></head>
<body><div id="react-root"><div role="dialog" aria-modal="true"><h1>Sign in to X</h1>
<input autocomplete="username" name="text" type="text">
<button data-testid="loginButton" role="button">Next</button></div></div></body></html>"""


def create_app(state: ImitationState) -> Callable[[Scope, Receive, Send], Any]:
    def session_user(request: Request) -> str | None:
        return state.tokens.get(request.cookies.get("auth_token", ""))

    def login_redirect(request: Request) -> Response:
        return RedirectResponse(f"/i/flow/login?redirect_after_login={request.url.path}", status_code=302)

    async def page(request: Request) -> Response:
        delay = state.delay_for("page")
        if delay:
            await asyncio.sleep(delay)
        user = session_user(request)
        if user is None or state.take_mode("page") == "logged_out":
            return login_redirect(request)
        page_mode = None
        if _TIMELINE_PATH.match(request.url.path) and request.url.path.strip("/") not in ("home", "compose"):
            page_mode = state.take_page_mode()
        response = HTMLResponse(_page_shell(state, user, page_mode))
        response.set_cookie("twid", f"u%3D{state.user_ids[user]}", path="/", samesite="lax")
        return response

    async def root(request: Request) -> Response:
        return RedirectResponse("/home" if session_user(request) else "/i/flow/login", status_code=302)

    async def login(request: Request) -> Response:
        return HTMLResponse(_LOGIN_PAGE)

    def api_gate(request: Request, kind: str) -> tuple[str | None, Response | None]:
        user = session_user(request)
        mode = state.take_mode(kind)
        if user is None or mode == "logged_out":
            body = {"errors": [{"code": 32, "message": "Could not authenticate you."}]}
            return None, JSONResponse(body, status_code=401)
        if request.headers.get("x-csrf-token", "") != request.cookies.get(
            "ct0", ""
        ) or not request.cookies.get("ct0"):
            body = {
                "errors": [
                    {"code": 353, "message": "This request requires a matching csrf cookie and header."}
                ]
            }
            return None, JSONResponse(body, status_code=403)
        if mode == "429":
            headers = {
                "x-rate-limit-limit": "50",
                "x-rate-limit-remaining": "0",
                "x-rate-limit-reset": str(int(time.time()) + 60),
            }
            body = {"errors": [{"code": 88, "message": "Rate limit exceeded."}]}
            return None, JSONResponse(body, status_code=429, headers=headers)
        request.state.mode = mode
        return user, None

    async def graphql_get(request: Request) -> Response:
        op = request.path_params["op"]
        if op not in QUERY_IDS or op == "CreateTweet":
            return JSONResponse({"errors": [{"message": "Query not found", "code": 404}]}, status_code=404)
        delay = state.delay_for("api")
        if delay:
            await asyncio.sleep(delay)
        user, refusal = api_gate(request, "api")
        if refusal is not None:
            return refusal
        try:
            variables = json.loads(request.query_params.get("variables") or "{}")
        except ValueError:
            return JSONResponse(
                {"errors": [{"message": "variables: not JSON", "code": 214}]}, status_code=400
            )
        with state._lock:
            return JSONResponse(_answer_query(state, op, variables))

    async def create_tweet(request: Request) -> Response:
        with state._lock:
            state.create_requests += 1
        user, refusal = api_gate(request, "create")
        if refusal is not None:
            return refusal
        mode = request.state.mode
        try:
            body = await request.json()
            variables = body["variables"]
            text = str(variables["tweet_text"])
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"errors": [{"message": "Bad request", "code": 214}]}, status_code=400)
        reply_to = (variables.get("reply") or {}).get("in_reply_to_tweet_id")
        if mode in ("226", "187"):
            return JSONResponse(_error_body(mode))
        if len(text) > MAX_TEXT:
            return JSONResponse(_error_body("186"))
        if reply_to is not None and state.get(str(reply_to)) is None:
            return JSONResponse(_error_body("385"))
        if state.detect_duplicates and state.count_text(text, user):
            return JSONResponse(_error_body("187"))
        tweet_id = state.add_tweet(user, text, in_reply_to=str(reply_to) if reply_to else None)
        if mode == "drop_after_accept":
            return _DropConnection()
        delay = state.delay_for("create")
        if delay:
            await asyncio.sleep(delay)
        with state._lock:
            result = tweet_result(state, state.tweets[tweet_id])
        return JSONResponse({"data": {"create_tweet": {"tweet_results": {"result": result}}}})

    async def get_state(request: Request) -> Response:
        return JSONResponse(state.snapshot())

    async def control(request: Request) -> Response:
        try:
            body = await request.json()
            if not isinstance(body, dict):
                raise TypeError("body must be a JSON object")
            return JSONResponse(state.apply_control(body))
        except (ValueError, KeyError, TypeError) as exc:
            return JSONResponse({"ok": False, "error": f"{type(exc).__name__}: {exc}"}, status_code=400)

    app = Starlette(
        routes=[
            Route("/__state", get_state, methods=["GET"]),
            Route("/__control", control, methods=["POST"]),
            Route("/i/flow/login", login, methods=["GET"]),
            Route("/i/api/graphql/{qid}/CreateTweet", create_tweet, methods=["POST"]),
            Route("/i/api/graphql/{qid}/{op}", graphql_get, methods=["GET"]),
            Route("/", root, methods=["GET"]),
            Route("/{path:path}", page, methods=["GET"]),
        ]
    )

    async def outer(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope["x_imitation_raw_send"] = send
        await app(scope, receive, send)

    return outer


def _answer_query(state: ImitationState, op: str, variables: dict[str, Any]) -> dict[str, Any]:
    tweets = state.newest_first(state.tweets.values())
    if op == "TweetDetail":
        focal = state.tweets.get(str(variables.get("focalTweetId")))
        if focal is None:
            return {
                "data": {"threaded_conversation_with_injections_v2": {"instructions": []}},
                "errors": [
                    {"message": "_Missing: No status found with that ID.", "code": 144, "kind": "NonFatal"}
                ],
            }
        chain: list[FakeTweet] = [focal]
        for _ in range(50):  # ancestors, bounded
            parent = state.tweets.get(chain[0].in_reply_to) if chain[0].in_reply_to else None
            if parent is None:
                break
            chain.insert(0, parent)
        replies = [t for t in reversed(tweets) if t.in_reply_to == focal.tweet_id]
        timeline = _timeline(state, chain + replies, {"count": 100}, modules=False)
        return {"data": {"threaded_conversation_with_injections_v2": timeline["timeline"]}}
    if op in ("UserTweets", "UserTweetsAndReplies"):
        name = str(variables.get("screenName", ""))
        user = next((u for u in state.users if u.lower() == name.lower()), None)
        if user is None:
            return {"data": {"user": {}}}
        with_replies = op == "UserTweetsAndReplies"
        own = [t for t in tweets if t.author == user and (with_replies or t.in_reply_to is None)]
        timeline = _timeline(state, own, variables, modules=with_replies)
        return {"data": {"user": {"result": {"__typename": "User", "timeline": timeline}}}}
    if op == "SearchTimeline":
        query = str(variables.get("rawQuery", ""))
        found = [t for t in tweets if _matches(query, t)]
        timeline = _timeline(state, found, variables, modules=False)
        return {"data": {"search_by_raw_query": {"search_timeline": timeline}}}
    timeline = _timeline(state, tweets, variables, modules=False)  # HomeLatestTimeline
    return {"data": {"home": {"home_timeline_urt": timeline["timeline"]}}}


# -------------------------------------------------------------------------------------------- server


class XImitation:
    """A running imitation: `.base_url`, `.state`, `.username`, `.stop()`; also a context manager."""

    def __init__(
        self, state: ImitationState, server: uvicorn.Server, thread: threading.Thread, port: int, user: str
    ):
        self.state = state
        self.username = user
        self.host = "127.0.0.1"
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        self._server = server
        self._thread = thread

    def session_state(self, username: str | None = None) -> dict[str, Any]:
        """A Playwright storage_state logged in as `username` (default: the main user)."""
        user = username or self.username
        cookie = {"domain": self.host, "path": "/", "expires": -1, "secure": False, "sameSite": "Lax"}
        return {
            "cookies": [
                {"name": "auth_token", "value": self.state.auth_token(user), "httpOnly": True, **cookie},
                {"name": "ct0", "value": self.state.ct0(user), "httpOnly": False, **cookie},
            ],
            "origins": [],
        }

    def write_session(self, path: str | Path, username: str | None = None) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.session_state(username)), encoding="utf-8")
        return path

    def session_b64(self, username: str | None = None) -> str:
        return base64.b64encode(json.dumps(self.session_state(username)).encode()).decode()

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def __enter__(self) -> XImitation:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_x_imitation(
    *,
    user: str = "alice",
    users: Sequence[str] = ("alice", "bob", "carol"),
    port: int = 0,
    seed: int = 1,
    now: Callable[[], datetime] = _utc_now,
    detect_duplicates: bool = False,
    aria_counts: bool = True,
) -> XImitation:
    """Serve the imitation on 127.0.0.1 (a free port unless given) in a background thread."""
    all_users = tuple(dict.fromkeys([user, *users]))
    state = ImitationState(
        users=all_users, seed=seed, now=now, detect_duplicates=detect_duplicates, aria_counts=aria_counts
    )
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    config = uvicorn.Config(
        create_app(state),
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=1,
        proxy_headers=False,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="x-imitation", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise RuntimeError("the X imitation did not start")
        time.sleep(0.01)
    return XImitation(state, server, thread, sock.getsockname()[1], user)


@contextmanager
def x_imitation(**opts: Any) -> Iterator[XImitation]:
    """`with x_imitation(user="alice") as x:` — started, and stopped whatever happens."""
    handle = start_x_imitation(**opts)
    try:
        yield handle
    finally:
        handle.stop()


class ImitationClient:
    """Reads and steers an imitation running in another process, over `/__state` and `/__control`."""

    def __init__(self, base_url: str, *, timeout: float = 5.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._timeout = timeout

    def state(self) -> dict[str, Any]:
        r = httpx.get(f"{self.base_url}/__state", timeout=self._timeout)
        r.raise_for_status()
        return r.json()

    def control(self, **body: Any) -> dict[str, Any]:
        r = httpx.post(f"{self.base_url}/__control", json=body, timeout=self._timeout)
        r.raise_for_status()
        return r.json()

    def count_text(self, text: str, author: str | None = None) -> int:
        return sum(
            1
            for t in self.state()["tweets"]
            if t["text"] == text and (author is None or t["author"] == author)
        )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve the X imitation on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--user", default="alice")
    parser.add_argument("--users", default="alice,bob,carol", help="comma-separated accounts")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--session-out", type=Path, help="write a Playwright storage_state for --user here")
    args = parser.parse_args(argv)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    handle = start_x_imitation(
        user=args.user, users=[u for u in args.users.split(",") if u], port=args.port, seed=args.seed
    )
    try:
        if args.session_out:
            handle.write_session(args.session_out)
        print(f"X imitation at {handle.base_url} (user {handle.username})", flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        handle.stop()


if __name__ == "__main__":
    main()
