"""Pure parsing of what X shows and answers: counts, tweet ids, status links, GraphQL bodies.

No I/O here; the browser adapter hands in strings and gets typed values or classified errors back.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from shared.x.port import (
    TweetView,
    XAutomatedError,
    XDuplicate,
    XError,
    XLoggedOut,
    XRateLimited,
)

_TWEET_ID = re.compile(r"[1-9][0-9]{14,19}")
_SPACES = str.maketrans({"\u00a0": " ", "\u202f": " ", "\u2009": " "})
_COUNT = re.compile(r"([0-9][0-9.,' ]*?)\s*([A-Za-z]+\.?)?")
_MULTIPLIERS = {
    "k": Decimal(1_000),
    "mil": Decimal(1_000),  # es / pt: "12 mil"
    "tsd": Decimal(1_000),
    "m": Decimal(1_000_000),
    "mn": Decimal(1_000_000),
    "mio": Decimal(1_000_000),
    "b": Decimal(1_000_000_000),
    "bn": Decimal(1_000_000_000),
    "mrd": Decimal(1_000_000_000),
}
_STATUS_HREF = re.compile(r"(?:^|^https?://[^/]+)/([A-Za-z0-9_]{1,15})/status(?:es)?/([0-9]+)(?:[/?#]|$)")
_RESERVED_PATHS = frozenset({"i", "home", "search", "compose", "intent", "settings", "explore"})
_LABEL_NUMBER = re.compile(r"[0-9][0-9,.\u00a0\u202f']*")
_GROUP_PAIR = re.compile(r"([0-9][0-9,.\u00a0\u202f']*)\s+([A-Za-z]+)")
_GROUP_WORDS = {
    "reply": "replies",
    "replies": "replies",
    "repost": "retweets",
    "reposts": "retweets",
    "retweet": "retweets",
    "retweets": "retweets",
    "like": "likes",
    "likes": "likes",
    "bookmark": "bookmarks",
    "bookmarks": "bookmarks",
    "view": "impressions",
    "views": "impressions",
    "quote": "quotes",
    "quotes": "quotes",
}
_LOGGED_OUT_CODES = frozenset({32, 89, 215, 239, 353})
_RATE_LIMIT_CODES = frozenset({88, 429})


def is_valid_tweet_id(value: object) -> bool:
    """True for what X uses as a tweet id: a decimal string of 15 to 20 digits, no leading zero."""
    return isinstance(value, str) and _TWEET_ID.fullmatch(value) is not None


def parse_count(text: str) -> int:
    """Parse a count as X renders it: "1,234", "1.2K", "12.5K", "3,4 M", "2.1B", "" (zero).

    With a suffix the last separator is the decimal mark ("3,4 M" = 3 400 000); without one, a separator
    followed by exactly three digits groups thousands ("1,234", "1.234", "1 234"). Raises ValueError for
    text that is not a count.
    """
    s = text.translate(_SPACES).strip()
    if not s:
        return 0
    m = _COUNT.fullmatch(s)
    if m is None:
        raise ValueError(f"not a count: {text!r}")
    number, suffix = m.group(1).strip(), m.group(2)
    multiplier = Decimal(1)
    if suffix:
        key = suffix.rstrip(".").lower()
        if key not in _MULTIPLIERS:
            raise ValueError(f"unknown count suffix in {text!r}")
        multiplier = _MULTIPLIERS[key]
    digits = number.replace(" ", "").replace("'", "")
    last = max(digits.rfind("."), digits.rfind(","))
    if last == -1:
        whole, frac = digits, ""
    else:
        tail = digits[last + 1 :]
        head = digits[:last].replace(".", "").replace(",", "")
        if suffix and digits[last] in digits[:last]:
            raise ValueError(f"not a count: {text!r}")  # "1.2.3K": two decimal marks
        if suffix or len(tail) != 3:
            whole, frac = head, tail
        else:
            whole, frac = head + tail, ""
    if not whole.isdigit() or (frac and not frac.isdigit()):
        raise ValueError(f"not a count: {text!r}")
    try:
        value = Decimal(f"{whole}.{frac}" if frac else whole) * multiplier
    except InvalidOperation as exc:  # pragma: no cover - guarded by the checks above
        raise ValueError(f"not a count: {text!r}") from exc
    return int(value)


def parse_label_count(label: str | None) -> int | None:
    """The exact number in an aria-label like "1,234 Likes. Like"; None when the label has no number."""
    if not label:
        return None
    m = _LABEL_NUMBER.search(label)
    if m is None:
        return None
    try:
        return parse_count(m.group(0).rstrip(",.' \u00a0\u202f"))
    except ValueError:
        return None


def parse_group_label(label: str | None) -> dict[str, int]:
    """Counts from the action bar's label: "5 replies, 3 reposts, 1234 likes, 2 bookmarks, 20000 views"."""
    out: dict[str, int] = {}
    if not label:
        return out
    for number, word in _GROUP_PAIR.findall(label):
        key = _GROUP_WORDS.get(word.lower())
        if key is None or key in out:
            continue
        try:
            out[key] = parse_count(number.rstrip(",.' \u00a0\u202f"))
        except ValueError:
            continue
    return out


def parse_status_href(href: str | None) -> tuple[str, str] | None:
    """("alice", "1234...") from "/alice/status/1234..." or a full x.com status URL; None otherwise."""
    if not href:
        return None
    m = _STATUS_HREF.search(href)
    if m is None or m.group(1).lower() in _RESERVED_PATHS:
        return None
    return m.group(1), m.group(2)


def parse_iso_datetime(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def parse_x_datetime(value: str | None) -> datetime | None:
    """X's legacy created_at: "Wed Oct 10 20:19:24 +0000 2018"."""
    if not value:
        return None
    try:
        return datetime.strptime(value, "%a %b %d %H:%M:%S %z %Y")
    except ValueError:
        return parse_iso_datetime(value)


# ------------------------------------------------------------------------------------ GraphQL answers


def _error_codes(errors: Iterable[Any]) -> list[int]:
    codes: list[int] = []
    for err in errors:
        if not isinstance(err, Mapping):
            continue
        for raw in (err.get("code"), (err.get("extensions") or {}).get("code")):
            code = (
                raw if isinstance(raw, int) else int(raw) if isinstance(raw, str) and raw.isdigit() else None
            )
            if code is not None and code not in codes:
                codes.append(code)
    return codes


def classify_errors(errors: Iterable[Any], http_status: int, *, retry_after: float | None = None) -> XError:
    """Map X's `errors[]` (and the HTTP status) to the port's exception types."""
    errors = list(errors)
    codes = _error_codes(errors)
    messages = "; ".join(
        str(e.get("message", "")) for e in errors if isinstance(e, Mapping) and e.get("message")
    )
    detail = f"X answered HTTP {http_status}, codes {codes}: {messages}".strip()
    if 226 in codes:
        return XAutomatedError(detail, retry_after=retry_after)
    if http_status == 429 or _RATE_LIMIT_CODES.intersection(codes):
        return XRateLimited(detail, retry_after=retry_after)
    if 187 in codes:
        return XDuplicate(detail)
    if _LOGGED_OUT_CODES.intersection(codes) or http_status == 401:
        return XLoggedOut(detail)
    code = str(codes[0]) if codes else f"http_{http_status}"
    return XError(detail, code=code, retryable=http_status >= 500)


def _dig(doc: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(doc, Mapping):
            return None
        doc = doc.get(key)
    return doc


def read_create_tweet_answer(
    http_status: int, body: bytes | str | None, *, retry_after: float | None = None
) -> str | None:
    """The tweet id in X's answer to CreateTweet.

    Returns the id (validated) when X created the tweet; raises a classified `XError` when X clearly
    refused; returns None when the answer settles nothing (no body, a 5xx, no id): the post is in doubt.
    """
    if http_status == 429:
        raise classify_errors([], 429, retry_after=retry_after)
    doc: Any = None
    if body:
        try:
            doc = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            doc = None
    if isinstance(doc, Mapping):
        result = _dig(doc, "data", "create_tweet", "tweet_results", "result")
        rest_id = _dig(result, "rest_id") or _dig(result, "tweet", "rest_id")
        if is_valid_tweet_id(rest_id):
            return str(rest_id)
        errors = doc.get("errors")
        if isinstance(errors, list) and errors:
            raise classify_errors(errors, http_status, retry_after=retry_after)
    if http_status in (401, 403):
        raise XLoggedOut(f"X answered HTTP {http_status} to CreateTweet")
    if 400 <= http_status < 500 and http_status not in (408,):
        raise XError(f"X answered HTTP {http_status} to CreateTweet", code=f"http_{http_status}")
    return None


def _screen_name(result: Mapping[str, Any]) -> str | None:
    user = _dig(result, "core", "user_results", "result")
    name = _dig(user, "core", "screen_name") or _dig(user, "legacy", "screen_name")
    return name if isinstance(name, str) else None


def _tweet_from_result(result: Mapping[str, Any]) -> TweetView | None:
    legacy = result.get("legacy")
    rest_id = result.get("rest_id")
    if not isinstance(legacy, Mapping) or not is_valid_tweet_id(rest_id):
        return None
    author = _screen_name(result)
    text = _dig(result, "note_tweet", "note_tweet_results", "result", "text") or legacy.get("full_text")
    if author is None or not isinstance(text, str):
        return None
    reply_to = legacy.get("in_reply_to_status_id_str")
    return TweetView(
        tweet_id=str(rest_id),
        author=author,
        text=text,
        created_at=parse_x_datetime(legacy.get("created_at")),
        in_reply_to=reply_to if is_valid_tweet_id(reply_to) else None,
    )


def extract_graphql_tweets(doc: Any, *, max_nodes: int = 200_000) -> list[TweetView]:
    """Every tweet result (`{"rest_id", "legacy": {"full_text"...}, "core"...}`) anywhere in a GraphQL body.

    X nests tweets differently per timeline; walking the whole document keeps this robust. Order is
    document order, duplicates dropped; the walk is bounded by `max_nodes`.
    """
    out: list[TweetView] = []
    seen: set[str] = set()
    stack: list[Any] = [doc]
    visited = 0
    while stack and visited < max_nodes:
        node = stack.pop()
        visited += 1
        if isinstance(node, Mapping):
            if "rest_id" in node and "legacy" in node:
                tweet = _tweet_from_result(node)
                if tweet is not None and tweet.tweet_id not in seen:
                    seen.add(tweet.tweet_id)
                    out.append(tweet)
            stack.extend(reversed(list(node.values())))
        elif isinstance(node, list):
            stack.extend(reversed(node))
    return out


def retry_after_seconds(headers: Mapping[str, str], now_epoch: float) -> float | None:
    """Seconds to wait from `retry-after` or X's `x-rate-limit-reset` (epoch seconds) headers."""
    lowered = {k.lower(): v for k, v in headers.items()}
    raw = lowered.get("retry-after")
    if raw and raw.strip().isdigit():
        return float(raw.strip())
    reset = lowered.get("x-rate-limit-reset")
    if reset and reset.strip().isdigit():
        return max(0.0, float(reset.strip()) - now_epoch)
    return None


# ------------------------------------------------------------------------------------ scraped articles

COUNT_KEYS = ("impressions", "likes", "retweets", "replies", "bookmarks", "quotes")


def counts_from_article(raw: Mapping[str, Any]) -> dict[str, int]:
    """Counts of one scraped article.

    `raw` is what the in-page script returns: `{"counts": {key: {"label": aria-label, "text": shown}},
    "group": the action bar's aria-label}`. The exact number in an aria-label wins, then the action bar's
    label, then the shown text ("1.2K"); a count shown nowhere is 0.
    """
    group = parse_group_label(raw.get("group"))
    counts_raw = raw.get("counts") or {}
    out: dict[str, int] = {}
    for key in COUNT_KEYS:
        item = counts_raw.get(key) or {}
        value = parse_label_count(item.get("label"))
        if value is None:
            value = group.get(key)
        if value is None:
            try:
                value = parse_count(item.get("text") or "")
            except ValueError:
                value = 0
        out[key] = value
    return out


def tweet_from_article(
    raw: Mapping[str, Any], known: Mapping[str, TweetView] | None = None
) -> TweetView | None:
    """A `TweetView` from a scraped article, or None when it has no status link (ads, placeholders).

    The author and id come from the article's own status link; `known` (tweets seen in the page's
    GraphQL answers, by id) fills in what the DOM does not show: the replied-to id, a missing time.
    """
    parsed = parse_status_href(raw.get("href"))
    if parsed is None or not is_valid_tweet_id(parsed[1]):
        return None
    author, tweet_id = parsed
    extra = (known or {}).get(tweet_id)
    created = parse_iso_datetime(raw.get("datetime")) or (extra.created_at if extra else None)
    text = raw.get("text")
    if not isinstance(text, str):
        text = extra.text if extra else ""
    return TweetView(
        tweet_id=tweet_id,
        author=author,
        text=text,
        created_at=created,
        in_reply_to=extra.in_reply_to if extra else None,
    )
