"""`PlaywrightX`: the `XAccount` port driven through a real Chromium against x.com (or an imitation of it).

One persistent browser context for the adapter's life; one page per operation, operations one at a time.
A post's tweet id is read back from X's CreateTweet answer, else from the status link X shows after
posting; when neither is available after the click, the post is in doubt (`XPostInDoubt`), never guessed.
Every failure leaves a screenshot and the page's HTML in `artifacts_dir`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import os
import random
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar, cast
from urllib.parse import quote, urlparse

import structlog
from playwright.async_api import BrowserContext, Page, Playwright, Request, Response, async_playwright
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from shared.x import selectors as sel
from shared.x.parsing import (
    classify_errors,
    counts_from_article,
    extract_graphql_tweets,
    is_valid_tweet_id,
    parse_status_href,
    read_create_tweet_answer,
    retry_after_seconds,
    tweet_from_article,
)
from shared.x.port import (
    Posted,
    TweetMetrics,
    TweetView,
    XError,
    XLoggedOut,
    XPageMismatch,
    XPostInDoubt,
    XRateLimited,
    XTimeout,
    XUnavailable,
    XUnreadable,
)

T = TypeVar("T")
log = structlog.get_logger(__name__)

DEFAULT_CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)
SESSION_COOKIES = ("auth_token", "ct0")
_SAME_SITE = {"lax": "Lax", "strict": "Strict", "none": "None", "no_restriction": "None"}

# Runs in the page: one plain object per tweet article (see parsing.counts_from_article for the shape).
_ARTICLES_JS = """
(sel) => Array.from(document.querySelectorAll(sel.tweet)).map((a) => {
  const textOf = (node) => {
    if (!node) return null;
    let out = "";
    const walk = (n) => {
      for (const c of n.childNodes) {
        if (c.nodeType === 3) out += c.textContent;
        else if (c.nodeName === "IMG") out += c.getAttribute("alt") || "";
        else if (c.nodeName === "BR") out += "\\n";
        else walk(c);
      }
    };
    walk(node);
    return out;
  };
  const count = (s) => {
    const n = a.querySelector(s);
    if (!n) return null;
    const shown = n.querySelector('[data-testid="app-text-transition-container"]') || n.querySelector("span");
    return { label: n.getAttribute("aria-label"), text: shown ? shown.innerText.trim() : "" };
  };
  const link = a.querySelector(sel.time_link);
  const time = link ? link.querySelector("time") : a.querySelector("time");
  const group = a.querySelector(sel.group);
  return {
    href: link ? link.getAttribute("href") : null,
    datetime: time ? time.getAttribute("datetime") : null,
    text: textOf(a.querySelector(sel.text)),
    group: group ? group.getAttribute("aria-label") : null,
    counts: {
      replies: count(sel.reply), retweets: count(sel.retweet), likes: count(sel.like),
      bookmarks: count(sel.bookmark), impressions: count(sel.views), quotes: count(sel.quotes),
    },
  };
})
"""

_SIGNATURE_JS = """
(tweetSel) => {
  const all = document.querySelectorAll(tweetSel);
  const last = all.length ? all[all.length - 1].querySelector('a[href*="/status/"]') : null;
  return all.length + "|" + (last ? last.getAttribute("href") : "") + "|" + document.body.scrollHeight;
}
"""


# ---------------------------------------------------------------------------------------------- session


def normalize_session(data: Any) -> dict[str, Any]:
    """A Playwright storage_state from a storage_state dict or a bare cookie list (browser exports).

    Raises `XLoggedOut` unless it carries non-empty `auth_token` and `ct0` cookies.
    """
    if isinstance(data, list):
        data = {"cookies": data, "origins": []}
    if not isinstance(data, Mapping) or not isinstance(data.get("cookies"), list):
        raise XLoggedOut("the X session is not a storage_state (no cookies list)")
    cookies = []
    for raw in data["cookies"]:
        if not isinstance(raw, Mapping) or not raw.get("name") or "value" not in raw:
            continue
        cookie = {
            "name": str(raw["name"]),
            "value": str(raw["value"]),
            "domain": str(raw.get("domain") or ".x.com"),
            "path": str(raw.get("path") or "/"),
            "expires": float(raw.get("expires", raw.get("expirationDate", -1)) or -1),
            "httpOnly": bool(raw.get("httpOnly", False)),
            "secure": bool(raw.get("secure", False)),
            "sameSite": _SAME_SITE.get(str(raw.get("sameSite") or "lax").lower(), "Lax"),
        }
        cookies.append(cookie)
    names = {c["name"] for c in cookies if c["value"]}
    missing = [n for n in SESSION_COOKIES if n not in names]
    if missing:
        raise XLoggedOut(f"the X session has no {', '.join(missing)} cookie")
    origins = data.get("origins") if isinstance(data.get("origins"), list) else []
    return {"cookies": cookies, "origins": origins}


def load_session(session_file: Path | None, session_b64: str | None) -> dict[str, Any]:
    """The session to start with: the (refreshed) session file when it holds one, else `session_b64`."""
    problems: list[str] = []
    if session_file is not None and session_file.is_file():
        try:
            return normalize_session(json.loads(session_file.read_text(encoding="utf-8")))
        except (ValueError, XLoggedOut) as exc:
            problems.append(f"{session_file}: {exc}")
    if session_b64:
        try:
            return normalize_session(json.loads(base64.b64decode(session_b64, validate=False)))
        except (ValueError, binascii.Error, XLoggedOut) as exc:
            problems.append(f"session_b64: {exc}")
    if not problems:
        problems.append("no session_file with a session and no session_b64")
    raise XLoggedOut("no usable X session: " + "; ".join(problems))


def _write_files(files: Mapping[str, str]) -> None:
    for path, text in files.items():
        Path(path).write_text(text, encoding="utf-8")


def _write_private(path: Path, text: str) -> None:
    """Atomically replace `path` with `text`, readable by the owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def fresh_profile_dir(parent: Path | None = None) -> Path:
    """A new temporary Chromium profile dir `<parent>/<pid>-<random>`.

    Profiles of processes that died without closing (a crash, SIGKILL) are removed on the way.
    """
    parent = parent or Path(tempfile.gettempdir()) / "xbot-chromium"
    parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    for child in parent.iterdir():
        pid_text = child.name.split("-", 1)[0]
        if (
            child.is_dir()
            and pid_text.isdigit()
            and int(pid_text) != os.getpid()
            and not _pid_alive(int(pid_text))
        ):
            shutil.rmtree(child, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-", dir=parent))


# ------------------------------------------------------------------------------------ page observers


class _ApiWatcher:
    """Records the page's GraphQL answers: statuses (to classify failures) and the tweets they carry."""

    def __init__(self, page: Page) -> None:
        self.statuses: list[tuple[str, int, dict[str, str]]] = []
        self.tweets: dict[str, TweetView] = {}
        self.inflight = 0
        self.last_activity = time.monotonic()
        self._tasks: set[asyncio.Task[None]] = set()
        page.on("request", self._on_request)
        page.on("requestfinished", self._on_done)
        page.on("requestfailed", self._on_done)
        page.on("response", self._on_response)

    @staticmethod
    def _is_api(url: str) -> bool:
        return sel.GRAPHQL_MARKER in url

    def _on_request(self, request: Request) -> None:
        if self._is_api(request.url):
            self.inflight += 1
            self.last_activity = time.monotonic()

    def _on_done(self, request: Request) -> None:
        if self._is_api(request.url):
            self.inflight = max(0, self.inflight - 1)
            self.last_activity = time.monotonic()

    def _on_response(self, response: Response) -> None:
        if not self._is_api(response.url):
            return
        self.statuses.append((response.url, response.status, dict(response.headers)))
        if response.status == 200 and any(op in response.url for op in sel.TIMELINE_OPERATIONS):
            task = asyncio.ensure_future(self._read(response))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _read(self, response: Response) -> None:
        try:
            doc = json.loads(await response.body())
        except (PlaywrightError, ValueError):
            return
        for tweet in extract_graphql_tweets(doc):
            self.tweets.setdefault(tweet.tweet_id, tweet)

    async def drain(self, timeout_s: float = 2.0) -> None:
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout_s)

    def failure(self) -> XError | None:
        """The error X's answers on this page amount to, if any (rate limit, logged out)."""
        for _url, status, headers in self.statuses:
            if status == 429:
                return XRateLimited(
                    "X answered HTTP 429 to a page request",
                    retry_after=retry_after_seconds(headers, time.time()),
                )
        for _url, status, _headers in self.statuses:
            if status == 401:
                return classify_errors([], 401)
        return None


class _CreateTweetCapture:
    """Catches the page's CreateTweet request and reads its answer as soon as it arrives."""

    def __init__(self, page: Page) -> None:
        self.request_seen = False
        self.failed: str | None = None
        self.status: int | None = None
        self.headers: dict[str, str] = {}
        self.body: bytes | None = None
        self._done = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        page.on("request", self._on_request)
        page.on("response", self._on_response)
        page.on("requestfailed", self._on_failed)

    @staticmethod
    def _is_create(request: Request) -> bool:
        return (
            request.method == "POST"
            and sel.GRAPHQL_MARKER in request.url
            and sel.CREATE_TWEET_OPERATION in request.url
        )

    def _on_request(self, request: Request) -> None:
        if self._is_create(request):
            self.request_seen = True

    def _on_response(self, response: Response) -> None:
        if self._is_create(response.request) and self.status is None:
            self.status = response.status
            self.headers = dict(response.headers)
            self._task = asyncio.ensure_future(self._read(response))

    async def _read(self, response: Response) -> None:
        try:
            self.body = await response.body()
        except PlaywrightError as exc:
            self.failed = f"answer unreadable: {exc.message}"
        finally:
            self._done.set()

    def _on_failed(self, request: Request) -> None:
        if self._is_create(request):
            self.failed = f"request failed: {request.failure}"
            if self._task is None:
                self._done.set()

    async def wait(self, timeout_s: float) -> bool:
        """True when an answer (or a definite failure) arrived within the timeout."""
        try:
            await asyncio.wait_for(self._done.wait(), timeout=timeout_s)
            return True
        except TimeoutError:
            return False


# --------------------------------------------------------------------------------------------- adapter


class PlaywrightX:
    """The `XAccount` port over Playwright + Chromium."""

    def __init__(
        self,
        *,
        username: str,
        base_url: str = "https://x.com",
        chromium_path: str | Path | None = None,
        headless: bool = True,
        session_file: str | Path | None = None,
        session_b64: str | None = None,
        artifacts_dir: str | Path | None = None,
        dwell_ms: tuple[int, int] = (600, 2200),
        type_delay_ms: tuple[int, int] | None = None,
        timeout_ms: int = 30_000,
        post_id_grace_ms: int = 5_000,
        scroll_wait_ms: int = 4_000,
        max_scrolls: int = 25,
        user_data_dir: str | Path | None = None,
        user_agent: str | None = None,
        autosave: bool = True,
        rng: random.Random | None = None,
        on_submitted: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        if not username:
            raise ValueError("username is required")
        self._username = username.lstrip("@")
        self._base = base_url.rstrip("/")
        if chromium_path is None and Path(DEFAULT_CHROMIUM).exists():
            chromium_path = DEFAULT_CHROMIUM
        self._chromium = str(chromium_path) if chromium_path else None
        self._headless = headless
        self._session_file = Path(session_file) if session_file else None
        self._session_b64 = session_b64
        self._artifacts = (
            Path(artifacts_dir) if artifacts_dir else Path(tempfile.gettempdir()) / "xbot-x-artifacts"
        )
        self._dwell = dwell_ms
        self._type_delay = (
            type_delay_ms if type_delay_ms is not None else ((40, 140) if dwell_ms[1] > 0 else (0, 0))
        )
        self._timeout_ms = timeout_ms
        self._grace_ms = post_id_grace_ms
        self._scroll_wait_ms = scroll_wait_ms
        self._max_scrolls = max_scrolls
        self._user_data_dir = Path(user_data_dir) if user_data_dir else None
        self._owns_user_data_dir = False
        self._user_agent = user_agent
        self._autosave = autosave
        self._rng = rng or random.Random()
        #: runs right after the post button is clicked, before X's answer is read (the crash matrix's TEST-ONLY
        #: hook); a plain attribute so a test can set it on a running adapter
        self.on_submitted = on_submitted
        self._pw: Playwright | None = None
        self._ctx: BrowserContext | None = None
        self._lock = asyncio.Lock()
        self._start_lock = asyncio.Lock()
        self._session_sig: tuple[int, int] | None = None

    @property
    def username(self) -> str:
        return self._username

    @property
    def base_url(self) -> str:
        return self._base

    # -------------------------------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Launch Chromium with one persistent context and load the session. Idempotent."""
        async with self._start_lock:
            if self._ctx is not None:
                return
            state = load_session(self._session_file, self._session_b64)
            self._session_sig = self._file_signature()
            if self._user_data_dir is None:
                self._user_data_dir = await asyncio.to_thread(fresh_profile_dir)
                self._owns_user_data_dir = True
            pw = await async_playwright().start()
            try:
                ctx = await pw.chromium.launch_persistent_context(
                    str(self._user_data_dir),
                    executable_path=self._chromium,
                    headless=self._headless,
                    args=list(CHROMIUM_ARGS),
                    viewport={"width": 1280, "height": 900},
                    locale="en-US",
                    timezone_id="UTC",
                    user_agent=self._user_agent,
                )
                ctx.set_default_timeout(self._timeout_ms)
                ctx.set_default_navigation_timeout(self._timeout_ms)
                await asyncio.wait_for(
                    ctx.set_storage_state(cast(Any, state)), timeout=self._timeout_ms / 1000 + 5
                )
            except BaseException:
                await pw.stop()
                raise
            self._pw, self._ctx = pw, ctx

    async def close(self) -> None:
        """Save the session, close the browser, remove a temporary profile. Idempotent."""
        async with self._start_lock:
            ctx, pw = self._ctx, self._pw
            if ctx is not None:
                try:
                    await self._save(ctx)
                except (OSError, PlaywrightError, XError) as exc:
                    log.warning("x_session_save_failed", error=str(exc))
                try:
                    await ctx.close()
                except PlaywrightError:
                    pass
            if pw is not None:
                await pw.stop()
            self._ctx = self._pw = None
            if self._owns_user_data_dir and self._user_data_dir is not None:
                shutil.rmtree(self._user_data_dir, ignore_errors=True)
                self._user_data_dir = None
                self._owns_user_data_dir = False

    async def save_session(self) -> Path | None:
        """Write the context's current storage state to `session_file` (atomically, mode 600).

        Does nothing without a session file, before start, or when the context lost its login (a good
        session on disk is never replaced by a logged-out one).
        """
        if self._ctx is None:
            return None
        return await self._save(self._ctx)

    async def _save(self, ctx: BrowserContext) -> Path | None:
        if self._session_file is None:
            return None
        if self._file_signature() != self._session_sig:
            # someone put a new session there (a fresh login) since we loaded or wrote it: never overwrite it
            log.warning("x_session_not_saved", reason="the session file was replaced on disk")
            return None
        try:
            state = await asyncio.wait_for(ctx.storage_state(), timeout=self._timeout_ms / 1000 + 5)
        except TimeoutError as exc:
            raise XTimeout("reading the browser's storage state timed out") from exc
        names = {c["name"] for c in state.get("cookies", []) if c.get("value")}
        if not all(n in names for n in SESSION_COOKIES):
            log.warning("x_session_not_saved", reason="context has no auth_token/ct0 cookie")
            return None
        await asyncio.to_thread(_write_private, self._session_file, json.dumps(state))
        self._session_sig = self._file_signature()
        return self._session_file

    def _file_signature(self) -> tuple[int, int] | None:
        if self._session_file is None:
            return None
        try:
            st = self._session_file.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def session_changed_on_disk(self) -> bool:
        """True when the session file is not the one this browser loaded or last wrote: someone replaced it
        (a fresh login), so the browser should be reopened to pick it up."""
        return self._ctx is not None and self._file_signature() != self._session_sig

    # ---------------------------------------------------------------------------------------- the port

    async def post(self, text: str, *, in_reply_to: str | None = None) -> Posted:
        if not text.strip():
            raise XError("refusing to post an empty text", code="empty_text")
        if in_reply_to is not None and not is_valid_tweet_id(in_reply_to):
            raise XError(f"in_reply_to {in_reply_to!r} is not an X tweet id", code="bad_reply_target")

        async def op(page: Page, api: _ApiWatcher) -> Posted:
            return await self._post(page, api, text, in_reply_to, self.on_submitted)

        return await self._run("post", op)

    async def read_own_timeline(self, limit: int = 50) -> list[TweetView]:
        async def op(page: Page, api: _ApiWatcher) -> list[TweetView]:
            path = sel.profile_with_replies_path(self._username)
            return await self._read_timeline(page, api, path, limit, author=self._username)

        return await self._run("read_own_timeline", op)

    async def read_account_tweets(self, username: str, limit: int = 20) -> list[TweetView]:
        name = username.lstrip("@")

        async def op(page: Page, api: _ApiWatcher) -> list[TweetView]:
            return await self._read_timeline(page, api, sel.profile_path(name), limit, author=name)

        return await self._run("read_account_tweets", op)

    async def search(self, query: str, limit: int = 20) -> list[TweetView]:
        path = f"{sel.SEARCH_PATH}?q={quote(query, safe='')}&src=typed_query&f=live"

        async def op(page: Page, api: _ApiWatcher) -> list[TweetView]:
            return await self._read_timeline(page, api, path, limit, author=None)

        return await self._run("search", op)

    async def read_status_metrics(self, tweet_id: str, *, expected_author: str) -> TweetMetrics:
        if not is_valid_tweet_id(tweet_id):
            raise XPageMismatch(f"{tweet_id!r} is not an X tweet id; refusing to read metrics for it")
        author = expected_author.lstrip("@")

        async def op(page: Page, api: _ApiWatcher) -> TweetMetrics:
            return await self._read_status(page, api, tweet_id, author)

        return await self._run("read_status_metrics", op)

    async def healthy(self) -> bool:
        """True when the session is logged in, judged by what the posting path itself needs: X's compose page
        shows its compose box and no login form. Never raises."""

        async def op(page: Page, api: _ApiWatcher) -> bool:
            await self._goto(page, api, sel.COMPOSE_PATH)
            await self._settle(page, api, sel.COMPOSE_TEXTAREA + ", " + sel.LOGIN_MARKERS)
            await self._check_logged_in(page, api)
            return bool(await self._bounded(page.locator(sel.COMPOSE_TEXTAREA).count(), "compose box"))

        try:
            return await self._run("healthy", op)
        except XError:
            return False

    # -------------------------------------------------------------------------------------- machinery

    async def _run(self, op_name: str, fn: Callable[[Page, _ApiWatcher], Awaitable[T]]) -> T:
        await self.start()
        assert self._ctx is not None
        async with self._lock:
            page = await self._bounded(self._ctx.new_page(), "opening a page")
            api = _ApiWatcher(page)
            try:
                result = await fn(page, api)
            except XError as exc:
                await self._record_failure(page, op_name, exc)
                raise
            except PlaywrightTimeoutError as exc:
                err: XError = XTimeout(f"{op_name}: {exc.message}")
                await self._record_failure(page, op_name, err)
                raise err from exc
            except PlaywrightError as exc:
                err = XUnavailable(f"{op_name}: {exc.message}")
                await self._record_failure(page, op_name, err)
                raise err from exc
            finally:
                try:
                    await asyncio.wait_for(page.close(), timeout=5)
                except (PlaywrightError, TimeoutError):
                    log.warning("x_page_close_failed", op=op_name)
            if self._autosave:
                try:
                    await self._save(self._ctx)
                except (OSError, PlaywrightError, XError) as exc:
                    log.warning("x_session_save_failed", error=str(exc))
            return result

    async def _record_failure(self, page: Page, op_name: str, exc: XError) -> None:
        """Screenshot + HTML + a small JSON note in the artifacts dir; paths go on `exc.artifacts`."""
        paths: list[str] = []
        try:
            await asyncio.to_thread(self._artifacts.mkdir, parents=True, exist_ok=True)
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
            stem = self._artifacts / f"{stamp}-{op_name}-{exc.code}"
            try:
                await page.screenshot(path=f"{stem}.png", full_page=True, timeout=5_000)
                paths.append(f"{stem}.png")
            except PlaywrightError:
                pass
            try:
                html = await asyncio.wait_for(page.content(), timeout=5)
            except (PlaywrightError, TimeoutError):
                html = None
            note = {
                "op": op_name,
                "error": type(exc).__name__,
                "code": exc.code,
                "message": exc.message,
                "in_doubt": exc.in_doubt,
                "url": page.url,
                "at": stamp,
            }
            files = {f"{stem}.json": json.dumps(note, indent=2)}
            if html is not None:
                files[f"{stem}.html"] = html
            await asyncio.to_thread(_write_files, files)
            paths.extend(sorted(files, key=lambda p: p.endswith(".json")))
        except OSError as err:
            log.warning("x_artifacts_failed", error=str(err))
        exc.artifacts = tuple(paths)
        log.warning(
            "x_operation_failed",
            op=op_name,
            error=type(exc).__name__,
            code=exc.code,
            in_doubt=exc.in_doubt,
            message=exc.message,
            artifacts=list(paths),
        )

    async def _bounded(self, aw: Awaitable[T], what: str, seconds: float | None = None) -> T:
        """Await a browser call that has no timeout of its own (evaluate, count, wheel, type)."""
        limit = seconds if seconds is not None else self._timeout_ms / 1000 + 1
        try:
            return await asyncio.wait_for(aw, timeout=limit)
        except TimeoutError as exc:
            raise XTimeout(f"{what} did not finish within {limit:.1f} s") from exc

    async def _pause(self) -> None:
        lo, hi = self._dwell
        if hi > 0:
            await asyncio.sleep(self._rng.uniform(lo, hi) / 1000)

    def _is_login_url(self, url: str) -> bool:
        path = urlparse(url).path
        return any(path.startswith(prefix) for prefix in sel.LOGIN_PATH_PREFIXES)

    async def _goto(self, page: Page, api: _ApiWatcher, path: str) -> None:
        url = self._base + path
        try:
            response = await page.goto(url, wait_until="domcontentloaded")
        except PlaywrightTimeoutError as exc:
            raise XTimeout(f"{url} did not load within {self._timeout_ms} ms") from exc
        except PlaywrightError as exc:
            raise XUnavailable(f"could not load {url}: {exc.message}") from exc
        if self._is_login_url(page.url):
            raise XLoggedOut(f"X sent {url} to its login flow ({page.url})")
        if response is not None and response.status == 429:
            raise XRateLimited(
                f"X answered HTTP 429 for {url}",
                retry_after=retry_after_seconds(response.headers, time.time()),
            )
        if response is not None and response.status >= 500:
            raise XUnavailable(f"X answered HTTP {response.status} for {url}")

    async def _check_logged_in(self, page: Page, api: _ApiWatcher) -> None:
        if self._is_login_url(page.url):
            raise XLoggedOut(f"X shows its login flow ({page.url})")
        if await self._bounded(page.locator(sel.LOGIN_MARKERS).count(), "login check"):
            raise XLoggedOut(f"X shows a login form on {page.url}")
        failure = api.failure()
        if isinstance(failure, XLoggedOut):
            raise failure

    async def _settle(self, page: Page, api: _ApiWatcher, selector: str = sel.PAGE_SETTLED) -> None:
        """Wait until the page shows tweets, an empty state, an error or a login form."""
        try:
            await page.wait_for_selector(f"{selector}, {sel.SOMETHING_WRONG}", state="attached")
        except PlaywrightTimeoutError as exc:
            await self._check_logged_in(page, api)
            failure = api.failure()
            if failure is not None:
                raise failure from exc
            raise XTimeout(f"{page.url} showed nothing within {self._timeout_ms} ms") from exc
        await self._check_logged_in(page, api)
        failure = api.failure()
        if failure is not None:
            raise failure

    async def _articles(self, page: Page) -> list[dict[str, Any]]:
        return await self._bounded(page.evaluate(_ARTICLES_JS, sel.ARTICLE_SELECTORS), "reading tweets")

    async def _missing_page(self, page: Page) -> bool:
        if await self._bounded(page.locator(f"{sel.ERROR_DETAIL}, {sel.EMPTY_STATE}").count(), "error check"):
            return True
        body = (await self._bounded(page.locator("body").inner_text(), "reading the page")).lower()
        return any(t in body for t in sel.MISSING_TEXTS)

    # --------------------------------------------------------------------------------------- reading

    async def _read_timeline(
        self, page: Page, api: _ApiWatcher, path: str, limit: int, *, author: str | None
    ) -> list[TweetView]:
        if limit <= 0:
            return []
        await self._goto(page, api, path)
        await self._settle(page, api)
        await self._check_timeline_page(page, api, path)
        tweets_shown = await self._bounded(page.locator(sel.TWEET).count(), "counting tweets")
        if not tweets_shown:
            # fail closed: [] only when X itself says the timeline is empty; anything else is unreadable
            empty = page.locator(sel.EMPTY_STATE)
            if await self._bounded(empty.count(), "empty check"):
                message = " ".join(
                    (await self._bounded(empty.first.inner_text(), "reading the empty state")).split()
                )
                if any(t in message.lower() for t in sel.EMPTY_TIMELINE_TEXTS):
                    return []
                raise XUnreadable(f"{path}: X shows an empty state that is not an empty timeline: {message!r}")
            if await self._bounded(page.locator(sel.ERROR_DETAIL).count(), "error check"):
                detail = await self._bounded(page.locator(sel.ERROR_DETAIL).first.inner_text(), "error text")
                raise XUnreadable(f"{path}: X shows its error page: {' '.join(detail.split())!r}")
            if await self._bounded(page.locator(sel.SOMETHING_WRONG).count(), "error check"):
                raise XUnreadable(f"{path}: X says something went wrong")
            raise XUnreadable(f"{path}: the page shows neither tweets nor an empty timeline (unknown markup)")
        found: dict[str, TweetView] = {}
        for round_no in range(self._max_scrolls + 1):
            await api.drain()
            for raw in await self._articles(page):
                view = tweet_from_article(raw, api.tweets)
                if view is None or view.tweet_id in found:
                    continue
                if author is not None and view.author.lower() != author.lower():
                    continue
                found[view.tweet_id] = view
            if len(found) >= limit or round_no == self._max_scrolls:
                break
            if not await self._scroll_for_more(page, api):
                break
        return list(found.values())[:limit]

    async def _check_timeline_page(self, page: Page, api: _ApiWatcher, path: str) -> None:
        """The page is the one asked for (X did not send us elsewhere) and no answer behind it failed."""
        want = urlparse(path).path.rstrip("/").lower()
        shown = urlparse(page.url).path.rstrip("/").lower()
        if shown != want:
            raise XUnreadable(f"asked for {path}, X showed {page.url}")
        failure = api.failure()
        if failure is not None:
            raise failure

    async def _scroll_for_more(self, page: Page, api: _ApiWatcher) -> bool:
        """Scroll down; True when the timeline showed something new, False at its end."""
        before = await self._bounded(page.evaluate(_SIGNATURE_JS, sel.TWEET), "scrolling")
        await self._bounded(page.mouse.wheel(0, 3000), "scrolling")
        await self._bounded(page.evaluate("window.scrollTo(0, document.body.scrollHeight)"), "scrolling")
        await self._pause()
        deadline = time.monotonic() + self._scroll_wait_ms / 1000
        while time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            if await self._bounded(page.evaluate(_SIGNATURE_JS, sel.TWEET), "scrolling") != before:
                return True
            if api.inflight == 0 and time.monotonic() - api.last_activity > 0.4:
                return False
        return False

    async def _read_status(self, page: Page, api: _ApiWatcher, tweet_id: str, author: str) -> TweetMetrics:
        await self._goto(page, api, sel.status_path(author, tweet_id))
        await self._settle(page, api)
        raws = await self._articles(page)
        matching = [r for r in raws if (parse_status_href(r.get("href")) or ("", ""))[1] == tweet_id]
        if not matching:
            if not raws and await self._missing_page(page):
                raise XUnavailable(f"tweet {tweet_id} is not on X (the page says it does not exist)")
            if not raws:
                raise XUnavailable(f"{page.url} shows no tweet")
            raise XPageMismatch(f"{page.url} does not show tweet {tweet_id}")
        shown_author, _ = parse_status_href(matching[0]["href"]) or ("", "")
        if shown_author.lower() != author.lower():
            raise XPageMismatch(f"tweet {tweet_id} is by @{shown_author}, not @{author}")
        url_status = parse_status_href(urlparse(page.url).path)
        if url_status is not None and url_status[1] != tweet_id:
            raise XPageMismatch(f"X moved from tweet {tweet_id} to {page.url}")
        counts = counts_from_article(matching[0])
        return TweetMetrics(tweet_id=tweet_id, author=shown_author, **counts)

    # ---------------------------------------------------------------------------------------- posting

    async def _post(
        self,
        page: Page,
        api: _ApiWatcher,
        text: str,
        in_reply_to: str | None,
        after_click: Callable[[], Awaitable[None]] | None,
    ) -> Posted:
        if in_reply_to is None:
            await self._goto(page, api, sel.COMPOSE_PATH)
        else:
            await self._open_reply(page, api, in_reply_to)
        try:
            await page.locator(sel.COMPOSE_TEXTAREA).last.wait_for(state="visible")
        except PlaywrightTimeoutError as exc:
            await self._check_logged_in(page, api)
            raise XTimeout(f"no compose box on {page.url} within {self._timeout_ms} ms") from exc
        # X's compose box lives in a dialog (over the home timeline, or opened by a reply button); an
        # inline composer may sit on the page as well: work inside the dialog when there is one.
        dialogs = page.locator(sel.COMPOSE_DIALOG).filter(has=page.locator(sel.COMPOSE_TEXTAREA))
        scope = dialogs.last if await self._bounded(dialogs.count(), "finding the compose dialog") else page
        box = scope.locator(sel.COMPOSE_TEXTAREA).last
        await self._pause()
        await box.click()
        lo, hi = self._type_delay
        delay = self._rng.uniform(lo, hi) if hi > 0 else 0
        typing_s = len(text) * (delay + 20) / 1000 + self._timeout_ms / 1000
        await self._bounded(page.keyboard.type(text, delay=delay), "typing", typing_s)
        shown = await self._bounded(box.inner_text(), "reading the compose box")
        if " ".join(shown.split()) != " ".join(text.split()):
            raise XError(
                f"the compose box shows {shown!r}, not the text typed",
                code="compose_mismatch",
                retryable=True,
            )
        button = scope.locator(sel.COMPOSE_BUTTON).last
        await self._wait_enabled(button)
        await self._pause()

        capture = _CreateTweetCapture(page)
        before_url = page.url
        try:
            await button.click()
        except PlaywrightError as exc:
            for _ in range(20):  # the click may have gone through before the error: look for the request
                if capture.request_seen:
                    raise XPostInDoubt(
                        f"the post button click failed after submitting: {exc.message}"
                    ) from exc
                await asyncio.sleep(0.05)
            raise XTimeout(f"could not click the post button: {exc.message}") from exc
        if after_click is not None:
            await after_click()
        try:
            return await self._read_back(page, capture, before_url, in_reply_to)
        except (PlaywrightError, XTimeout, XUnavailable) as exc:
            raise XPostInDoubt(f"posted but reading X's answer failed: {exc}") from exc

    async def _read_back(
        self, page: Page, capture: _CreateTweetCapture, before_url: str, in_reply_to: str | None
    ) -> Posted:
        """After the click: the id from X's answer, else from the page; X's refusals are raised as such."""
        answered = await capture.wait(self._timeout_ms / 1000)
        if answered and capture.status is not None and capture.body is not None:
            retry_after = retry_after_seconds(capture.headers, time.time())
            tweet_id = read_create_tweet_answer(capture.status, capture.body, retry_after=retry_after)
            if tweet_id is not None:
                return self._posted(tweet_id)
        elif answered and capture.status == 429:
            raise XRateLimited(
                "X answered HTTP 429 to CreateTweet", retry_after=retry_after_seconds(capture.headers, time.time())
            )
        grace = 0 if (capture.failed and capture.status is None) else self._grace_ms
        tweet_id = await self._id_from_page(page, before_url, in_reply_to, grace)
        if tweet_id is not None:
            return self._posted(tweet_id)
        reason = capture.failed or ("no answer" if not answered else f"HTTP {capture.status} without an id")
        if not capture.request_seen:
            reason = "no CreateTweet request was seen"
        raise XPostInDoubt(f"posted but no tweet id could be read back: {reason}")

    def _posted(self, tweet_id: str) -> Posted:
        return Posted(tweet_id=tweet_id, url=f"{self._base}{sel.status_path(self._username, tweet_id)}")

    async def _open_reply(self, page: Page, api: _ApiWatcher, parent_id: str) -> None:
        await self._goto(page, api, sel.status_path("i", parent_id))
        await self._settle(page, api)
        articles = page.locator(sel.TWEET).filter(
            has=page.locator(f'a[href$="/status/{parent_id}"]:has(time)')
        )
        if not await self._bounded(articles.count(), "finding the tweet to reply to"):
            if await self._missing_page(page):
                raise XUnavailable(f"cannot reply: tweet {parent_id} is not on X")
            raise XPageMismatch(f"cannot reply: {page.url} does not show tweet {parent_id}")
        await self._pause()
        await articles.first.locator(sel.REPLY).first.click()

    async def _wait_enabled(self, button: Any) -> None:
        deadline = time.monotonic() + self._timeout_ms / 1000
        while True:
            if await button.is_enabled() and await button.get_attribute("aria-disabled") != "true":
                return
            if time.monotonic() > deadline:
                raise XTimeout("the post button stayed disabled")
            await asyncio.sleep(0.05)

    async def _id_from_page(
        self, page: Page, before_url: str, in_reply_to: str | None, grace_ms: int
    ) -> str | None:
        """The new tweet's id from the status page X navigated to, or its "View" toast link."""
        deadline = time.monotonic() + grace_ms / 1000
        while True:
            candidates: list[str] = []
            if page.url != before_url:
                candidates.append(urlparse(page.url).path)
            try:
                links = page.locator(sel.TOAST_STATUS_LINK)
                for i in range(min(await self._bounded(links.count(), "toast"), 5)):
                    href = await self._bounded(links.nth(i).get_attribute("href"), "toast")
                    if href:
                        candidates.append(href)
            except (PlaywrightError, XTimeout):
                pass  # the page is navigating
            for href in candidates:
                parsed = parse_status_href(href)
                if parsed is None:
                    continue
                user, tweet_id = parsed
                if (
                    user.lower() == self._username.lower()
                    and is_valid_tweet_id(tweet_id)
                    and tweet_id != in_reply_to
                    and tweet_id not in (parse_status_href(urlparse(before_url).path) or ("", ""))
                ):
                    return tweet_id
            if time.monotonic() >= deadline:
                return None
            await asyncio.sleep(0.1)
