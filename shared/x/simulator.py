"""`SimulatedX`: the `XAccount` port for shadow mode. Nothing here touches the network.

Ids look like `sim-<20 hex>` (a hash, never digits only), so `is_valid_tweet_id` rejects every one of
them and a simulated post can never be mistaken for a real one. Everything is deterministic: ids hash the
seed, the account, the text, the clock and a counter; invented candidate tweets (`search`,
`read_account_tweets`) are a function of (seed, query, time bucket). What "X" holds lives in a `SimStore`,
which a test can hand to a new `SimulatedX` to model a poster restart while X keeps its tweets.
"""

from __future__ import annotations

import hashlib
import inspect
import random
import re
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import msgspec

from shared.gates.text import normalize_for_hash
from shared.x.port import (
    Posted,
    TweetMetrics,
    TweetView,
    XError,
    XLoggedOut,
    XPageMismatch,
    XTimeout,
    XUnavailable,
)

SIM_PREFIX = "sim-"
MAX_TEXT = 280
DEFAULT_AUTHORS = (
    "devon_builds",
    "mlops_maria",
    "rustacean_raj",
    "cloud_kate",
    "data_dan",
    "infra_ines",
    "pm_priya",
    "sec_sam",
)
DEFAULT_TOPICS = (
    "observability",
    "postgres",
    "feature flags",
    "LLM evals",
    "on-call",
    "event sourcing",
    "kubernetes",
    "API design",
)
_TEMPLATES = (
    "Hot take: {topic} is mostly boring fundamentals. Timeouts, retries, good logs.",
    "Spent the weekend debugging {topic}. The fix was one line; finding it took six hours.",
    "What's your go-to resource for learning {topic}? Looking for something beyond the docs.",
    "{Topic} in production taught me one thing: measure first, optimize second.",
    "Unpopular opinion: most teams don't need {topic} yet. Ship the simple thing.",
    "Just shipped our first {topic} change behind a flag. Rollback plan ready, fingers crossed.",
    "If your {topic} setup needs a wiki page to explain, it's too complicated.",
    "Anyone else seeing weird latency with {topic} this week? Asking for a friend (me).",
    "The best {topic} advice I got: write the runbook before the incident, not during.",
    "Three years of {topic} and I still check the docs for the basics. That's fine.",
)
_OPERATOR = re.compile(r"^-?[a-z_]+:\S*$", re.IGNORECASE)
_PRE_CLICK_ERRORS = (XLoggedOut, XTimeout, XUnavailable)

MetricsFn = Callable[[str], "TweetMetrics | None | Awaitable[TweetMetrics | None]"]


def _utc_now() -> datetime:
    return datetime.now(UTC)


def sim_id(*parts: object) -> str:
    """`sim-` + 20 hex digits of a SHA-256 over the parts: stable across processes and machines."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode("utf-8")).hexdigest()
    return SIM_PREFIX + digest[:20]


def is_sim_id(value: object) -> bool:
    return isinstance(value, str) and re.fullmatch(r"sim-[0-9a-f]{20}", value) is not None


_QUOTED = re.compile(r'"([^"]*)"|(\S+)')


class SimStore:
    """What simulated X holds: tweets by id, newest last, and the post counter."""

    def __init__(self) -> None:
        self.tweets: dict[str, TweetView] = {}
        self.own: list[str] = []
        self.counter = 0


class SimulatedX:
    """Deterministic, in-memory stand-in for an X account."""

    def __init__(
        self,
        *,
        username: str = "xbot_shadow",
        seed: int = 0,
        now: Callable[[], datetime] | None = None,
        metrics_fn: MetricsFn | None = None,
        authors: tuple[str, ...] = DEFAULT_AUTHORS,
        bucket_minutes: int = 60,
        lookback_minutes: int = 180,
        store: SimStore | None = None,
        on_submitted: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        if bucket_minutes <= 0 or lookback_minutes < 0:
            raise ValueError("bucket_minutes must be > 0 and lookback_minutes >= 0")
        self._username = username.lstrip("@")
        self._seed = seed
        self._now = now or _utc_now
        #: runs right after a post is handed to X, before its answer (the crash matrix's TEST-ONLY hook)
        self.on_submitted = on_submitted
        self._metrics_fn = metrics_fn
        self._authors = tuple(a for a in authors if a.lower() != self._username.lower()) or DEFAULT_AUTHORS
        self._bucket = timedelta(minutes=bucket_minutes)
        self._lookback = lookback_minutes
        self.store = store or SimStore()
        self._failures: deque[tuple[str, XError, bool]] = deque()
        self._healthy = True
        self.closed = False

    @property
    def username(self) -> str:
        return self._username

    # ------------------------------------------------------------------------------------ test hooks

    def inject_failure(self, error: XError, *, op: str = "post", created: bool = False) -> None:
        """Make the next `op` call raise `error`. With `created=True` (post only) the tweet is stored
        first, as when X accepted it but the answer was lost (pair it with `XPostInDoubt`)."""
        self._failures.append((op, error, created))

    def set_healthy(self, healthy: bool) -> None:
        self._healthy = healthy

    def _take_failure(self, op: str) -> tuple[XError, bool] | None:
        for i, (kind, error, created) in enumerate(self._failures):
            if kind == op:
                del self._failures[i]
                return error, created
        return None

    def _check_open(self) -> None:
        if self.closed:
            raise XUnavailable("the simulated X account is closed")

    # ----------------------------------------------------------------------------------------- port

    async def start(self) -> None:
        self.closed = False

    async def save_session(self) -> None:
        return None

    async def post(self, text: str, *, in_reply_to: str | None = None) -> Posted:
        after_click = self.on_submitted
        self._check_open()
        if not text.strip():
            raise XError("refusing to post an empty text", code="empty_text")
        failure = self._take_failure("post")
        if failure is not None and isinstance(failure[0], _PRE_CLICK_ERRORS) and not failure[1]:
            raise failure[0]
        if failure is None and len(text) > MAX_TEXT:
            if after_click is not None:
                await after_click()
            raise XError("Tweet needs to be a bit shorter. (186)", code="186")
        tweet: TweetView | None = None
        if failure is None or failure[1]:
            tweet = self._store_post(text, in_reply_to)
        if after_click is not None:
            await after_click()
        if failure is not None:
            raise failure[0]
        assert tweet is not None
        return Posted(tweet_id=tweet.tweet_id, url=f"sim://x/{self._username}/status/{tweet.tweet_id}")

    def _store_post(self, text: str, in_reply_to: str | None) -> TweetView:
        store = self.store
        store.counter += 1
        created = self._now()
        tweet_id = sim_id(self._seed, self._username, text, in_reply_to, created.isoformat(), store.counter)
        tweet = TweetView(
            tweet_id=tweet_id, author=self._username, text=text, created_at=created, in_reply_to=in_reply_to
        )
        store.tweets[tweet_id] = tweet
        store.own.append(tweet_id)
        return tweet

    async def read_own_timeline(self, limit: int = 50) -> list[TweetView]:
        self._fail_if_injected("read_own_timeline")
        own = [self.store.tweets[i] for i in reversed(self.store.own)]
        return own[: max(0, limit)]

    async def read_status_metrics(self, tweet_id: str, *, expected_author: str) -> TweetMetrics:
        self._fail_if_injected("read_status_metrics")
        expected = expected_author.lstrip("@")
        tweet = self.store.tweets.get(tweet_id)
        if tweet is None:
            # Process-independent: an own simulated tweet from an earlier process is still ours.
            if not (is_sim_id(tweet_id) and expected.lower() == self._username.lower()):
                raise XUnavailable(f"simulated X has no tweet {tweet_id}")
            author = self._username
        else:
            author = tweet.author
        if author.lower() != expected.lower():
            raise XPageMismatch(f"tweet {tweet_id} is by @{author}, not @{expected}")
        if self._metrics_fn is None:
            return TweetMetrics(tweet_id=tweet_id, author=author)
        result = self._metrics_fn(tweet_id)
        if inspect.isawaitable(result):
            result = await result
        if result is None:
            raise XUnavailable(f"no simulated metrics for {tweet_id} yet")
        if result.tweet_id != tweet_id:
            raise XPageMismatch(f"metrics_fn answered for {result.tweet_id}, not {tweet_id}")
        return msgspec.structs.replace(result, author=author)

    async def read_account_tweets(self, username: str, limit: int = 20) -> list[TweetView]:
        self._fail_if_injected("read_account_tweets")
        name = username.lstrip("@")
        if name.lower() == self._username.lower():
            # the profile, like X's: our posts, not our replies (those are on .../with_replies)
            own = [self.store.tweets[i] for i in reversed(self.store.own)]
            return [t for t in own if t.in_reply_to is None][: max(0, limit)]
        return self._invent("account", name, limit, authors=(name,), topics=DEFAULT_TOPICS)

    async def search(self, query: str, limit: int = 20) -> list[TweetView]:
        self._fail_if_injected("search")
        words = query.split()
        from_users = [w[5:] for w in words if w.lower().startswith("from:") and len(w) > 5]
        if [u.lower() for u in from_users] == [self._username.lower()]:
            # our own account: its real (simulated) tweets, matched like X's phrase search
            terms = [t for t in _QUOTED.findall(query) if t[0] or not t[1].lower().startswith("from:")]
            wanted = [normalize_for_hash(a or b) for a, b in terms]
            own = [self.store.tweets[i] for i in reversed(self.store.own)]
            hits = [t for t in own if all(w in normalize_for_hash(t.text) for w in wanted)]
            return hits[: max(0, limit)]
        topic = " ".join(w for w in words if not _OPERATOR.match(w)).strip().strip('"')
        authors = tuple(from_users) if from_users else self._authors
        topics = (topic,) if topic else DEFAULT_TOPICS
        return self._invent("search", query.strip().lower(), limit, authors=authors, topics=topics)

    async def healthy(self) -> bool:
        return self._healthy and not self.closed

    async def close(self) -> None:
        self.closed = True

    # ------------------------------------------------------------------------------------- internals

    def _fail_if_injected(self, op: str) -> None:
        self._check_open()
        failure = self._take_failure(op)
        if failure is not None:
            raise failure[0]

    def _invent(
        self, kind: str, key: str, limit: int, *, authors: tuple[str, ...], topics: tuple[str, ...]
    ) -> list[TweetView]:
        """`limit` plausible tweets, a pure function of (seed, kind, key, time bucket)."""
        now = self._now()
        bucket_s = self._bucket.total_seconds()
        bucket = int(now.timestamp() // bucket_s)
        bucket_start = datetime.fromtimestamp(bucket * bucket_s, tz=UTC)
        seed_bytes = hashlib.sha256(f"{self._seed}|{kind}|{key}|{bucket}".encode()).digest()
        rng = random.Random(int.from_bytes(seed_bytes[:8], "big"))
        out: list[TweetView] = []
        for i in range(max(0, limit)):
            author = authors[rng.randrange(len(authors))]
            topic = topics[rng.randrange(len(topics))]
            text = _TEMPLATES[rng.randrange(len(_TEMPLATES))].format(
                topic=topic, Topic=topic[:1].upper() + topic[1:]
            )
            created = bucket_start - timedelta(minutes=rng.uniform(0, self._lookback))
            tweet = TweetView(
                tweet_id=sim_id(self._seed, kind, key, bucket, i),
                author=author,
                text=text,
                created_at=created,
            )
            self.store.tweets.setdefault(tweet.tweet_id, tweet)
            out.append(tweet)
        out.sort(key=lambda t: t.created_at or bucket_start, reverse=True)
        return out
