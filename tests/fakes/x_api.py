"""A local imitation of the X API v2 (api.x.com), for the official-API publisher's tests.

It answers the way X does, as far as X's docs, its OpenAPI problem types and the errors people report show:
bodies ``{"data": ...}`` / ``{"errors": [...]}`` and problem JSON (``title``, ``detail``, ``type``, ``status``),
ids that are snowflakes of its own clock, ``x-rate-limit-*`` headers on every authenticated answer.

Endpoints: ``POST /2/tweets`` (``text``, ``reply.in_reply_to_tweet_id``, ``quote_tweet_id``,
``media.media_ids``), ``DELETE /2/tweets/{id}``, ``GET /2/tweets/{id}``, ``GET /2/tweets?ids=``,
``GET /2/users/me``, ``GET /2/users/{id}/tweets``, ``GET /2/users/{id}/mentions`` (``since_id``, ``until_id``,
``max_results`` 5..100, ``pagination_token``; newest first; ``meta`` with ``result_count``, ``newest_id``,
``oldest_id``, ``next_token``), ``tweet.fields`` (``non_public_metrics`` only on the owner's own posts of the
last 30 days, with a user token; otherwise a "Field Authorization Error" beside the data, as X does).

Auth: OAuth 2.0 Authorization Code with PKCE (``GET /i/oauth2/authorize`` approves at once as
``state.authorizing_user``, or as ``user=<name>`` if the query names one, and redirects with ``code`` and
``state``; ``POST /2/oauth2/token`` for ``authorization_code`` (S256 or plain verifier checked; a code lives
30 s and serves once) and ``refresh_token`` (refresh tokens rotate; a spent one is refused with
``invalid_request``; the previous access token stays valid until it expires)); access tokens live 7200 s of
the imitation's clock; a confidential client must send HTTP Basic. App-only bearer tokens
(``state.app.bearer_token`` or ``POST /oauth2/token`` ``client_credentials``) read but may not post
(403 "Unsupported Authentication"). OAuth 1.0a user context: HMAC-SHA1 signatures are verified (RFC 5849
§3.4: query, form body and oauth_* parameters; timestamps within 300 s of the wall clock, since every signing
library stamps with ``time.time()``; a nonce serves once).

Rules of POST /2/tweets: duplicate live text by the same author → 403; since 2026-02-23 a reply is allowed
only to the account's own posts or to a post that mentions or quotes the account → 403 naming the rule.

Rate limits: fixed 15-minute windows of the imitation clock per endpoint per user (per app for app-only),
``state.limits`` configurable; over → 429; the headers ride on every authenticated answer (a 401 has no
user to count against, so it has none). Credits (pay-per-use): a ledger per app, debited per request
(``PRICES_MICRO_USD``), reads deduplicated per resource per UTC day as X documents; a balance at or below
zero → 402 ``CreditsDepleted``; an optional spend cap → 429 ``UsageCapExceeded`` (``usage-capped``).

Faults (``state.set_fault``): ``drop_after_accept`` / ``error_after_accept`` (create only: the post exists,
the answer is lost / is a 5xx), ``error`` / ``drop`` (any endpoint, nothing done); ``times=n`` clears after n.
``state.set_latency(seconds, endpoint)`` (on create the post is accepted first, then the answer waits).

    with x_api() as x:                                  # uvicorn in a thread, on a free 127.0.0.1 port
        token = x.state.issue_user_token("alice")       # or run the PKCE flow against x.base_url
        x.state.add_mention("bob", "alice")             # bob posts "@alice ..."
        x.state.set_credits(0.05); x.state.advance(7200)
        x.state.posts_of("alice")                       # what is on alice's timeline

Cross-process: ``GET /__state`` and ``POST /__control``. Standalone: ``python -m tests.fakes.x_api --port 8766``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import re
import secrets
import signal
import socket
import threading
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

#: 2026-06-01T12:00:00Z: where the imitation's clock starts unless told
DEFAULT_START = 1_780_315_200.0
#: X's snowflake epoch (2010-11-04T01:42:54.657Z), in ms
SNOWFLAKE_EPOCH_MS = 1_288_834_974_657
ACCESS_TOKEN_SECONDS = 7200
AUTH_CODE_SECONDS = 30
WINDOW_SECONDS = 15 * 60
OAUTH1_SKEW_SECONDS = 300
NON_PUBLIC_METRICS_DAYS = 30
MAX_TEXT = 280
URL_WEIGHT = 23

#: per user (per app for app-only) per 15 minutes; X's documented per-user limits, all configurable
DEFAULT_LIMITS = {
    "create": 100,
    "delete": 50,
    "lookup": 900,
    "me": 75,
    "timeline": 900,
    "mentions": 300,
}

#: micro-USD. docs.x.com/x-api/getting-started/pricing: "Content: Create" $0.015 per request, "(with URL)"
#: $0.200, "Posts: Read" $0.005 and "User: Read" $0.010 per resource, "Content: Manage" $0.005; "Owned
#: Reads" (GET /2/users/{id}/tweets, /mentions of the caller) $0.001 per resource since 2026-04-20. The
#: $0.010 reply to a post that mentioned the account is issue 18's figure (not on the public page we found).
PRICES_MICRO_USD = {
    "post": 15_000,
    "post_with_url": 200_000,
    "reply_to_mention": 10_000,
    "delete": 5_000,
    "read_post": 5_000,
    "read_user": 10_000,
    "owned_read": 1_000,
}

SCOPES = frozenset({
    "tweet.read", "tweet.write", "users.read", "offline.access", "like.read", "like.write", "media.write",
    "follows.read", "follows.write", "bookmark.read", "bookmark.write", "list.read", "mute.read",
    "block.read", "space.read", "tweet.moderate.write", "dm.read", "dm.write",
})
DEFAULT_SCOPES = ("tweet.read", "tweet.write", "users.read", "offline.access")
#: the scopes each endpoint needs (X: POST /2/tweets wants tweet.read tweet.write users.read)
ENDPOINT_SCOPES = {
    "create": {"tweet.read", "tweet.write", "users.read"},
    "delete": {"tweet.read", "tweet.write", "users.read"},
    "lookup": {"tweet.read", "users.read"},
    "me": {"tweet.read", "users.read"},
    "timeline": {"tweet.read", "users.read"},
    "mentions": {"tweet.read", "users.read"},
}
TWEET_FIELDS = (
    "article", "attachments", "author_id", "card_uri", "community_id", "context_annotations",
    "conversation_id", "created_at", "display_text_range", "edit_controls", "edit_history_tweet_ids",
    "entities", "geo", "id", "in_reply_to_user_id", "lang", "media_metadata", "non_public_metrics",
    "note_tweet", "organic_metrics", "possibly_sensitive", "promoted_metrics", "public_metrics",
    "referenced_tweets", "reply_settings", "scopes", "source", "suggested_source_links", "text", "withheld",
)
PUBLIC_METRICS = ("retweet_count", "reply_count", "like_count", "quote_count", "bookmark_count",
                  "impression_count")
NON_PUBLIC_METRICS = ("impression_count", "url_link_clicks", "user_profile_clicks", "engagements")
FAULTS = frozenset({"drop_after_accept", "error_after_accept", "error", "drop"})
ENDPOINTS = frozenset(DEFAULT_LIMITS) | {"token"}

_URL_RE = re.compile(r"https?://\S+|\b(?:[a-z0-9-]+\.)+(?:com|org|net|io|dev|ai|co|app|uk|de)\b(?:/\S*)?",
                     re.IGNORECASE)
_MENTION_RE = re.compile(r"(?<![\w@])@(\w{1,15})")
_DIGITS_RE = re.compile(r"^\d{1,19}$")

# ------------------------------------------------------------------------------------------ X's errors

UNSUPPORTED_APP_ONLY = (
    "Authenticating with OAuth 2.0 Application-Only is forbidden for this endpoint.  Supported "
    "authentication types are [OAuth 1.0a User Context, OAuth 2.0 User Context]."
)
DUPLICATE_DETAIL = "You are not allowed to create a Tweet with duplicate content."
REPLY_NOT_ALLOWED = (
    "Reply to this conversation is not allowed because you have not been mentioned or otherwise engaged "
    "by the author of the post you are replying to."
)
REPLY_TO_MISSING = "You attempted to reply to a Tweet that is deleted or not visible to you."
CREDITS_DEPLETED = {
    "title": "CreditsDepleted",
    "detail": "Your enrolled account does not have any credits to fulfill this request.",
    "type": "https://api.twitter.com/2/problems/credits",
    "status": 402,
}
PROBLEM = "https://api.twitter.com/2/problems/"


def problem(status: int, title: str, detail: str, type_: str = "about:blank", **extra: Any) -> dict[str, Any]:
    return {"title": title, "detail": detail, "type": type_, "status": status, **extra}


def invalid_request(*messages: str, parameters: dict[str, list[str]] | None = None) -> dict[str, Any]:
    errors = [{"message": m, **({"parameters": parameters} if parameters else {})} for m in messages]
    return {"errors": errors, "title": "Invalid Request",
            "detail": "One or more parameters to your request was invalid.", "type": PROBLEM + "invalid-request"}


UNAUTHORIZED = problem(401, "Unauthorized", "Unauthorized")
FORBIDDEN = problem(403, "Forbidden", "Forbidden")
TOO_MANY = problem(429, "Too Many Requests", "Too Many Requests")


def not_found(tweet_id: str, parameter: str) -> dict[str, Any]:
    return {"value": tweet_id, "detail": f"Could not find tweet with {parameter}: [{tweet_id}].",
            "title": "Not Found Error", "resource_type": "tweet", "parameter": parameter,
            "resource_id": tweet_id, "type": PROBLEM + "resource-not-found"}


# ------------------------------------------------------------------------------------------- helpers


def percent_encode(value: str) -> str:
    """RFC 3986 / RFC 5849 §3.6: everything but unreserved characters, upper-case hex."""
    return urllib.parse.quote(value, safe="-._~")


def oauth1_base_string(method: str, url: str, params: Sequence[tuple[str, str]]) -> str:
    """RFC 5849 §3.4.1: method, base string URI (no query, no default port) and normalized parameters."""
    parts = urllib.parse.urlsplit(url)
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    port = parts.port
    netloc = host if port is None or (scheme, port) in (("http", 80), ("https", 443)) else f"{host}:{port}"
    base_uri = f"{scheme}://{netloc}{parts.path or '/'}"
    pairs = sorted((percent_encode(k), percent_encode(v)) for k, v in params)
    normalized = "&".join(f"{k}={v}" for k, v in pairs)
    return "&".join((method.upper(), percent_encode(base_uri), percent_encode(normalized)))


def oauth1_signature(base_string: str, consumer_secret: str, token_secret: str) -> str:
    key = f"{percent_encode(consumer_secret)}&{percent_encode(token_secret)}"
    digest = hmac.new(key.encode(), base_string.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def parse_oauth_header(value: str) -> dict[str, str]:
    """``OAuth k="v", ...`` (RFC 5849 §3.5.1), values percent-decoded."""
    out: dict[str, str] = {}
    for item in value[len("OAuth "):].split(","):
        key, sep, raw = item.strip().partition("=")
        if not sep:
            continue
        out[urllib.parse.unquote(key.strip())] = urllib.parse.unquote(raw.strip().strip('"'))
    return out


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")


def weighted_length(text: str) -> int:
    """X's count, roughly: a URL weighs 23 whatever its length."""
    return len(_URL_RE.sub("x" * URL_WEIGHT, text))


def has_url(text: str) -> bool:
    return _URL_RE.search(text) is not None


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(ts * 1000) % 1000:03d}Z"


# ------------------------------------------------------------------------------------------- the state


@dataclass
class ApiUser:
    user_id: str
    username: str
    name: str


@dataclass
class ApiApp:
    client_id: str
    client_secret: str
    consumer_key: str
    consumer_secret: str
    bearer_token: str
    redirect_uris: tuple[str, ...] = ("http://127.0.0.1/callback",)
    confidential: bool = True
    credits_micro: int = 100_000_000  # $100
    spend_cap_micro: int | None = None
    spent_micro: int = 0


@dataclass
class ApiPost:
    id: str
    author_id: str
    text: str
    created_at: float
    conversation_id: str
    in_reply_to_user_id: str | None = None
    replied_to: str | None = None
    quoted: str | None = None
    media_ids: tuple[str, ...] = ()
    public_metrics: dict[str, int] = field(default_factory=lambda: dict.fromkeys(PUBLIC_METRICS, 0))
    non_public_metrics: dict[str, int] = field(default_factory=lambda: dict.fromkeys(NON_PUBLIC_METRICS, 0))
    deleted: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "author_id": self.author_id, "text": self.text, "created_at": iso(self.created_at),
                "conversation_id": self.conversation_id, "in_reply_to_user_id": self.in_reply_to_user_id,
                "replied_to": self.replied_to, "quoted": self.quoted, "media_ids": list(self.media_ids),
                "public_metrics": dict(self.public_metrics), "non_public_metrics": dict(self.non_public_metrics),
                "deleted": self.deleted}


@dataclass
class AccessToken:
    app: str
    user_id: str | None  # None: app-only
    scopes: frozenset[str]
    expires_at: float | None


@dataclass
class RefreshToken:
    app: str
    user_id: str
    scopes: frozenset[str]
    spent: bool = False


@dataclass
class AuthCode:
    app: str
    user_id: str
    redirect_uri: str
    challenge: str
    method: str
    scopes: frozenset[str]
    expires_at: float
    used: bool = False


@dataclass
class Charge:
    at: float
    app: str
    user_id: str | None
    endpoint: str
    action: str
    micro_usd: int
    resources: int


@dataclass
class Caller:
    app: ApiApp
    user_id: str | None  # None: app-only
    scopes: frozenset[str] | None  # None: OAuth 1.0a (all of the app's permissions)
    kind: str  # oauth2_user | oauth1 | app_only

    @property
    def rate_key(self) -> str:
        return self.user_id or f"app:{self.app.client_id}"


class XApiState:
    """Everything the imitation knows; thread-safe (uvicorn runs in its own thread)."""

    def __init__(self, *, users: Sequence[str] = ("alice", "bob", "carol"), start: float = DEFAULT_START,
                 limits: dict[str, int] | None = None, credits_usd: float = 100.0) -> None:
        self._lock = threading.RLock()
        self._now = float(start)
        self._last_id = 0
        self.users: dict[str, ApiUser] = {}
        for i, name in enumerate(dict.fromkeys(users)):
            uid = str(1_500_000_000_000_000_000 + 7_919 * (i + 1))
            self.users[uid] = ApiUser(uid, name, name.capitalize())
        self.authorizing_user = next(iter(self.users.values())).username
        app = ApiApp(client_id="imitation-client-id", client_secret="imitation-client-secret",
                     consumer_key="imitation-consumer-key", consumer_secret="imitation-consumer-secret",
                     bearer_token="AAAAAAAAAAAAAAAAAAAAAImitationAppOnly" + secrets.token_hex(8),
                     credits_micro=round(credits_usd * 1_000_000))
        self.apps: dict[str, ApiApp] = {app.client_id: app}
        self.posts: dict[str, ApiPost] = {}
        self.access: dict[str, AccessToken] = {app.bearer_token: AccessToken(app.client_id, None, frozenset(), None)}
        self.refresh: dict[str, RefreshToken] = {}
        self.codes: dict[str, AuthCode] = {}
        #: OAuth 1.0a access token -> (app, user id, token secret)
        self.oauth1: dict[str, tuple[str, str, str]] = {}
        self._nonces: dict[tuple[str, str, str], float] = {}
        self.limits: dict[str, int] = {**DEFAULT_LIMITS, **(limits or {})}
        self._windows: dict[tuple[str, str], tuple[float, int]] = {}
        self.charges: list[Charge] = []
        self._billed: set[tuple[str, str, str, str]] = set()
        self._cursors: dict[str, str] = {}
        self.fault: str | None = None
        self.fault_endpoint = "create"
        self.fault_status = 503
        self.fault_times: int | None = None
        self.latency = 0.0
        self.latency_endpoint = "all"
        self.requests: list[dict[str, Any]] = []

    # -- clock
    def now(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError("the clock only goes forward")
        with self._lock:
            self._now += seconds
            return self._now

    def set_time(self, ts: float) -> None:
        with self._lock:
            self._now = float(ts)

    # -- accounts and apps
    @property
    def app(self) -> ApiApp:
        return next(iter(self.apps.values()))

    def user(self, username: str) -> ApiUser:
        with self._lock:
            for u in self.users.values():
                if u.username.lower() == username.lower():
                    return u
        raise KeyError(f"no user {username!r}; known: {[u.username for u in self.users.values()]}")

    def user_id(self, username: str) -> str:
        return self.user(username).user_id

    def issue_user_token(self, username: str, scopes: Sequence[str] = DEFAULT_SCOPES,
                         app: str | None = None) -> dict[str, Any]:
        """What a finished PKCE flow gives, without the flow: a token response for ``username``."""
        with self._lock:
            return self._token_response(app or self.app.client_id, self.user_id(username), frozenset(scopes))

    def oauth1_credentials(self, username: str, app: str | None = None) -> dict[str, str]:
        """Consumer key/secret and an access token/secret for ``username`` (OAuth 1.0a user context)."""
        with self._lock:
            a = self.apps[app or self.app.client_id]
            uid = self.user_id(username)
            known = [(t, s) for t, (app_id, u, s) in self.oauth1.items() if app_id == a.client_id and u == uid]
            if known:
                token, secret = known[0]
            else:
                token, secret = f"{uid}-{secrets.token_urlsafe(24)}", secrets.token_urlsafe(32)
                self.oauth1[token] = (a.client_id, uid, secret)
            return {"consumer_key": a.consumer_key, "consumer_secret": a.consumer_secret,
                    "access_token": token, "access_token_secret": secret}

    def _token_response(self, app: str, user_id: str, scopes: frozenset[str]) -> dict[str, Any]:
        access = secrets.token_urlsafe(48)
        self.access[access] = AccessToken(app, user_id, scopes, self._now + ACCESS_TOKEN_SECONDS)
        out: dict[str, Any] = {"token_type": "bearer", "expires_in": ACCESS_TOKEN_SECONDS, "access_token": access,
                               "scope": " ".join(sorted(scopes))}
        if "offline.access" in scopes:
            refresh = secrets.token_urlsafe(48)
            self.refresh[refresh] = RefreshToken(app, user_id, scopes)
            out["refresh_token"] = refresh
        return out

    # -- posts
    def _new_id(self) -> str:
        snow = (int(self._now * 1000) - SNOWFLAKE_EPOCH_MS) << 22
        self._last_id = max(self._last_id + 1, snow)
        return str(self._last_id)

    def add_post(self, author: str, text: str, *, in_reply_to: str | None = None, quote_of: str | None = None,
                 metrics: dict[str, int] | None = None) -> str:
        """A post by ``author`` (a username) made outside the API under test, e.g. by another person."""
        with self._lock:
            post = self._create(self.user_id(author), text, in_reply_to, quote_of, ())
            if metrics:
                self.set_metrics(post.id, **metrics)
            return post.id

    def add_mention(self, author: str, mentioned: str, text: str | None = None) -> str:
        """``author`` posts a post mentioning ``mentioned`` (it shows in the mentions timeline)."""
        return self.add_post(author, text or f"@{mentioned} what do you think about this?")

    def _create(self, author_id: str, text: str, reply_to: str | None, quote: str | None,
                media: tuple[str, ...]) -> ApiPost:
        pid = self._new_id()
        parent = self.posts.get(reply_to) if reply_to else None
        post = ApiPost(pid, author_id, text, self._now, parent.conversation_id if parent else pid,
                       parent.author_id if parent else None, reply_to, quote, media)
        if parent:
            parent.public_metrics["reply_count"] += 1
        if quote and quote in self.posts:
            self.posts[quote].public_metrics["quote_count"] += 1
        self.posts[pid] = post
        return post

    def set_metrics(self, post_id: str, **counts: int) -> None:
        """Public metrics by their names (``like_count``...), non-public ones as ``url_link_clicks`` etc."""
        with self._lock:
            post = self.posts[post_id]
            for key, value in counts.items():
                if key in PUBLIC_METRICS:
                    post.public_metrics[key] = int(value)
                if key in NON_PUBLIC_METRICS:
                    post.non_public_metrics[key] = int(value)
                if key not in PUBLIC_METRICS and key not in NON_PUBLIC_METRICS:
                    raise ValueError(f"unknown metric {key!r}")

    def posts_of(self, username: str, *, include_deleted: bool = False) -> list[ApiPost]:
        """The user's posts, newest first."""
        uid = self.user_id(username)
        with self._lock:
            return sorted((p for p in self.posts.values() if p.author_id == uid and (include_deleted or not p.deleted)),
                          key=lambda p: int(p.id), reverse=True)

    def count_text(self, username: str, text: str) -> int:
        return sum(1 for p in self.posts_of(username) if p.text == text)

    def mentions_user(self, post: ApiPost, user_id: str) -> bool:
        name = self.users[user_id].username.lower()
        return any(m.lower() == name for m in _MENTION_RE.findall(post.text))

    # -- credits
    def set_credits(self, usd: float, app: str | None = None) -> None:
        with self._lock:
            self.apps[app or self.app.client_id].credits_micro = round(usd * 1_000_000)

    def credits(self, app: str | None = None) -> float:
        with self._lock:
            return self.apps[app or self.app.client_id].credits_micro / 1_000_000

    def set_spend_cap(self, usd: float | None, app: str | None = None) -> None:
        with self._lock:
            self.apps[app or self.app.client_id].spend_cap_micro = None if usd is None else round(usd * 1_000_000)

    def spent(self, app: str | None = None) -> float:
        with self._lock:
            return self.apps[app or self.app.client_id].spent_micro / 1_000_000

    def _debit(self, caller: Caller, endpoint: str, action: str, resources: Sequence[tuple[str, str]]) -> None:
        """Charge ``action`` once per resource not yet billed today (UTC) to this app; writes have no key."""
        day = datetime.fromtimestamp(self._now, UTC).date().isoformat()
        unit = PRICES_MICRO_USD[action]
        billable = 0
        for kind, rid in resources:
            key = (caller.app.client_id, kind, rid, day)
            if kind == "write" or key not in self._billed:
                self._billed.add(key)
                billable += 1
        if billable:
            total = unit * billable
            caller.app.credits_micro -= total
            caller.app.spent_micro += total
            self.charges.append(Charge(self._now, caller.app.client_id, caller.user_id, endpoint, action, total,
                                       billable))

    # -- rate limits
    def _count(self, endpoint: str, key: str) -> tuple[bool, dict[str, str]]:
        limit = self.limits[endpoint]
        start, used = self._windows.get((endpoint, key), (self._now, 0))
        if self._now >= start + WINDOW_SECONDS:
            start, used = self._now, 0
        allowed = used < limit
        if allowed:
            used += 1
        self._windows[(endpoint, key)] = (start, used)
        return allowed, {"x-rate-limit-limit": str(limit), "x-rate-limit-remaining": str(max(0, limit - used)),
                         "x-rate-limit-reset": str(int(start + WINDOW_SECONDS))}

    # -- faults
    def set_fault(self, fault: str | None, *, endpoint: str = "create", times: int | None = None,
                  status: int = 503) -> None:
        if fault is not None and fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; expected one of {sorted(FAULTS)}")
        if endpoint not in ENDPOINTS:
            raise ValueError(f"unknown endpoint {endpoint!r}; expected one of {sorted(ENDPOINTS)}")
        if fault in ("drop_after_accept", "error_after_accept") and endpoint != "create":
            raise ValueError(f"{fault} only applies to create")
        if times is not None and times < 1:
            raise ValueError("times must be >= 1")
        if not 500 <= status <= 599:
            raise ValueError("status must be a 5xx")
        with self._lock:
            self.fault, self.fault_endpoint, self.fault_times, self.fault_status = fault, endpoint, times, status

    def set_latency(self, seconds: float, endpoint: str = "all") -> None:
        if endpoint != "all" and endpoint not in ENDPOINTS:
            raise ValueError(f"unknown endpoint {endpoint!r}")
        with self._lock:
            self.latency, self.latency_endpoint = max(0.0, float(seconds)), endpoint

    def take_fault(self, endpoint: str) -> str | None:
        with self._lock:
            if self.fault is None or self.fault_endpoint != endpoint:
                return None
            fault = self.fault
            if self.fault_times is not None:
                self.fault_times -= 1
                if self.fault_times <= 0:
                    self.fault, self.fault_times = None, None
            return fault

    def delay_for(self, endpoint: str) -> float:
        with self._lock:
            return self.latency if self.latency_endpoint in ("all", endpoint) else 0.0

    # -- authentication
    def authenticate(self, request_method: str, url: str, authorization: str,
                     form: Sequence[tuple[str, str]]) -> Caller | None:
        with self._lock:
            if authorization.startswith("Bearer "):
                tok = self.access.get(authorization[7:].strip())
                if tok is None or (tok.expires_at is not None and self._now >= tok.expires_at):
                    return None
                kind = "app_only" if tok.user_id is None else "oauth2_user"
                return Caller(self.apps[tok.app], tok.user_id, tok.scopes if tok.user_id else None, kind)
            if authorization.startswith("OAuth "):
                return self._oauth1(request_method, url, parse_oauth_header(authorization), form)
            return None

    def _oauth1(self, method: str, url: str, oauth: dict[str, str], form: Sequence[tuple[str, str]]) -> Caller | None:
        app = next((a for a in self.apps.values() if a.consumer_key == oauth.get("oauth_consumer_key")), None)
        token = self.oauth1.get(oauth.get("oauth_token", ""))
        if app is None or token is None or token[0] != app.client_id:
            return None
        if oauth.get("oauth_signature_method") != "HMAC-SHA1" or oauth.get("oauth_version", "1.0") != "1.0":
            return None
        try:
            stamp = int(oauth.get("oauth_timestamp", ""))
        except ValueError:
            return None
        wall = time.time()
        if abs(wall - stamp) > OAUTH1_SKEW_SECONDS:
            return None
        nonce_key = (oauth.get("oauth_nonce", ""), str(stamp), oauth.get("oauth_token", ""))
        if not nonce_key[0] or nonce_key in self._nonces:
            return None
        query = urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query, keep_blank_values=True)
        params = [*query, *form, *((k, v) for k, v in oauth.items() if k not in ("oauth_signature", "realm"))]
        expected = oauth1_signature(oauth1_base_string(method, url, params), app.consumer_secret, token[2])
        if not hmac.compare_digest(expected, oauth.get("oauth_signature", "")):
            return None
        for key, seen in list(self._nonces.items()):  # bounded: forget nonces older than the skew window
            if seen < wall - 2 * OAUTH1_SKEW_SECONDS:
                del self._nonces[key]
        self._nonces[nonce_key] = wall
        return Caller(app, token[1], None, "oauth1")

    # -- inspection
    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "now": self._now,
                "users": [{"id": u.user_id, "username": u.username} for u in self.users.values()],
                "posts": [p.to_json() for p in sorted(self.posts.values(), key=lambda p: int(p.id), reverse=True)],
                "credits_usd": {a.client_id: a.credits_micro / 1e6 for a in self.apps.values()},
                "spent_usd": {a.client_id: a.spent_micro / 1e6 for a in self.apps.values()},
                "charges": [c.__dict__ for c in self.charges],
                "fault": self.fault, "fault_endpoint": self.fault_endpoint, "fault_times": self.fault_times,
                "latency": self.latency, "latency_endpoint": self.latency_endpoint,
                "requests": len(self.requests),
            }

    def apply_control(self, body: dict[str, Any]) -> dict[str, Any]:
        """What ``POST /__control`` does; raises ValueError/KeyError/TypeError on bad input."""
        out: dict[str, Any] = {"ok": True}
        if "advance" in body:
            out["now"] = self.advance(float(body["advance"]))
        if "credits_usd" in body:
            self.set_credits(float(body["credits_usd"]))
        if "spend_cap_usd" in body:
            self.set_spend_cap(None if body["spend_cap_usd"] is None else float(body["spend_cap_usd"]))
        if "fault" in body:
            self.set_fault(body["fault"], endpoint=body.get("endpoint", "create"), times=body.get("times"),
                           status=int(body.get("status", 503)))
        if "latency" in body:
            self.set_latency(float(body["latency"]), body.get("latency_endpoint", "all"))
        if body.get("add_mention"):
            spec = body["add_mention"]
            out["added"] = self.add_mention(str(spec["author"]), str(spec["mentioned"]), spec.get("text"))
        if body.get("add_post"):
            spec = body["add_post"]
            out["added"] = self.add_post(str(spec["author"]), str(spec["text"]), in_reply_to=spec.get("in_reply_to"),
                                         quote_of=spec.get("quote_of"))
        if body.get("issue_token"):
            out["token"] = self.issue_user_token(str(body["issue_token"]))
        return out


# --------------------------------------------------------------------------------------------- the app


class _DropConnection(Response):
    """Starts a 201, sends a few bytes, then kills the TCP connection (the client never learns the id)."""

    def __init__(self, status: int = 201) -> None:
        super().__init__(status_code=status)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")]})
        await send({"type": "http.response.body", "body": b'{"data":{"id":"', "more_body": True})
        raw_send = scope.get("x_api_raw_send")
        transport = getattr(getattr(raw_send, "__self__", None), "transport", None)
        if transport is None:
            raise ConnectionAbortedError("drop")
        transport.abort()
        await asyncio.sleep(0.05)


def _json(body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    media = "application/problem+json" if status >= 400 and "title" in body else "application/json"
    return JSONResponse(body, status_code=status, headers=headers, media_type=media)


def _fields(request: Request) -> tuple[set[str], dict[str, Any] | None]:
    raw = request.query_params.get("tweet.fields")
    if raw is None:
        return set(), None
    fields = {f for f in raw.split(",") if f}
    unknown = sorted(fields - set(TWEET_FIELDS))
    if unknown:
        return fields, invalid_request(
            f"The `tweet.fields` query parameter value [{unknown[0]}] is not one of [{','.join(TWEET_FIELDS)}]",
            parameters={"tweet.fields": [raw]})
    return fields, None


def create_app(state: XApiState) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    Handler = Callable[[Request, Caller], Awaitable[Response]]

    def render(post: ApiPost, fields: set[str], caller: Caller, errors: list[dict[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {"id": post.id, "text": post.text, "edit_history_tweet_ids": [post.id]}
        if "created_at" in fields:
            out["created_at"] = iso(post.created_at)
        if "author_id" in fields:
            out["author_id"] = post.author_id
        if "conversation_id" in fields:
            out["conversation_id"] = post.conversation_id
        if "in_reply_to_user_id" in fields and post.in_reply_to_user_id:
            out["in_reply_to_user_id"] = post.in_reply_to_user_id
        if "referenced_tweets" in fields and (post.replied_to or post.quoted):
            refs = [{"type": "replied_to", "id": post.replied_to}] if post.replied_to else []
            out["referenced_tweets"] = refs + ([{"type": "quoted", "id": post.quoted}] if post.quoted else [])
        if "attachments" in fields and post.media_ids:
            out["attachments"] = {"media_keys": [f"3_{m}" for m in post.media_ids]}
        if "public_metrics" in fields:
            out["public_metrics"] = dict(post.public_metrics)
        if "non_public_metrics" in fields:
            fresh = state._now - post.created_at <= NON_PUBLIC_METRICS_DAYS * 86400
            if caller.user_id == post.author_id and caller.kind != "app_only" and fresh:
                out["non_public_metrics"] = dict(post.non_public_metrics)
            else:
                errors.append({"value": post.id, "detail": "Sorry, you are not authorized to access "
                               f"'non_public_metrics' on this Tweet with id {post.id}.",
                               "title": "Field Authorization Error", "resource_type": "tweet",
                               "parameter": "non_public_metrics", "resource_id": post.id, "section": "data",
                               "field": "non_public_metrics", "type": PROBLEM + "not-authorized-for-field"})
        return out

    def endpoint(name: str, handler: Handler, *, app_only: bool) -> Callable[[Request], Awaitable[Response]]:
        async def run(request: Request) -> Response:
            body = await request.body()
            form: list[tuple[str, str]] = []
            if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
                form = urllib.parse.parse_qsl(body.decode(errors="replace"), keep_blank_values=True)
            state.requests.append({"endpoint": name, "method": request.method, "path": request.url.path,
                                   "query": str(request.url.query), "body": body.decode(errors="replace"),
                                   "authorization": request.headers.get("authorization", "")})
            caller = state.authenticate(request.method, str(request.url), request.headers.get("authorization", ""),
                                        form)
            if caller is None:
                return _json(UNAUTHORIZED, 401)
            with state._lock:
                allowed, limits = state._count(name, caller.rate_key)
            if not allowed:
                return _json(TOO_MANY, 429, limits)
            if caller.kind == "app_only" and not app_only:
                return _json(problem(403, "Unsupported Authentication", UNSUPPORTED_APP_ONLY,
                                     PROBLEM + "unsupported-authentication"), 403, limits)
            if caller.scopes is not None and not ENDPOINT_SCOPES[name] <= caller.scopes:
                return _json(FORBIDDEN, 403, limits)
            with state._lock:
                app = caller.app
                if app.spend_cap_micro is not None and app.spent_micro >= app.spend_cap_micro:
                    return _json({"account_id": app.client_id, "product_name": "pay-per-use", "title": "UsageCapExceeded",
                                  "period": "Monthly", "scope": "Account", "detail": "Usage cap exceeded: Monthly spend cap",
                                  "type": PROBLEM + "usage-capped"}, 429, limits)
                if app.credits_micro <= 0:
                    return _json(CREDITS_DEPLETED, 402, limits)
            fault = state.take_fault(name)
            if fault == "error":
                status = state.fault_status
                return _json(problem(status, "Service Unavailable", "Service Unavailable"), status, limits)
            if fault == "drop":
                return _DropConnection(200)
            delay = state.delay_for(name)
            if delay and name != "create":
                await asyncio.sleep(delay)
            request.state.fault = fault
            request.state.body = body
            response = await handler(request, caller)
            response.headers.update(limits)
            return response

        return run

    async def create(request: Request, caller: Caller) -> Response:
        try:
            body = json.loads(request.state.body or b"null")
        except ValueError:
            return _json(invalid_request("Request body is not valid JSON"), 400)
        if not isinstance(body, dict):
            return _json(invalid_request("Request body must be a JSON object"), 400)
        text = body.get("text")
        reply = body.get("reply")
        media = body.get("media")
        quote = body.get("quote_tweet_id")
        if text is not None and not isinstance(text, str):
            return _json(invalid_request("$.text: is not a string"), 400)
        reply_to = reply.get("in_reply_to_tweet_id") if isinstance(reply, dict) else None
        if reply is not None and (not isinstance(reply_to, str) or not _DIGITS_RE.match(reply_to)):
            return _json(invalid_request("$.reply.in_reply_to_tweet_id: does not match the pattern ^[0-9]{1,19}$"), 400)
        media_ids = media.get("media_ids") if isinstance(media, dict) else None
        if media is not None and (not isinstance(media_ids, list) or not 1 <= len(media_ids) <= 4
                                  or not all(isinstance(m, str) and _DIGITS_RE.match(m) for m in media_ids)):
            return _json(invalid_request("$.media.media_ids: must be 1 to 4 strings of digits"), 400)
        if quote is not None and (not isinstance(quote, str) or not _DIGITS_RE.match(quote)):
            return _json(invalid_request("$.quote_tweet_id: does not match the pattern ^[0-9]{1,19}$"), 400)
        if not text and not media_ids:
            return _json(invalid_request("$.text: is required unless media is given"), 400)
        text = text or ""
        if weighted_length(text) > MAX_TEXT:
            return _json(invalid_request("Your Tweet text is too long.", parameters={"text": [
                f"Your Tweet text is {weighted_length(text)} characters, however the limit is {MAX_TEXT}."]}), 400)
        uid = caller.user_id
        assert uid is not None
        with state._lock:
            if any(p.author_id == uid and p.text == text and not p.deleted and text for p in state.posts.values()):
                return _json(problem(403, "Forbidden", DUPLICATE_DETAIL), 403)
            parent = state.posts.get(reply_to) if reply_to else None
            if reply_to and (parent is None or parent.deleted):
                return _json(problem(403, "Forbidden", REPLY_TO_MISSING), 403)
            mentioned = False
            if parent is not None and parent.author_id != uid:
                quoted = state.posts.get(parent.quoted) if parent.quoted else None
                mentioned = state.mentions_user(parent, uid)
                if not mentioned and not (quoted is not None and quoted.author_id == uid):
                    return _json(problem(403, "Forbidden", REPLY_NOT_ALLOWED), 403)
            if quote and (quote not in state.posts or state.posts[quote].deleted):
                return _json(invalid_request(f"Could not find quoted Tweet with id: [{quote}]."), 400)
            post = state._create(uid, text, reply_to, quote, tuple(media_ids or ()))
            action = "post_with_url" if has_url(text) else "reply_to_mention" if mentioned else "post"
            state._debit(caller, "create", action, [("write", post.id)])
            answer = {"data": {"id": post.id, "text": post.text, "edit_history_tweet_ids": [post.id]}}
        if request.state.fault == "drop_after_accept":
            return _DropConnection(201)
        if request.state.fault == "error_after_accept":
            status = state.fault_status
            return _json(problem(status, "Service Unavailable", "Service Unavailable"), status)
        delay = state.delay_for("create")
        if delay:
            await asyncio.sleep(delay)
        return _json(answer, 201)

    async def delete(request: Request, caller: Caller) -> Response:
        pid = request.path_params["id"]
        with state._lock:
            post = state.posts.get(pid)
            if post is None or post.deleted:
                return _json({"errors": [not_found(pid, "id")], "title": "Not Found Error",
                              "detail": f"Could not find tweet with id: [{pid}].",
                              "type": PROBLEM + "resource-not-found"}, 404)
            if post.author_id != caller.user_id:
                return _json(problem(403, "Forbidden", "You are not authorized to delete this Tweet."), 403)
            post.deleted = True
            state._debit(caller, "delete", "delete", [("write", pid)])
        return _json({"data": {"deleted": True}})

    def lookup_answer(caller: Caller, ids: list[str], fields: set[str], parameter: str) -> dict[str, Any]:
        data: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        found: list[tuple[str, str]] = []
        for pid in ids:
            post = state.posts.get(pid)
            if post is None or post.deleted:
                errors.append(not_found(pid, parameter))
                continue
            data.append(render(post, fields, caller, errors))
            found.append(("post", pid))
        state._debit(caller, "lookup", "read_post", found)
        out: dict[str, Any] = {}
        if data:
            out["data"] = data
        if errors:
            out["errors"] = errors
        return out

    async def lookup_one(request: Request, caller: Caller) -> Response:
        pid = request.path_params["id"]
        if not _DIGITS_RE.match(pid):
            return _json(invalid_request(f"The `id` query parameter value [{pid}] does not match ^[0-9]{{1,19}}$"),
                         400)
        fields, error = _fields(request)
        if error:
            return _json(error, 400)
        with state._lock:
            out = lookup_answer(caller, [pid], fields, "id")
        if "data" in out:
            out["data"] = out["data"][0]
        return _json(out)

    async def lookup_many(request: Request, caller: Caller) -> Response:
        raw = request.query_params.get("ids", "")
        ids = [i for i in raw.split(",") if i]
        if not 1 <= len(ids) <= 100 or not all(_DIGITS_RE.match(i) for i in ids):
            return _json(invalid_request("The `ids` query parameter value must be 1 to 100 comma-separated ids",
                                         parameters={"ids": [raw]}), 400)
        fields, error = _fields(request)
        if error:
            return _json(error, 400)
        with state._lock:
            return _json(lookup_answer(caller, ids, fields, "ids"))

    async def me(request: Request, caller: Caller) -> Response:
        with state._lock:
            u = state.users[caller.user_id or ""]
            state._debit(caller, "me", "read_user", [("user", u.user_id)])
        return _json({"data": {"id": u.user_id, "name": u.name, "username": u.username}})

    def page(request: Request, caller: Caller, name: str) -> Response:
        uid = request.path_params["id"]
        q = request.query_params
        if uid not in state.users:
            return _json({"errors": [{"value": uid, "detail": f"Could not find user with id: [{uid}].",
                                      "title": "Not Found Error", "resource_type": "user", "parameter": "id",
                                      "resource_id": uid, "type": PROBLEM + "resource-not-found"}]})
        try:
            size = int(q.get("max_results", "10"))
        except ValueError:
            size = -1
        if not 5 <= size <= 100:
            return _json(invalid_request(f"The `max_results` query parameter value [{q.get('max_results')}] is not "
                                         "between 5 and 100", parameters={"max_results": [str(q.get("max_results"))]}),
                         400)
        for key in ("since_id", "until_id"):
            if key in q and not _DIGITS_RE.match(q[key]):
                return _json(invalid_request(f"The `{key}` query parameter value [{q[key]}] is not valid"), 400)
        fields, error = _fields(request)
        if error:
            return _json(error, 400)
        with state._lock:
            before: str | None = None
            if "pagination_token" in q:
                before = state._cursors.get(q["pagination_token"])
                if before is None:
                    return _json(invalid_request(
                        f"The `pagination_token` query parameter value [{q['pagination_token']}] is not valid"), 400)
            if name == "timeline":
                pool = [p for p in state.posts.values() if p.author_id == uid]
            else:
                pool = [p for p in state.posts.values() if p.author_id != uid and state.mentions_user(p, uid)]
            lo = int(q.get("since_id", "0"))
            hi = min(int(q.get("until_id", str(1 << 63))), int(before) if before else 1 << 63)
            chosen = sorted((p for p in pool if not p.deleted and lo < int(p.id) < hi), key=lambda p: int(p.id),
                            reverse=True)
            items, more = chosen[:size], len(chosen) > size
            errors: list[dict[str, Any]] = []
            data = [render(p, fields, caller, errors) for p in items]
            meta: dict[str, Any] = {"result_count": len(data)}
            if items:
                meta["newest_id"], meta["oldest_id"] = items[0].id, items[-1].id
            if more:
                token = secrets.token_hex(12)
                state._cursors[token] = items[-1].id
                meta["next_token"] = token
            owned = caller.user_id == uid
            state._debit(caller, name, "owned_read" if owned else "read_post", [("post", p.id) for p in items])
        out: dict[str, Any] = {"data": data} if data else {}
        if errors:
            out["errors"] = errors
        out["meta"] = meta
        return _json(out)

    async def timeline(request: Request, caller: Caller) -> Response:
        return page(request, caller, "timeline")

    async def mentions(request: Request, caller: Caller) -> Response:
        return page(request, caller, "mentions")

    # -- OAuth 2.0
    async def authorize(request: Request) -> Response:
        q = request.query_params
        app = state.apps.get(q.get("client_id", ""))
        if app is None:
            return _json({"error": "invalid_request", "error_description": "Missing or unknown client_id"}, 400)
        redirect_uri = q.get("redirect_uri", "")
        if redirect_uri not in app.redirect_uris:
            return _json({"error": "invalid_request", "error_description": "Invalid redirect_uri"}, 400)
        scopes = frozenset(q.get("scope", "").split())
        if q.get("response_type") != "code" or not q.get("code_challenge") or not scopes or not scopes <= SCOPES:
            return _json({"error": "invalid_request", "error_description": "Something went wrong: response_type, "
                          "scope and code_challenge are required"}, 400)
        method = q.get("code_challenge_method", "plain")
        if method not in ("S256", "plain"):
            return _json({"error": "invalid_request", "error_description": "code_challenge_method"}, 400)
        with state._lock:
            code = secrets.token_urlsafe(32)
            state.codes[code] = AuthCode(app.client_id, state.user_id(q.get("user") or state.authorizing_user),
                                         redirect_uri, q["code_challenge"], method, scopes,
                                         state._now + AUTH_CODE_SECONDS)
        sep = "&" if "?" in redirect_uri else "?"
        params = {"state": q["state"], "code": code} if "state" in q else {"code": code}
        return RedirectResponse(f"{redirect_uri}{sep}{urllib.parse.urlencode(params)}", status_code=302)

    def client_of(request: Request, form: dict[str, str]) -> tuple[ApiApp | None, dict[str, Any] | None]:
        auth = request.headers.get("authorization", "")
        if auth.startswith("Basic "):
            try:
                cid, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return None, {"error": "unauthorized_client", "error_description": "Missing valid authorization header"}
            app = state.apps.get(urllib.parse.unquote_plus(cid))
            if app is None or not hmac.compare_digest(app.client_secret, urllib.parse.unquote_plus(secret)):
                return None, {"error": "unauthorized_client", "error_description": "Missing valid authorization header"}
            return app, None
        app = state.apps.get(form.get("client_id", ""))
        if app is None or app.confidential:
            return None, {"error": "unauthorized_client", "error_description": "Missing valid authorization header"}
        return app, None

    async def token(request: Request) -> Response:
        form = dict(urllib.parse.parse_qsl((await request.body()).decode(errors="replace"), keep_blank_values=True))
        state.requests.append({"endpoint": "token", "method": "POST", "path": request.url.path, "body": form,
                               "authorization": request.headers.get("authorization", "")})
        fault = state.take_fault("token")
        if fault == "error":
            return _json(problem(state.fault_status, "Service Unavailable", "Service Unavailable"), state.fault_status)
        if fault == "drop":
            return _DropConnection(200)
        app, error = client_of(request, form)
        if app is None:
            return _json(error or {}, 401)
        grant = form.get("grant_type")
        with state._lock:
            if grant == "authorization_code":
                code = state.codes.get(form.get("code", ""))
                verifier = form.get("code_verifier", "")
                ok = (code is not None and not code.used and code.app == app.client_id and state._now < code.expires_at
                      and code.redirect_uri == form.get("redirect_uri")
                      and hmac.compare_digest(code.challenge, s256(verifier) if code.method == "S256" else verifier))
                if code is not None:
                    code.used = True  # a code serves once, even when the exchange fails
                if not ok or code is None:
                    return _json({"error": "invalid_request",
                                  "error_description": "Value passed for the authorization code was invalid."}, 400)
                return _json(state._token_response(app.client_id, code.user_id, code.scopes))
            if grant == "refresh_token":
                old = state.refresh.get(form.get("refresh_token", ""))
                if old is None or old.spent or old.app != app.client_id:
                    return _json({"error": "invalid_request",
                                  "error_description": "Value passed for the token was invalid."}, 400)
                old.spent = True  # rotation: the old refresh token never works again
                return _json(state._token_response(app.client_id, old.user_id, old.scopes))
            return _json({"error": "unsupported_grant_type",
                          "error_description": "grant_type must be authorization_code or refresh_token"}, 400)

    async def app_token(request: Request) -> Response:
        """``POST /oauth2/token`` ``grant_type=client_credentials`` with the consumer key/secret: an app-only
        bearer token."""
        form = dict(urllib.parse.parse_qsl((await request.body()).decode(errors="replace")))
        auth = request.headers.get("authorization", "")
        try:
            key, _, secret = base64.b64decode(auth[6:]).decode().partition(":") if auth.startswith("Basic ") else ("", "", "")
        except (ValueError, UnicodeDecodeError):
            key = secret = ""
        app = next((a for a in state.apps.values() if a.consumer_key == urllib.parse.unquote_plus(key)
                    and a.consumer_secret == urllib.parse.unquote_plus(secret)), None)
        if app is None or form.get("grant_type") != "client_credentials":
            return _json({"errors": [{"code": 99, "label": "authenticity_token_error",
                                      "message": "Unable to verify your credentials"}]}, 403)
        return _json({"token_type": "bearer", "access_token": app.bearer_token})

    async def get_state(request: Request) -> Response:
        return JSONResponse(state.snapshot())

    async def control(request: Request) -> Response:
        try:
            body = await request.json()
            if not isinstance(body, dict):
                raise TypeError("body must be a JSON object")
            return JSONResponse(state.apply_control(body))
        except (ValueError, KeyError, TypeError) as exc:
            return JSONResponse({"ok": False, "error": str(exc)}, status_code=400)

    async def tweets_collection(request: Request) -> Response:
        if request.method == "POST":
            return await create_ep(request)
        return await lookup_many_ep(request)

    create_ep = endpoint("create", create, app_only=False)
    lookup_many_ep = endpoint("lookup", lookup_many, app_only=True)
    app = Starlette(routes=[
        Route("/2/tweets", tweets_collection, methods=["GET", "POST"]),
        Route("/2/tweets/{id}", endpoint("lookup", lookup_one, app_only=True), methods=["GET"]),
        Route("/2/tweets/{id}", endpoint("delete", delete, app_only=False), methods=["DELETE"]),
        Route("/2/users/me", endpoint("me", me, app_only=False), methods=["GET"]),
        Route("/2/users/{id}/tweets", endpoint("timeline", timeline, app_only=True), methods=["GET"]),
        Route("/2/users/{id}/mentions", endpoint("mentions", mentions, app_only=True), methods=["GET"]),
        Route("/i/oauth2/authorize", authorize, methods=["GET"]),
        Route("/2/oauth2/token", token, methods=["POST"]),
        Route("/oauth2/token", app_token, methods=["POST"]),
        Route("/__state", get_state, methods=["GET"]),
        Route("/__control", control, methods=["POST"]),
    ])

    async def outer(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope["x_api_raw_send"] = send
        await app(scope, receive, send)

    return outer


# ------------------------------------------------------------------------------------------ the server


class XApi:
    """A running imitation: ``.base_url``, ``.state``, ``.stop()``; also a context manager."""

    def __init__(self, state: XApiState, server: uvicorn.Server, thread: threading.Thread, port: int) -> None:
        self.state = state
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        self._server = server
        self._thread = thread

    @property
    def authorize_url(self) -> str:
        return f"{self.base_url}/i/oauth2/authorize"

    @property
    def token_url(self) -> str:
        return f"{self.base_url}/2/oauth2/token"

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        if self._thread.is_alive():  # pragma: no cover - only if uvicorn hangs
            self._server.force_exit = True
            self._thread.join(timeout=10)

    def __enter__(self) -> XApi:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_x_api(*, port: int = 0, state: XApiState | None = None, **opts: Any) -> XApi:
    """Serve the imitation on 127.0.0.1 (a free port unless given) in a background thread; ``opts`` go to
    ``XApiState`` (users, start, limits, credits_usd)."""
    state = state or XApiState(**opts)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # accepted sockets inherit it: without, a two-write answer waits ~40 ms for the client's delayed ACK
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", port))
    bound = int(sock.getsockname()[1])
    for app in state.apps.values():  # the imitation's own callback is always registered
        app.redirect_uris = tuple(dict.fromkeys([*app.redirect_uris, f"http://127.0.0.1:{bound}/callback"]))
    config = uvicorn.Config(create_app(state), log_level="warning", access_log=False, lifespan="off",
                            timeout_graceful_shutdown=1, proxy_headers=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=f"x-api-{bound}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise RuntimeError("the X API imitation did not start")
        time.sleep(0.01)
    return XApi(state, server, thread, bound)


@contextmanager
def x_api(**opts: Any) -> Iterator[XApi]:
    """``with x_api() as x:`` — started, and stopped whatever happens."""
    handle = start_x_api(**opts)
    try:
        yield handle
    finally:
        handle.stop()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve the X API v2 imitation on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--users", default="alice,bob,carol", help="comma-separated accounts")
    parser.add_argument("--credits-usd", type=float, default=100.0)
    args = parser.parse_args(argv)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    handle = start_x_api(port=args.port, users=[u for u in args.users.split(",") if u], credits_usd=args.credits_usd)
    try:
        app = handle.state.app
        print(f"X API imitation at {handle.base_url} (client_id {app.client_id}, app bearer {app.bearer_token})",
              flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        handle.stop()


if __name__ == "__main__":
    main()
