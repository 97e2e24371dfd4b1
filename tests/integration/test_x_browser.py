"""`PlaywrightX` in a real headless Chromium against the local X imitation.

One imitation and one browser for the whole module; each test resets the imitation's failure mode.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from uuid import uuid4

import httpx
import pytest
import pytest_asyncio

from shared.x.browser import DEFAULT_CHROMIUM, PlaywrightX
from shared.x.parsing import is_valid_tweet_id
from shared.x.port import (
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
from tests.fakes.x_imitation import ImitationClient, XImitation, start_x_imitation

pytestmark = pytest.mark.integration
HAVE_CHROMIUM = Path(DEFAULT_CHROMIUM).exists()
needs_chromium = pytest.mark.skipif(
    not HAVE_CHROMIUM, reason=f"browser tests need Chromium at {DEFAULT_CHROMIUM}"
)
REPO = Path(__file__).resolve().parents[2]
TIMEOUT_MS = 3_000


def unique(prefix: str) -> str:
    return f"{prefix} {uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def imitation() -> Iterator[XImitation]:
    handle = start_x_imitation(user="alice", users=("alice", "bob", "carol", "dora"))
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("x-browser")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def x(imitation: XImitation, workdir: Path) -> AsyncIterator[PlaywrightX]:
    if not HAVE_CHROMIUM:
        pytest.skip(f"browser tests need Chromium at {DEFAULT_CHROMIUM}")
    adapter = PlaywrightX(
        username="alice",
        base_url=imitation.base_url,
        session_file=workdir / "session.json",
        session_b64=imitation.session_b64("alice"),
        artifacts_dir=workdir / "artifacts",
        dwell_ms=(0, 0),
        timeout_ms=TIMEOUT_MS,
        post_id_grace_ms=800,
        scroll_wait_ms=1_500,
    )
    await adapter.start()
    try:
        yield adapter
    finally:
        await adapter.close()


@pytest.fixture(autouse=True)
def clean_mode(imitation: XImitation) -> Iterator[None]:
    imitation.state.clear_mode()
    imitation.state.set_page_mode(None)
    imitation.state.aria_counts = True
    yield
    imitation.state.clear_mode()
    imitation.state.set_page_mode(None)
    imitation.state.aria_counts = True


def artifacts_of(err: XError) -> set[str]:
    return {Path(p).suffix for p in err.artifacts if Path(p).is_file() and Path(p).stat().st_size > 0}


# ------------------------------------------------------------------------------------------- posting


@needs_chromium
async def test_post_returns_the_id_x_assigned(x: PlaywrightX, imitation: XImitation) -> None:
    text = unique("hello from the adapter 🚀")
    posted = await x.post(text)
    assert is_valid_tweet_id(posted.tweet_id)
    stored = imitation.state.get(posted.tweet_id)
    assert stored is not None and stored.text == text and stored.author == "alice"
    assert imitation.state.count_text(text) == 1
    assert posted.url == f"{imitation.base_url}/alice/status/{posted.tweet_id}"


@needs_chromium
async def test_reply_links_to_its_parent(x: PlaywrightX, imitation: XImitation) -> None:
    parent = imitation.state.add_tweet("bob", unique("a question from bob"))
    text = unique("an answer")
    posted = await x.post(text, in_reply_to=parent)
    stored = imitation.state.get(posted.tweet_id)
    assert stored is not None and stored.in_reply_to == parent and stored.text == text
    assert posted.tweet_id != parent


@needs_chromium
async def test_reply_to_a_missing_tweet_is_refused_before_any_click(
    x: PlaywrightX, imitation: XImitation
) -> None:
    before = imitation.state.create_requests
    with pytest.raises(XUnavailable):
        await x.post(unique("into the void"), in_reply_to="1899999999999999999")
    assert imitation.state.create_requests == before


@needs_chromium
async def test_on_submitted_hook_runs_once_the_post_is_submitted(
    x: PlaywrightX, imitation: XImitation
) -> None:
    """The crash matrix kills the poster in this hook: X has the tweet, the poster has no id."""
    text = unique("crash right after the click")

    class Crash(Exception):
        pass

    async def crash() -> None:
        for _ in range(100):  # bounded: the click has submitted the post to X
            if imitation.state.count_text(text) == 1:
                raise Crash
            await asyncio.sleep(0.02)

    x.on_submitted = crash
    try:
        with pytest.raises(Crash):
            await x.post(text)
    finally:
        x.on_submitted = None
    assert imitation.state.count_text(text) == 1
    timeline = await x.read_own_timeline(limit=10)
    assert [t.text for t in timeline].count(text) == 1


@needs_chromium
@pytest.mark.parametrize(
    ("mode", "error", "retryable"),
    [("226", XAutomatedError, True), ("429", XRateLimited, True), ("187", XDuplicate, False)],
)
async def test_refusals_are_classified_and_nothing_is_made_up(
    x: PlaywrightX, imitation: XImitation, mode: str, error: type[XError], retryable: bool
) -> None:
    text = unique(f"refused {mode}")
    imitation.state.set_mode(mode, times=1)
    with pytest.raises(error) as info:
        await x.post(text)
    assert info.value.code == mode
    assert info.value.retryable is retryable and info.value.in_doubt is False
    assert imitation.state.count_text(text) == 0
    assert {".png", ".html", ".json"} <= artifacts_of(info.value)
    if mode == "429":
        assert info.value.retry_after is not None and 0 < info.value.retry_after <= 61
    # the mode was used up: the same post now goes through
    assert imitation.state.get((await x.post(text)).tweet_id) is not None


@needs_chromium
async def test_dropped_answer_is_in_doubt_and_the_timeline_finds_the_tweet(
    x: PlaywrightX, imitation: XImitation
) -> None:
    text = unique("accepted, answer lost")
    imitation.state.set_mode("drop_after_accept", times=1)
    with pytest.raises(XPostInDoubt) as info:
        await x.post(text)
    assert info.value.in_doubt is True and info.value.retryable is False
    assert {".png", ".html"} <= artifacts_of(info.value)
    created = imitation.state.tweets_with_text(text)
    assert len(created) == 1
    timeline = await x.read_own_timeline(limit=20)
    assert [t.tweet_id for t in timeline if t.text == text] == [created[0].tweet_id]


@needs_chromium
async def test_slow_answer_after_the_click_is_in_doubt(x: PlaywrightX, imitation: XImitation) -> None:
    text = unique("slow to answer")
    imitation.state.set_mode(slow=TIMEOUT_MS / 1000 + 1.5, slow_on="create")
    with pytest.raises(XPostInDoubt):
        await x.post(text)
    assert imitation.state.count_text(text) == 1


@needs_chromium
async def test_slow_pages_time_out_before_anything_is_submitted(
    x: PlaywrightX, imitation: XImitation
) -> None:
    text = unique("never submitted")
    imitation.state.set_mode(slow=TIMEOUT_MS / 1000 + 1.0, slow_on="pages")
    before = imitation.state.create_requests
    with pytest.raises(XTimeout) as info:
        await x.post(text)
    assert info.value.in_doubt is False and info.value.retryable is True
    assert imitation.state.create_requests == before and imitation.state.count_text(text) == 0


@needs_chromium
async def test_logged_out_session_is_reported(x: PlaywrightX, imitation: XImitation) -> None:
    imitation.state.set_mode("logged_out")
    text = unique("logged out")
    with pytest.raises(XLoggedOut) as info:
        await x.post(text)
    assert {".png", ".html"} <= artifacts_of(info.value)
    with pytest.raises(XLoggedOut):
        await x.read_own_timeline()
    assert await x.healthy() is False
    assert imitation.state.count_text(text) == 0
    imitation.state.clear_mode()
    assert await x.healthy() is True


@needs_chromium
async def test_rate_limited_reads_are_classified(x: PlaywrightX, imitation: XImitation) -> None:
    imitation.state.set_mode("429")
    with pytest.raises(XRateLimited):
        await x.read_own_timeline()


# ------------------------------------------------------------------------------------------- reading


@needs_chromium
async def test_read_own_timeline_has_posts_and_replies_newest_first(
    x: PlaywrightX, imitation: XImitation
) -> None:
    parent = imitation.state.add_tweet("bob", unique("bob's thread"))
    first = await x.post(unique("timeline one"))
    reply = await x.post(unique("timeline reply"), in_reply_to=parent)
    timeline = await x.read_own_timeline(limit=50)
    ids = [t.tweet_id for t in timeline]
    assert ids.index(reply.tweet_id) < ids.index(first.tweet_id)
    assert parent not in ids  # bob's tweet shown above the reply is not ours
    assert {t.author for t in timeline} == {"alice"}
    by_id = {t.tweet_id: t for t in timeline}
    assert by_id[reply.tweet_id].in_reply_to == parent
    assert by_id[first.tweet_id].in_reply_to is None
    assert by_id[first.tweet_id].created_at is not None
    assert len(await x.read_own_timeline(limit=1)) == 1


@needs_chromium
async def test_account_tweets_scroll_for_more(x: PlaywrightX, imitation: XImitation) -> None:
    texts = [f"carol {i:02d}" for i in range(30)]
    for text in texts:
        imitation.state.add_tweet("carol", text)
    tweets = await x.read_account_tweets("carol", limit=25)
    assert len(tweets) == 25 and len({t.tweet_id for t in tweets}) == 25
    assert {t.author for t in tweets} == {"carol"}
    assert all(t.text in texts for t in tweets)
    assert await x.read_account_tweets("dora") == []
    with pytest.raises(XUnavailable):
        await x.read_account_tweets("nobody_here")


@needs_chromium
async def test_search_finds_tweets_by_text(x: PlaywrightX, imitation: XImitation) -> None:
    word = uuid4().hex[:10]
    tid = imitation.state.add_tweet("bob", f"talking about {word} today")
    found = await x.search(word)
    assert [(t.tweet_id, t.author) for t in found] == [(tid, "bob")]
    assert await x.search(uuid4().hex) == []


@needs_chromium
async def test_an_empty_search_answers_at_once_without_a_failure(x: PlaywrightX, imitation: XImitation) -> None:
    """X's empty-state markup (``empty_state_header_text``) settles the page: no 30 s wait, no artifacts."""
    started = time.monotonic()
    assert await x.search(f"nothing matches {uuid4().hex}") == []
    assert time.monotonic() - started < TIMEOUT_MS / 1000  # the timeout would have raised XTimeout anyway


@needs_chromium
async def test_search_of_our_own_exact_text(x: PlaywrightX, imitation: XImitation) -> None:
    text = unique("an exact phrase, with punctuation!")
    mine = imitation.state.add_tweet("alice", text)
    imitation.state.add_tweet("bob", text)
    found = await x.search(f'from:alice "{text}"')
    assert [t.tweet_id for t in found] == [mine]


@needs_chromium
@pytest.mark.parametrize(
    ("mode", "error"),
    [("error_page", XUnreadable), ("odd_markup", XTimeout), ("blank", XTimeout), ("login_wall", XLoggedOut)],
)
async def test_a_timeline_that_cannot_be_read_is_never_empty(
    x: PlaywrightX, imitation: XImitation, mode: str, error: type[XError]
) -> None:
    """Fail closed: X's error page, unknown markup, a page that never settles or a login wall raise; only X's
    own "hasn't posted" / "no results" state reads as empty."""
    imitation.state.add_tweet("alice", unique("on the timeline"))
    imitation.state.set_page_mode(mode)
    reads = [x.read_own_timeline, lambda: x.read_account_tweets("alice"), lambda: x.search("from:alice")]
    for read in reads if error in (XUnreadable, XLoggedOut) else reads[:1]:  # a timeout costs TIMEOUT_MS
        with pytest.raises(error):
            await read()
    imitation.state.set_page_mode(None)
    assert await x.read_own_timeline()


@needs_chromium
async def test_status_metrics_are_read_exactly(x: PlaywrightX, imitation: XImitation) -> None:
    tid = imitation.state.add_tweet(
        "alice",
        unique("measured"),
        metrics={
            "impressions": 20_345,
            "likes": 1_234,
            "retweets": 3,
            "replies": 5,
            "bookmarks": 2,
            "quotes": 7,
        },
    )
    m = await x.read_status_metrics(tid, expected_author="alice")
    assert (m.tweet_id, m.author) == (tid, "alice")
    assert (m.impressions, m.likes, m.retweets, m.replies, m.bookmarks, m.quotes) == (
        20_345,
        1_234,
        3,
        5,
        2,
        7,
    )
    imitation.state.set_metrics(tid, likes=1_299)
    assert (await x.read_status_metrics(tid, expected_author="alice")).likes == 1_299


@needs_chromium
async def test_status_metrics_fall_back_to_shown_counts(x: PlaywrightX, imitation: XImitation) -> None:
    tid = imitation.state.add_tweet(
        "alice", unique("rounded"), metrics={"impressions": 12_560, "likes": 1_234}
    )
    imitation.state.aria_counts = False  # X shows only "12.5K" and "1.2K"
    m = await x.read_status_metrics(tid, expected_author="alice")
    assert (m.impressions, m.likes, m.replies) == (12_500, 1_200, 0)


@needs_chromium
async def test_another_accounts_status_is_a_mismatch(x: PlaywrightX, imitation: XImitation) -> None:
    tid = imitation.state.add_tweet("bob", unique("bob's, not alice's"), metrics={"likes": 99})
    with pytest.raises(XPageMismatch) as info:
        await x.read_status_metrics(tid, expected_author="alice")
    assert {".png", ".html"} <= artifacts_of(info.value)


@needs_chromium
async def test_missing_tweet_is_unavailable(x: PlaywrightX) -> None:
    with pytest.raises(XUnavailable):
        await x.read_status_metrics("1899999999999999999", expected_author="alice")


@needs_chromium
async def test_session_is_saved_refreshed_and_private(x: PlaywrightX, workdir: Path) -> None:
    assert await x.healthy()
    path = await x.save_session()
    assert path == workdir / "session.json"
    state = json.loads(path.read_text())
    names = {c["name"] for c in state["cookies"]}
    assert {"auth_token", "ct0", "twid"} <= names  # twid was set by X after login
    assert os.stat(path).st_mode & 0o777 == 0o600


@needs_chromium
async def test_a_session_without_cookies_never_starts(imitation: XImitation, workdir: Path) -> None:
    bare = workdir / "bare.json"
    bare.write_text(json.dumps({"cookies": [], "origins": []}))
    adapter = PlaywrightX(username="alice", base_url=imitation.base_url, session_file=bare, dwell_ms=(0, 0))
    try:
        with pytest.raises(XLoggedOut):
            await adapter.start()
    finally:
        await adapter.close()


# ------------------------------------------------------------------------------- the imitation itself


def test_imitation_is_steerable_over_http(imitation: XImitation) -> None:
    client = ImitationClient(imitation.base_url)
    added = client.control(add_tweet={"author": "bob", "text": "over http", "metrics": {"likes": 3}})["added"]
    assert is_valid_tweet_id(added) and added.startswith("18")
    assert client.count_text("over http", author="bob") == 1
    client.control(mode="226", times=2)
    assert (imitation.state.mode, imitation.state.times) == ("226", 2)
    client.control(mode=None)
    assert imitation.state.mode is None
    assert httpx.post(f"{imitation.base_url}/__control", json={"mode": "nope"}).status_code == 400
    assert (
        httpx.get(f"{imitation.base_url}/home", follow_redirects=False)
        .headers["location"]
        .startswith("/i/flow/login")
    )


def test_imitation_runs_standalone(tmp_path: Path) -> None:
    session = tmp_path / "alice.json"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.fakes.x_imitation",
            "--port",
            "0",
            "--user",
            "alice",
            "--session-out",
            str(session),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:\d+", line)
        assert match, line
        state = ImitationClient(match.group(0)).state()
        assert state["users"][0] == "alice" and state["tweets"] == []
        cookies = {c["name"] for c in json.loads(session.read_text())["cookies"]}
        assert cookies == {"auth_token", "ct0"}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    assert proc.returncode is not None


def test_main_user_is_always_an_account_and_stop_is_quick() -> None:
    started = time.monotonic()
    with start_x_imitation(user="zed", users=()) as handle:
        assert handle.username == "zed" and handle.state.users == ("zed",)
    assert time.monotonic() - started < 10
