"""The ``posting`` job: post due decisions to X at most once, under the seed's flags and limits.

For each due decision (oldest first, at most POSTING_BATCH), right before touching X:

1. re-read the flags; in live mode POSTING_DISABLED=true or LIVE_POSTS=false means ``decision.post_skipped``
   (posting_disabled / live_posts_off), the seed's log line, and nothing else;
2. an attempt left in doubt (a claim with no posted / plain failure after it) is reconciled against the
   account's own posts in three places (the timeline with replies, the profile, a search for the text), fail
   closed: found -> ``decision.posted`` (recovered); every place read and none shows it -> it stays in doubt
   until it has been quiet for RECONCILE_GRACE_MINUTES, then the attempt is closed and a new one may start; a
   place that cannot be read (error page, login wall, timeout, unknown markup) proves nothing and the attempt
   stays in doubt. A 187 "duplicate" answer to a retry after a doubt means the first attempt landed: it is
   never posted again, only looked for. A doubt older than RECONCILE_ATTENTION_MINUTES stops being retried
   and asks the operator (``decision.attention_needed``; answered by ``decision.doubt_resolved``);
3. the 226 cooldown, a 429's pause (until X's reset; it spends no attempt) and the rate limits (counted from
   the log, attempts in doubt included) -> ``post_skipped`` ``cooldown`` / ``x_rate_limited`` /
   ``rate_limited``, the decision stays queued;
4. claim: ``decision.post_started`` published with the decision's expected last subject sequence, so of
   two posters only one wins (the other gets ``WrongSequence`` and leaves it);
5. post (a thread part by part, each reply to the previous; a reply to its target); the tweet id is the one
   the adapter read back from X, else the attempt is in doubt; then ``decision.posted``.

Shadow mode posts synthetic decisions to the simulated X only, whatever the posting flags say; live mode
posts real decisions to the browser only.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, Protocol

import structlog

from shared.bus import Expect, WrongSequence, after
from shared.clock import Clock
from shared.events import (
    DEFAULT_ACCOUNT,
    Command,
    DecisionAttentionNeeded,
    DecisionPartPosted,
    DecisionPosted,
    DecisionPostFailed,
    DecisionPostSkipped,
    DecisionPostStarted,
    Event,
    new_event_id,
)
from shared.flags import Flags, is_posting_allowed
from shared.x.parsing import is_valid_tweet_id
from shared.x.port import TweetView, XAccount, XError, XLoggedOut, XPostInDoubt

from .domain import (
    RECONCILE_SLACK,
    RESUMED,
    Act,
    DecisionView,
    PosterState,
    PostingPolicy,
    after_reconcile,
    backoff_seconds,
    classify,
    decide_post,
    find_on_timeline,
    rate_limit_pause,
)

log = structlog.get_logger("poster")

TAG = "[POSTING_ORCHESTRATOR]"
#: ``_decide``'s answers when its optimistic pass cannot go on without catching up with the log first: it would
#: write something other than a claim, or the server refused its claim (the decision moved on since our view)
STALE = "stale"
REFUSED = "refused"


class Publish(Protocol):
    async def __call__(
        self, event: Event, *, expect: Expect | None = ...
    ) -> int: ...


class XAccounts(Protocol):
    """Hands out the account for a mode: the browser for live, the simulator for shadow."""

    async def get(self, simulated: bool) -> XAccount: ...

    async def reset_live(self) -> None: ...


def kill_self() -> None:  # pragma: no cover - the process ends here
    os.kill(os.getpid(), signal.SIGKILL)


class Poster:
    """The posting job and everything it remembers between runs (only: is the session logged out)."""

    def __init__(
        self,
        *,
        state: PosterState,
        publish: Publish,
        flags: Callable[[], Awaitable[Flags]],
        clock: Clock,
        accounts: XAccounts,
        policy: PostingPolicy,
        poster_id: str,
        catch_up: Callable[[str | None], Awaitable[None]] | None = None,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        crash: Callable[[], None] = kill_self,
        account: str = DEFAULT_ACCOUNT,
    ) -> None:
        #: the X account this poster posts for (every event it writes carries it)
        self.account = account
        self.state = state
        self.publish = publish
        self.flags = flags
        self.clock = clock
        self.accounts = accounts
        self.policy = policy
        self.poster_id = poster_id
        self.catch_up = catch_up or _no_catch_up
        self.sleep = sleep
        self._crash = crash
        self.logged_out: str | None = None  # why, while the session is logged out

    # -------------------------------------------------------------------------------------------- run
    def has_work(self, flags: Flags) -> bool:
        """Anything this account's run would look at now: a due decision (an attempt in doubt is due), or a
        logged-out session to check. Cheap (the state and the flags in hand), so a run over many accounts
        spends no round trip on an account with nothing to do."""
        if self.logged_out:
            return True
        return bool(self.state.due(self.clock.now(), flags.MODE, flags.REQUIRE_APPROVAL, 1,
                                   retry_base_seconds=self.policy.retry_base_seconds))

    async def run(self, cmd: Command, *, caught_up: bool = False) -> dict[str, int]:
        counts: Counter[str] = Counter()
        if not caught_up:
            await self.catch_up(None)
        flags = await self.flags()
        mode = flags.MODE
        simulated = mode != "live"
        if not simulated and self.logged_out and is_posting_allowed(flags).allowed:
            await self._check_session()
        due = self.state.due(
            self.clock.now(),
            mode,
            flags.REQUIRE_APPROVAL,
            self.policy.batch,
            retry_base_seconds=self.policy.retry_base_seconds,
        )
        counts["due"] = len(due)
        for view in due:
            counts[await self._one(view.decision_id, mode, cmd)] += 1
        if not due:
            counts["_skipped"] = 1
        return dict(counts)

    async def _one(self, decision_id: str, mode: str, cmd: Command) -> str:
        """One decision, with up to ``max_attempts`` attempts when the backoff is short enough to wait."""
        for _ in range(self.policy.max_attempts + 1):
            flags = await self.flags()  # right before every single post: a flip stops the next one
            if flags.MODE != mode:
                return "mode_changed"
            simulated = mode != "live"
            view = self.state.get(decision_id)
            if view is None or view.status != "queued":
                return "not_queued"
            if not simulated:
                allowed = is_posting_allowed(flags)
                if not allowed.allowed:
                    await self._skip(view, allowed.reason, cmd)
                    return allowed.reason
                if self.logged_out:
                    await self._skip(view, "logged_out", cmd, self.logged_out)
                    return "logged_out"
            result = await self._pass(decision_id, flags, simulated, cmd)
            if result != "retry":
                return result
            view = self.state.get(decision_id)
            if view is None or view.status != "queued":
                return "failed"
            delay = backoff_seconds(self.policy.retry_base_seconds, view.failures)
            if delay > self.policy.retry_inline_max_seconds:
                return "retry_later"
            await self.sleep(delay)
        return "retry_later"

    async def _pass(self, decision_id: str, flags: Flags, simulated: bool, cmd: Command) -> str:
        """One pass over a decision. The common case -- queued, no attempt open -- goes straight to its claim,
        whose expected sequence makes the server refuse it if our view of the decision is stale; only then, or
        when anything else would be written first, is the state caught up with the log and the pass made again."""
        view = self.state.get(decision_id)
        if view is not None and view.status == "queued" and view.open_claim is None:
            result = await self._decide(decision_id, flags, simulated, cmd, optimistic=True)
            if result not in (STALE, REFUSED):
                return result
            await self.catch_up(decision_id)
            view = self.state.get(decision_id)
            if result == REFUSED and view is not None and view.status == "queued" and view.open_claim is not None:
                # another poster claimed it first and is at it now: not an attempt in doubt to reconcile
                return _claim_lost(decision_id, view.claims + 1)
        else:
            await self.catch_up(decision_id)
        return await self._decide(decision_id, flags, simulated, cmd, optimistic=False)

    async def _decide(self, decision_id: str, flags: Flags, simulated: bool, cmd: Command, *, optimistic: bool) -> str:
        """``_pass``'s decision; when ``optimistic`` it writes nothing but a claim, and answers ``STALE`` where it
        would write anything else and ``REFUSED`` where the claim is refused (the caller catches up first)."""
        view = self.state.get(decision_id)
        if view is None or view.status != "queued":
            return "not_queued"
        try:
            x = await self.accounts.get(simulated)
        except XError as exc:
            if optimistic:
                return STALE
            return await self._account_unusable(view, exc, simulated, cmd)

        if view.open_claim is not None:
            if optimistic:
                return STALE
            outcome = await self._settle_doubt(view, x, simulated, cmd)
            if outcome is not None:
                return outcome
            view = self.state.get(decision_id)
            if view is None or view.status != "queued":
                return "not_queued"

        act = decide_post(view, self.state, flags, self.clock.now(), simulated=simulated)
        if optimistic and act.kind != "claim":
            return STALE  # a skip or a failure is written only on a view caught up with the log
        if act.kind == "claim":
            return await self._attempt(view, x, simulated, cmd, optimistic=optimistic)
        return await self._carry_out(view, act, cmd)

    async def _carry_out(self, view: DecisionView, act: Act, cmd: Command) -> str:
        """Execute a decided skip / fail / done (claims and reconciles have their own paths)."""
        if act.kind == "skip":
            await self._skip(view, act.reason, cmd, act.detail)
            return act.reason
        if act.kind == "fail":
            await self._fail(view, view.claims, act.detail, act.reason, act.final, cmd)
            return "failed" if act.final else act.reason
        if act.reason == "refused":
            log.error(f"{TAG} refusing to post synthetic content in live mode decision_id={view.decision_id}")
        return act.reason

    # ---------------------------------------------------------------------------------------- attempt
    async def _attempt(self, view: DecisionView, x: XAccount, simulated: bool, cmd: Command, *,
                       optimistic: bool = False) -> str:
        did = view.decision_id
        attempt = view.claims + 1
        claim = DecisionPostStarted(
            account=self.account,
            event_id=new_event_id(),  # never deterministic: a duplicate id would be acked as a won claim
            occurred_at=self.clock.now(),
            correlation_id=cmd.run_id,
            decision_id=did,
            attempt=attempt,
            poster_id=self.poster_id,
            simulated=simulated,
        )
        try:
            await self.publish(claim, expect=after(view.last_seq))
        except WrongSequence:
            if optimistic:
                return REFUSED  # our view was behind the log: the caller catches up and looks again
            return _claim_lost(did, attempt)
        self._crash_point("after_claim")

        texts = view.texts()
        ids = list(view.part_ids)
        url: str | None = None
        for i in range(len(ids), len(texts)):
            parent = ids[-1] if ids else (view.target_tweet_id if view.is_reply else None)
            try:
                posted = await x.post(texts[i], in_reply_to=parent)
                if not simulated and not is_valid_tweet_id(posted.tweet_id):
                    raise XPostInDoubt(
                        f"the adapter answered {posted.tweet_id!r}, which is not an X tweet id"
                    )
            except Exception as exc:
                return await self._attempt_failed(did, attempt, exc, x, simulated, cmd)
            self._crash_point("after_readback")
            ids.append(posted.tweet_id)
            if i == 0:
                url = posted.url
            if view.is_thread:
                await self._part_posted(did, i, posted.tweet_id, simulated, cmd)
        await self._posted(view, ids, url or self._url(x, ids[0], simulated), simulated, False, cmd)
        return "posted"

    async def _part_posted(self, did: str, i: int, tweet_id: str, simulated: bool, cmd: Command) -> None:
        """Part ``i`` of a thread is on X (posted now, or found by the reconcile): one event id per part, so a
        part found twice is recorded once."""
        await self.publish(DecisionPartPosted(
            account=self.account,
            event_id=f"part_posted:{did}:{i}", occurred_at=self.clock.now(), correlation_id=cmd.run_id,
            decision_id=did, part_index=i, tweet_id=tweet_id, simulated=simulated,
        ))

    async def _attempt_failed(
        self, did: str, attempt: int, exc: Exception, x: XAccount, simulated: bool, cmd: Command
    ) -> str:
        c = classify(exc)
        error = f"{type(exc).__name__}: {exc}"[:1000]
        view = self.state.get(did)
        if view is None:
            return "not_queued"
        if c.verdict == "in_doubt":
            # a 187 "duplicate" answer to a retry after a doubt: the earlier attempt is on X. Never post it again.
            landed = c.code == "187" and view.doubted
            await self._fail(view, attempt, error, c.code, False, cmd, in_doubt=True, landed=landed)
            if landed:
                log.warning(
                    f"{TAG} ⚠️ X says the post is a duplicate: the earlier attempt landed decision_id={did}; "
                    "looking for its id (it is never posted again)",
                    attempt=attempt,
                )
            else:
                log.warning(f"{TAG} ⚠️ Post in doubt decision_id={did}; reconciling", code=c.code, error=error)
            view = self.state.get(did)
            if view is None or view.status != "queued":
                return "not_queued"
            found = await self._reconcile(view, x, simulated, cmd)
            if found == "recovered":
                return "recovered"
            if found == "resumable":
                return await self._resume(did, x, simulated, cmd)
            return "in_doubt"
        if c.verdict == "paused":
            earlier = self.state.consecutive_429.get(simulated, 0)
            until = rate_limit_pause(
                self.clock.now(), getattr(exc, "retry_after", None), earlier, self.policy.rate_limit_backoff_seconds
            )
            await self._fail(view, attempt, error, c.code, False, cmd, paused_until=until)
            log.warning(
                f"{TAG} ⏸️ X answered 429 (rate limited): posting paused until {until.isoformat()} decision_id={did}",
                retry_after=getattr(exc, "retry_after", None),
                in_a_row=earlier + 1,
            )
            return "x_rate_limited"
        if c.verdict == "cooldown":
            await self._fail(view, attempt, error, c.code, False, cmd)
            log.warning(f"{TAG} 🧊 X answered 226 (looks automated): posting paused decision_id={did}")
            return "cooldown"
        if c.verdict == "logged_out":
            await self._fail(view, attempt, error, c.code, False, cmd)
            self._set_logged_out(error)
            return "logged_out"
        final = c.verdict == "final" or view.failures + 1 >= self.policy.max_attempts
        await self._fail(view, attempt, error, c.code, final, cmd)
        if final:
            log.error(f"{TAG} ❌ Posting failed for good decision_id={did}", code=c.code, error=error)
            return "failed"
        log.warning(
            f"{TAG} Posting attempt failed decision_id={did}; will retry", code=c.code, attempt=attempt
        )
        return "retry"

    # -------------------------------------------------------------------------------------- reconcile
    async def _settle_doubt(self, view: DecisionView, x: XAccount, simulated: bool, cmd: Command) -> str | None:
        """An attempt is open (in doubt): reconcile it, then do what ``after_reconcile`` says. None when the
        decision may be attempted now (the attempt closed after the grace, or its in-doubt thread part found)."""
        did = view.decision_id
        found = await self._reconcile(view, x, simulated, cmd)
        view = self.state.get(did) or view
        if view.status != "queued":
            return found if found == "recovered" else "not_queued"
        act = after_reconcile(view, found, self.clock.now(), self.policy)
        claim = view.open_claim
        if act.kind == "done":
            return None if act.reason == "settled" else act.reason
        assert claim is not None
        if act.kind == "close":
            await self._close(view, claim.attempt, act.reason, act.detail, cmd, final=act.final)
            if act.final:
                log.error(f"{TAG} ❌ Posting failed for good decision_id={did}", error=act.reason)
                return "failed"
            return None
        since = view.doubt_started_at() or claim.started_at
        if act.kind == "attention":
            await self.publish(
                DecisionAttentionNeeded(
                    account=self.account,
                    event_id=f"attention_needed:{did}:{claim.attempt}",
                    occurred_at=self.clock.now(),
                    correlation_id=cmd.run_id,
                    decision_id=did,
                    attempt=claim.attempt,
                    reason=act.reason,
                    detail=act.detail,
                    in_doubt_since=since,
                )
            )
            log.error(
                f"{TAG} 🛑 Attempt in doubt for {self.policy.attention_minutes:g} minutes: retrying stopped, "
                f"the operator must answer decision_id={did}",
                reason=act.reason,
                attempt=claim.attempt,
                since=since.isoformat(),
            )
            return "attention"
        if act.reason == "attention":
            log.warning(
                f"{TAG} 🛑 Decision needs the operator; not retried decision_id={did}",
                attempt=claim.attempt,
                since=since.isoformat(),
            )
            return "attention"
        log.info(
            f"{TAG} ⏳ Attempt in doubt, {act.detail} decision_id={did}",
            attempt=claim.attempt,
            since=claim.last_activity_at.isoformat(),
        )
        return "in_doubt"

    async def _resume(self, did: str, x: XAccount, simulated: bool, cmd: Command) -> str:
        """The in-doubt part of a thread was found right after the doubt: close the attempt, claim again, go on."""
        view = self.state.get(did)
        if view is None or view.status != "queued" or view.open_claim is None:
            return "not_queued"
        await self._close(
            view, view.open_claim.attempt, RESUMED, "the in-doubt part is on X; the rest is posted anew", cmd
        )
        view = self.state.get(did)
        if view is None or view.status != "queued":
            return "not_queued"
        return await self._attempt(view, x, simulated, cmd)

    async def _close(
        self, view: DecisionView, attempt: int, code: str, error: str, cmd: Command, *, final: bool = False
    ) -> None:
        """End the open attempt with ``code`` (deterministic id: two replicas closing it write one event)."""
        await self.publish(
            DecisionPostFailed(
                account=self.account,
                event_id=f"post_failed:{view.decision_id}:{attempt}:{code}",
                occurred_at=self.clock.now(),
                correlation_id=cmd.run_id,
                decision_id=view.decision_id,
                attempt=attempt,
                error=error,
                error_code=code,
                final=final,
            )
        )

    async def _look(self, x: XAccount, place: str, texts: list[str]) -> list[TweetView]:
        """One place a tweet of ours can be found: the timeline with replies, the profile, a search for the text."""
        limit = self.policy.timeline_limit
        if place == "with_replies":
            return await x.read_own_timeline(limit)
        if place == "profile":
            return await x.read_account_tweets(x.username, limit)
        out: list[TweetView] = []
        for text in texts:
            out.extend(await x.search(search_query(x.username, text), limit))
        return out

    async def _reconcile(self, view: DecisionView, x: XAccount, simulated: bool, cmd: Command) -> str:
        """Look for the decision's text(s) on our own account, in more than one place, and record what is there.

        Returns ``recovered`` (every part found: posted), ``resumable`` (the in-doubt thread part found, later
        parts not yet sent), ``not_found`` (every place was read and shows none of it), ``unreadable`` (some
        place could not be read and nothing was found: that proves nothing, the attempt stays in doubt) or
        ``logged_out``. Fail closed: only a place that was read counts towards "not found"."""
        did = view.decision_id
        texts = view.texts()
        ids = list(view.part_ids)
        start = len(ids)
        since = view.first_claim_at or view.queued_at
        exclude = set(self.state.posted_tweet_ids)
        read: dict[str, str] = {}
        places = ("with_replies", "search") if view.is_reply else ("with_replies", "profile", "search")
        for place in places:
            if len(ids) >= len(texts):
                break
            try:
                timeline = await self._look(x, place, list(texts[len(ids):]))
            except XLoggedOut as exc:
                read[place] = f"logged out ({exc})"
                self._set_logged_out(f"{type(exc).__name__}: {exc}")
                self._log_reconcile(view, read, ids[start:], "logged_out")
                return "logged_out"
            except Exception as exc:  # noqa: BLE001 - any failure to read proves nothing
                read[place] = f"unreadable ({type(exc).__name__}: {str(exc)[:200]})"
                continue
            read[place] = f"{len(timeline)} tweets"
            while len(ids) < len(texts):
                i = len(ids)
                parent = ids[-1] if ids else (view.target_tweet_id if view.is_reply else None)
                match = find_on_timeline(
                    timeline,
                    texts[i],
                    author=x.username,
                    in_reply_to=parent,
                    not_before=since - RECONCILE_SLACK,
                    exclude_ids=exclude | set(ids),
                )
                if match is None:
                    break
                ids.append(match.tweet_id)
                if view.is_thread:
                    await self._part_posted(did, i, match.tweet_id, simulated, cmd)
        if len(ids) >= len(texts):
            self._log_reconcile(view, read, ids[start:], "recovered")
            await self._posted(view, ids, self._url(x, ids[0], simulated), simulated, True, cmd)
            return "recovered"
        if len(ids) > start:
            result = "resumable"  # the part in doubt is on X; the parts after it were never sent
        elif any(r.startswith("unreadable") for r in read.values()):
            result = "unreadable"
        else:
            result = "not_found"
        self._log_reconcile(view, read, ids[start:], result)
        return result

    def _log_reconcile(self, view: DecisionView, read: dict[str, str], found: list[str], result: str) -> None:
        line = ", ".join(f"{place}: {what}" for place, what in read.items()) or "nothing"
        log.info(
            f"{TAG} 🔎 Reconcile decision_id={view.decision_id} read [{line}] found "
            f"{', '.join(found) if found else 'none'} -> {result}",
            decision_type=view.decision_type,
            parts=len(view.texts()),
            parts_known=len(view.part_ids),
            landed=view.landed,
        )

    # ---------------------------------------------------------------------------------------- events
    async def _posted(
        self, view: DecisionView, ids: list[str], url: str, simulated: bool, recovered: bool, cmd: Command
    ) -> None:
        await self.publish(
            DecisionPosted(
                account=self.account,
                event_id=f"posted:{view.decision_id}",  # two posters recording the same post: one event
                occurred_at=self.clock.now(),
                correlation_id=cmd.run_id,
                decision_id=view.decision_id,
                tweet_id=ids[0],
                posted_at=self.clock.now(),
                decision_type=view.decision_type,  # type: ignore[arg-type]
                bandit_arm=view.bandit_arm,
                timing_arm=view.timing_arm,
                url=url,
                simulated=simulated,
                recovered=recovered,
                thread_tweet_ids=ids if view.is_thread else [],
            )
        )
        if recovered:
            log.info(
                f"{TAG} ✅ Recovered post found on the timeline: tweet_id={ids[0]}",
                decision_id=view.decision_id,
                simulated=simulated,
            )
        else:
            log.info(
                f"{TAG} ✅ Posted successfully: tweet_id={ids[0]}",
                decision_id=view.decision_id,
                simulated=simulated,
            )

    async def _fail(
        self, view: DecisionView, attempt: int, error: str, code: str, final: bool, cmd: Command, *,
        in_doubt: bool = False, landed: bool = False, paused_until: datetime | None = None,
    ) -> None:
        await self.publish(
            DecisionPostFailed(
                account=self.account,
                event_id=new_event_id(),
                occurred_at=self.clock.now(),
                correlation_id=cmd.run_id,
                decision_id=view.decision_id,
                attempt=attempt,
                error=error,
                error_code=code,
                final=final,
                in_doubt=in_doubt,
                landed=landed,
                paused_until=paused_until,
            )
        )

    async def _skip(self, view: DecisionView, reason: str, cmd: Command, detail: str = "") -> None:
        await self.publish(
            DecisionPostSkipped(
                account=self.account,
                event_id=f"post_skipped:{view.decision_id}:{reason}:{cmd.run_id}",
                occurred_at=self.clock.now(),
                correlation_id=cmd.run_id,
                decision_id=view.decision_id,
                reason=reason,
                detail=detail,
            )
        )
        log.info(f"{TAG} ⏭️ Skipped posting decision_id={view.decision_id} reason={reason}", detail=detail)

    # ---------------------------------------------------------------------------------- the session
    async def _account_unusable(self, view: DecisionView, exc: XError, simulated: bool, cmd: Command) -> str:
        error = f"{type(exc).__name__}: {exc}"
        if isinstance(exc, XLoggedOut) and not simulated:
            self._set_logged_out(error)
            await self._skip(view, "logged_out", cmd, error)
            return "logged_out"
        log.warning(f"{TAG} X is not reachable; decision_id={view.decision_id} stays queued", error=error)
        return "unavailable"

    def _set_logged_out(self, why: str) -> None:
        if not self.logged_out:
            log.error(
                f"{TAG} ❌ X session is logged out: posting stopped until a valid session is provided "
                "(refresh X_SESSION_FILE or X_SESSION_B64)",
                detail=why,
            )
        self.logged_out = why

    async def _check_session(self) -> None:
        """While logged out: reopen the browser (re-reading the session) and ask X whether we are in."""
        await self.accounts.reset_live()
        try:
            x = await self.accounts.get(False)
            ok = await x.healthy()
        except Exception as exc:
            log.info(f"{TAG} X session still logged out", detail=str(exc))
            return
        if ok:
            log.info(f"{TAG} X session is logged in again; posting resumes")
            self.logged_out = None

    def ready(self) -> bool:
        return self.logged_out is None

    # ------------------------------------------------------------------------------ test crash points
    def _crash_point(self, point: str) -> None:
        if self.policy.crash_at == point:
            log.warning(f"TEST ONLY: XBOT_TEST_CRASH_AT={point}: killing the poster process now")
            self._crash()

    async def after_click(self) -> None:
        """TEST ONLY: the adapters' ``on_submitted`` hook when XBOT_TEST_CRASH_AT=after_click (the bootstrap wires it)."""
        if self.policy.crash_at == "after_click":
            await asyncio.sleep(self.policy.crash_settle_seconds)  # let the click's request reach X
            self._crash_point("after_click")

    def _url(self, x: XAccount, tweet_id: str, simulated: bool) -> str:
        if simulated:
            return f"sim://x/{x.username}/status/{tweet_id}"
        return f"{self.policy.x_base_url.rstrip('/')}/{x.username}/status/{tweet_id}"


def search_query(username: str, text: str, max_words: int = 12) -> str:
    """X search for our own tweet with ``text``: ``from:<us> "<its first words>"`` (no URLs, mentions or quotes,
    which X's phrase search does not match reliably); the results are then compared by their whole text."""
    words = [
        w for w in text.replace('"', " ").replace("“", " ").replace("”", " ").split()
        if not w.startswith(("http://", "https://", "@"))
    ]
    phrase = " ".join(words[:max_words])
    return f'from:{username} "{phrase}"' if phrase else f"from:{username}"


def _claim_lost(decision_id: str, attempt: int) -> str:
    log.info(f"{TAG} decision_id={decision_id} is being handled by another poster; leaving it", attempt=attempt)
    return "claim_lost"


async def _no_catch_up(_: str | None) -> None:
    return None
