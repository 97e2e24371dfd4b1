"""Pure parsing of X's counts, ids, links and answers."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.x.browser import PlaywrightX, fresh_profile_dir, load_session, normalize_session
from shared.x.parsing import (
    classify_errors,
    counts_from_article,
    extract_graphql_tweets,
    is_valid_tweet_id,
    parse_count,
    parse_group_label,
    parse_label_count,
    parse_status_href,
    parse_x_datetime,
    read_create_tweet_answer,
    retry_after_seconds,
    tweet_from_article,
)
from shared.x.port import (
    TweetView,
    XAccount,
    XAutomatedError,
    XDuplicate,
    XError,
    XLoggedOut,
    XPostInDoubt,
    XRateLimited,
)

pytestmark = pytest.mark.unit

ID = "1800001000008390224"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", 0),
        ("   ", 0),
        ("0", 0),
        ("7", 7),
        ("999", 999),
        ("1,234", 1_234),
        ("1.234", 1_234),
        ("1 234", 1_234),
        ("1\u00a0234", 1_234),
        ("12,345,678", 12_345_678),
        ("1.2K", 1_200),
        ("1.2k", 1_200),
        ("12.5K", 12_500),
        ("100K", 100_000),
        ("999.9K", 999_900),
        ("3,4 M", 3_400_000),
        ("3,4\u00a0M", 3_400_000),
        ("1.5M", 1_500_000),
        ("2.1B", 2_100_000_000),
        ("12 mil", 12_000),
        ("1,2 Mio.", 1_200_000),
        (" 42 ", 42),
    ],
)
def test_parse_count_reads_what_x_renders(text: str, expected: int) -> None:
    assert parse_count(text) == expected


@pytest.mark.parametrize("text", ["abc", "1.2X", "K", "--", "1.2.3.4K", "1e5"])
def test_parse_count_rejects_what_is_not_a_count(text: str) -> None:
    with pytest.raises(ValueError):
        parse_count(text)


@given(st.integers(min_value=0, max_value=10**12))
def test_parse_count_round_trips_grouped_integers(n: int) -> None:
    assert parse_count(f"{n:,}") == n
    assert parse_count(str(n)) == n


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("1800001000008390224", True),
        ("123456789012345", True),  # 15 digits
        ("12345678901234567890", True),  # 20 digits
        ("12345678901234", False),  # 14
        ("123456789012345678901", False),  # 21
        ("0800001000008390224", False),  # leading zero
        ("sim-0123456789abcdef0123", False),
        ("18000010000083902a4", False),
        (" 1800001000008390224", False),
        ("", False),
        (None, False),
        (1800001000008390224, False),  # ints are not ids: X's ids are strings
    ],
)
def test_is_valid_tweet_id(value: object, valid: bool) -> None:
    assert is_valid_tweet_id(value) is valid


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("1234 Likes. Like", 1234),
        ("1,234 Likes. Like", 1234),
        ("5 Replies. Reply", 5),
        ("20000 views. View post analytics", 20000),
        ("Reply", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_label_count(label: str | None, expected: int | None) -> None:
    assert parse_label_count(label) == expected


def test_parse_group_label_maps_x_words_to_metric_names() -> None:
    label = "5 replies, 3 reposts, 1,234 likes, 2 bookmarks, 20000 views"
    assert parse_group_label(label) == {
        "replies": 5,
        "retweets": 3,
        "likes": 1234,
        "bookmarks": 2,
        "impressions": 20000,
    }
    assert parse_group_label(None) == {}


@pytest.mark.parametrize(
    ("href", "expected"),
    [
        (f"/alice/status/{ID}", ("alice", ID)),
        (f"/alice/status/{ID}/analytics", ("alice", ID)),
        (f"https://x.com/Bob_1/status/{ID}?s=20", ("Bob_1", ID)),
        (f"/i/status/{ID}", None),  # X's user-less link: no author to check
        ("/alice", None),
        ("/alice/status/", None),
        (None, None),
    ],
)
def test_parse_status_href(href: str | None, expected: tuple[str, str] | None) -> None:
    assert parse_status_href(href) == expected


def _create_answer(rest_id: str) -> bytes:
    return json.dumps(
        {"data": {"create_tweet": {"tweet_results": {"result": {"rest_id": rest_id, "legacy": {}}}}}}
    ).encode()


def _errors(code: int) -> bytes:
    return json.dumps({"errors": [{"code": code, "message": f"boom ({code})"}], "data": {}}).encode()


def test_create_tweet_answer_gives_the_rest_id() -> None:
    assert read_create_tweet_answer(200, _create_answer(ID)) == ID


@pytest.mark.parametrize(
    ("status", "body", "error", "retryable"),
    [
        (200, _errors(226), XAutomatedError, True),
        (200, _errors(187), XDuplicate, False),
        (200, _errors(88), XRateLimited, True),
        (429, b"", XRateLimited, True),
        (429, b"not json", XRateLimited, True),
        (401, _errors(32), XLoggedOut, False),
        (403, _errors(353), XLoggedOut, False),
        (403, b"", XLoggedOut, False),
        (200, _errors(186), XError, False),
        (400, b"{}", XError, False),
    ],
)
def test_create_tweet_refusals_are_classified(status: int, body: bytes, error: type, retryable: bool) -> None:
    with pytest.raises(error) as info:
        read_create_tweet_answer(status, body)
    assert info.value.retryable is retryable
    assert info.value.in_doubt is False


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (200, b""),  # answer lost
        (200, b'{"data":{"create_tweet":{"tweet_results":{}}}}'),  # accepted, no result
        (200, _create_answer("sim-0123456789abcdef0123")),  # not an X id: never accepted
        (200, _create_answer("42")),
        (502, b"<html>bad gateway</html>"),
        (503, b""),
    ],
)
def test_create_tweet_answers_without_an_id_settle_nothing(status: int, body: bytes) -> None:
    assert read_create_tweet_answer(status, body) is None


def test_error_attributes_and_codes() -> None:
    err = classify_errors([{"code": 226, "extensions": {"code": 226}}], 200, retry_after=30.0)
    assert isinstance(err, XAutomatedError)
    assert (err.code, err.retryable, err.in_doubt, err.retry_after) == ("226", True, False, 30.0)
    assert "[226]" in err.message
    assert isinstance(classify_errors([], 429), XRateLimited)
    other = classify_errors([{"code": 64, "message": "suspended"}], 403)
    assert type(other) is XError and other.code == "64"
    doubt = XPostInDoubt("lost")
    assert (doubt.code, doubt.in_doubt, doubt.retryable) == ("in_doubt", True, False)
    assert issubclass(XPostInDoubt, XError)


def test_retry_after_from_headers() -> None:
    assert retry_after_seconds({"Retry-After": "12"}, 0) == 12.0
    assert retry_after_seconds({"x-rate-limit-reset": "1060"}, 1000.0) == 60.0
    assert retry_after_seconds({"x-rate-limit-reset": "900"}, 1000.0) == 0.0
    assert retry_after_seconds({}, 0) is None


def _graphql_tweet(rest_id: str, author: str, text: str, reply_to: str | None, modern: bool) -> dict:
    user = {"core": {"screen_name": author}} if modern else {"legacy": {"screen_name": author}}
    return {
        "rest_id": rest_id,
        "core": {"user_results": {"result": user}},
        "legacy": {
            "full_text": text,
            "created_at": "Wed Oct 10 20:19:24 +0000 2018",
            "in_reply_to_status_id_str": reply_to,
        },
    }


def test_extract_graphql_tweets_walks_any_nesting() -> None:
    parent = "1800001000004195404"
    doc = {
        "data": {
            "user": {
                "result": {
                    "timeline": {
                        "instructions": [
                            {
                                "entries": [
                                    {
                                        "content": {
                                            "items": [
                                                {"item": _graphql_tweet(parent, "bob", "p", None, True)}
                                            ]
                                        }
                                    },
                                    {
                                        "content": {
                                            "itemContent": _graphql_tweet(ID, "alice", "r", parent, False)
                                        }
                                    },
                                    {
                                        "content": {
                                            "itemContent": _graphql_tweet(ID, "alice", "r", parent, False)
                                        }
                                    },
                                    {
                                        "content": {
                                            "itemContent": {"rest_id": "sim-x", "legacy": {"full_text": "?"}}
                                        }
                                    },
                                ]
                            }
                        ]
                    }
                }
            }
        }
    }
    tweets = extract_graphql_tweets(doc)
    assert [(t.tweet_id, t.author, t.in_reply_to) for t in tweets] == [
        (parent, "bob", None),
        (ID, "alice", parent),
    ]
    assert tweets[0].created_at == datetime(2018, 10, 10, 20, 19, 24, tzinfo=UTC)


def test_parse_x_datetime() -> None:
    assert parse_x_datetime("Wed Oct 10 20:19:24 +0000 2018") == datetime(
        2018, 10, 10, 20, 19, 24, tzinfo=UTC
    )
    assert parse_x_datetime("2018-10-10T20:19:24.000Z") == datetime(2018, 10, 10, 20, 19, 24, tzinfo=UTC)
    assert parse_x_datetime("yesterday") is None


def test_counts_prefer_exact_labels_then_group_then_shown_text() -> None:
    raw = {
        "group": "5 replies, 3 reposts, 1234 likes, 2 bookmarks, 20000 views",
        "counts": {
            "likes": {"label": "1235 Likes. Like", "text": "1.2K"},  # label wins
            "replies": {"label": "Reply", "text": "5"},  # group wins over text
            "impressions": {"label": "View post analytics", "text": "20K"},
            "quotes": {"label": None, "text": "7"},  # only shown text
            "retweets": None,
        },
    }
    assert counts_from_article(raw) == {
        "impressions": 20000,
        "likes": 1235,
        "retweets": 3,
        "replies": 5,
        "bookmarks": 2,
        "quotes": 7,
    }
    shown_only = {"counts": {"likes": {"label": "Like", "text": "1.2K"}, "impressions": {"text": "3,4 M"}}}
    assert counts_from_article(shown_only)["likes"] == 1200
    assert counts_from_article(shown_only)["impressions"] == 3_400_000
    assert counts_from_article({})["likes"] == 0


def test_tweet_from_article_takes_author_and_id_from_the_status_link() -> None:
    known = {ID: TweetView(tweet_id=ID, author="alice", text="r", in_reply_to="1800001000004195404")}
    raw = {"href": f"/alice/status/{ID}", "datetime": "2024-06-01T12:00:00.000Z", "text": "hi 🚀"}
    view = tweet_from_article(raw, known)
    assert view == TweetView(
        tweet_id=ID,
        author="alice",
        text="hi 🚀",
        created_at=datetime(2024, 6, 1, 12, tzinfo=UTC),
        in_reply_to="1800001000004195404",
    )
    assert tweet_from_article({"href": "/alice"}) is None
    assert tweet_from_article({"href": None, "text": "promoted"}) is None


def _state(*names: str) -> dict:
    return {"cookies": [{"name": n, "value": f"v-{n}", "domain": ".x.com", "path": "/"} for n in names]}


def test_sessions_need_auth_token_and_ct0(tmp_path) -> None:
    assert {c["name"] for c in normalize_session(_state("auth_token", "ct0", "twid"))["cookies"]} == {
        "auth_token",
        "ct0",
        "twid",
    }
    with pytest.raises(XLoggedOut, match="ct0"):
        normalize_session(_state("auth_token"))
    with pytest.raises(XLoggedOut):
        normalize_session({"nope": 1})
    exported = [
        {
            "name": "auth_token",
            "value": "a",
            "domain": ".x.com",
            "sameSite": "no_restriction",
            "expirationDate": 2e9,
        },
        {"name": "ct0", "value": "c", "domain": ".x.com", "sameSite": "lax"},
    ]
    cookies = normalize_session(exported)["cookies"]
    assert [(c["sameSite"], c["expires"]) for c in cookies] == [("None", 2e9), ("Lax", -1.0)]


def test_load_session_prefers_the_refreshed_file_and_falls_back_to_b64(tmp_path) -> None:
    b64 = base64.b64encode(json.dumps(_state("auth_token", "ct0")).encode()).decode()
    missing = tmp_path / "none.json"
    assert load_session(missing, b64)["cookies"][0]["value"] == "v-auth_token"
    saved = tmp_path / "s.json"
    saved.write_text(
        json.dumps({"cookies": [{"name": "auth_token", "value": "new"}, {"name": "ct0", "value": "n"}]})
    )
    assert load_session(saved, b64)["cookies"][0]["value"] == "new"
    saved.write_text("{broken")
    assert load_session(saved, b64)["cookies"][0]["value"] == "v-auth_token"
    with pytest.raises(XLoggedOut, match="no usable X session"):
        load_session(missing, None)
    with pytest.raises(XLoggedOut):
        load_session(None, base64.b64encode(b'{"cookies": []}').decode())


async def test_playwright_adapter_checks_arguments_before_touching_a_browser() -> None:
    x = PlaywrightX(username="@alice", base_url="http://127.0.0.1:9", session_b64="")
    assert isinstance(x, XAccount)
    assert x.username == "alice"
    with pytest.raises(XError) as empty:
        await x.post("   ")
    assert empty.value.code == "empty_text"
    with pytest.raises(XError) as bad_target:
        await x.post("hi", in_reply_to="sim-0123456789abcdef0123")
    assert bad_target.value.code == "bad_reply_target"
    with pytest.raises(XError):
        await x.read_status_metrics("sim-0123456789abcdef0123", expected_author="alice")
    with pytest.raises(XLoggedOut):  # no session at all: refuses to start
        await x.read_own_timeline()


def test_fresh_profile_dirs_reap_those_of_dead_processes(tmp_path) -> None:
    import os
    import subprocess
    import sys

    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    stale = tmp_path / f"{int(dead.stdout)}-abc"
    (stale / "Default").mkdir(parents=True)
    alive = tmp_path / f"{os.getppid()}-keep"
    alive.mkdir()
    other = tmp_path / "not-a-profile"
    other.mkdir()
    fresh = fresh_profile_dir(tmp_path)
    assert fresh.is_dir() and fresh.name.startswith(f"{os.getpid()}-")
    assert not stale.exists() and alive.exists() and other.exists()
