"""One contract for every adapter of the `XAccount` port: the simulator (shadow mode) and the browser in a real
headless Chromium against the X imitation. A new publisher (the official API v2) joins by adding a fixture param.

What every adapter must do: a post's id is X's and reads back from the own timeline, the profile and a search
for its exact text; a reply names its parent; metrics are read for our own tweet and refused for another
author's; an empty text is refused before anything is sent; the submit hook runs once the post exists.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
import pytest_asyncio

from shared.x.browser import DEFAULT_CHROMIUM
from shared.x.factory import open_account
from shared.x.port import XAccount, XError, XPageMismatch
from shared.x.settings import XSettings
from tests.fakes.x_imitation import XImitation, start_x_imitation

pytestmark = pytest.mark.integration
HAVE_CHROMIUM = Path(DEFAULT_CHROMIUM).exists()


@pytest.fixture(scope="module")
def imitation() -> Iterator[XImitation]:
    handle = start_x_imitation(user="alice", users=("alice", "bob"))
    try:
        yield handle
    finally:
        handle.stop()


def settings(**env: str) -> XSettings:
    return XSettings.model_validate({"X_USERNAME": "alice", "X_DWELL_MIN_MS": 0, "X_DWELL_MAX_MS": 0, **env})


@pytest_asyncio.fixture(params=["simulator", "browser"], scope="module", loop_scope="session")
async def account(request: pytest.FixtureRequest, imitation: XImitation, tmp_path_factory: Any) -> AsyncIterator[XAccount]:
    if request.param == "simulator":
        x = await open_account(settings(), simulated=True, seed=3)
    else:
        if not HAVE_CHROMIUM:
            pytest.skip(f"browser adapter needs Chromium at {DEFAULT_CHROMIUM}")
        work = tmp_path_factory.mktemp("x-contract")
        s = settings(
            X_BASE_URL=imitation.base_url,
            X_SESSION_FILE=str(imitation.write_session(work / "session.json")),
            X_ARTIFACTS_DIR=str(work / "artifacts"),
            X_TIMEOUT_MS="5000",
        )
        x = await open_account(s, simulated=False)
    try:
        yield x
    finally:
        await x.close()


def unique(label: str) -> str:
    return f"{label} {uuid4().hex[:8]}: small changes ship faster"


async def test_a_post_reads_back_everywhere_with_xs_id(account: XAccount) -> None:
    text = unique("contract post")
    posted = await account.post(text)
    assert posted.tweet_id and posted.tweet_id in posted.url
    timeline = {t.tweet_id: t for t in await account.read_own_timeline(20)}
    assert timeline[posted.tweet_id].text == text and timeline[posted.tweet_id].author.lower() == "alice"
    profile = [t.tweet_id for t in await account.read_account_tweets(account.username, 20)]
    assert posted.tweet_id in profile
    found = await account.search(f'from:{account.username} "{text}"')
    assert [t.tweet_id for t in found] == [posted.tweet_id]


async def test_a_reply_names_its_parent(account: XAccount) -> None:
    parent = await account.post(unique("contract parent"))
    reply = await account.post(unique("contract reply"), in_reply_to=parent.tweet_id)
    timeline = {t.tweet_id: t for t in await account.read_own_timeline(20)}
    assert timeline[reply.tweet_id].in_reply_to == parent.tweet_id
    assert reply.tweet_id not in [t.tweet_id for t in await account.read_account_tweets(account.username, 20)]


async def test_metrics_are_ours_or_refused(account: XAccount) -> None:
    posted = await account.post(unique("contract metrics"))
    metrics = await account.read_status_metrics(posted.tweet_id, expected_author=account.username)
    assert metrics.tweet_id == posted.tweet_id and metrics.impressions >= 0
    with pytest.raises(XPageMismatch):
        await account.read_status_metrics(posted.tweet_id, expected_author="bob")


async def test_an_empty_text_is_refused_before_anything_is_sent(account: XAccount) -> None:
    before = len(await account.read_own_timeline(50))
    with pytest.raises(XError) as info:
        await account.post("   ")
    assert info.value.code == "empty_text"
    assert len(await account.read_own_timeline(50)) == before


async def test_the_submit_hook_runs_once_the_post_exists(account: XAccount) -> None:
    text = unique("contract hook")
    seen: list[bool] = []

    async def hook() -> None:
        seen.append(True)

    account.on_submitted = hook  # type: ignore[attr-defined]
    try:
        await account.post(text)
    finally:
        account.on_submitted = None  # type: ignore[attr-defined]
    assert seen == [True]
    assert await account.healthy() is True
