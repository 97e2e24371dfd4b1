"""The replier's pure core: which tweets to answer, in which style, when, and whether the reply may be queued.

* **Candidates** -- tweets read through the X port from ``REPLY_TARGET_ACCOUNTS`` and ``REPLY_SEARCH_QUERIES``;
  never our own, never one already answered (any reply drafted for it, queued, skipped or posted, from the
  log: a restart never answers twice), never one older than ``REPLY_MAX_AGE_HOURS`` or of unknown age;
  newest first.
* **Capacity** -- ``REPLY_MAX_PER_DAY`` minus the replies queued or posted in the last 24 hours.
* **Decision id** -- ``uuid5`` of the target tweet id: the same tweet always gets the same decision, and the
  draft is published only if that decision has no event yet, so neither a re-run nor a second replica can
  queue a second reply to it.
* **Style** -- a reply arm (``add_insight``, ``ask_question``...) by Thompson sampling from the latest model's
  ``reply`` posteriors (uniform before any); styles the rotation gate would block are left out first.
* **Gates** -- the same chain as posts. Rotation runs over the replies of the last 7 days: the style (the
  reply's angle) at most 40 %; the topic cap is lifted, since a reply's topic is the conversation's.
* **Schedule** -- as soon as possible: now, or the first moment ``MIN_POST_INTERVAL_MINUTES`` away from every
  queued and recent post and reply.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

import numpy as np

from shared.drafting import RecentDecisions, earliest_free
from shared.flags import Flags
from shared.gates import GateConfig, RotationWindow, rotation_gate
from shared.learning.arms import DEFAULT_TOPICS, REPLY_ARMS, REPLY_SCOPE
from shared.learning.bandits import thompson_choose
from shared.x.port import TweetView

#: namespace of reply decision ids: uuid5(REPLY_NAMESPACE, "reply:<target_tweet_id>")
REPLY_NAMESPACE = uuid.UUID("8a3e2b57-2f0c-5d9e-b7a4-7265706c6965")


def reply_decision_id(target_tweet_id: str, account: str = "default") -> str:
    """One decision per (account, tweet): a redelivered or concurrent run answers a tweet at most once per
    account (the default account's ids are a single-account stack's)."""
    key = f"reply:{target_tweet_id}" if account == "default" else f"reply:{account}:{target_tweet_id}"
    return str(uuid.uuid5(REPLY_NAMESPACE, key))


def parse_list(text: str) -> tuple[str, ...]:
    """``"a, b,,c"`` -> ``("a", "b", "c")`` (commas or new lines)."""
    return tuple(p.strip() for p in re.split(r"[,\n]", text or "") if p.strip())


def _same_user(a: str, b: str) -> bool:
    return a.lstrip("@").casefold() == b.lstrip("@").casefold()


def select_candidates(
    tweets: Iterable[TweetView],
    *,
    own_username: str,
    state: RecentDecisions,
    now: datetime,
    max_age: timedelta,
    ours: frozenset[str] = frozenset(),
    skipped_ours: list[TweetView] | None = None,
) -> list[TweetView]:
    """The tweets we may answer, newest first (see the module docstring). ``ours``: the lower-case usernames of
    every account of this stack -- our accounts never answer each other; such tweets go to ``skipped_ours``."""
    seen: set[str] = set()
    out: list[TweetView] = []
    for t in tweets:
        if t.tweet_id in seen:
            continue
        seen.add(t.tweet_id)
        if own_username and _same_user(t.author, own_username):
            continue
        if t.author.lstrip("@").lower() in ours:
            if skipped_ours is not None:
                skipped_ours.append(t)
            continue
        if state.answered(t.tweet_id):
            continue
        if t.created_at is None or now - t.created_at > max_age:
            continue
        if not t.text.strip():
            continue
        out.append(t)
    out.sort(key=lambda t: (t.created_at, t.tweet_id), reverse=True)
    return out


def capacity(state: RecentDecisions, now: datetime, max_per_day: int) -> int:
    """How many more replies may be queued now under ``REPLY_MAX_PER_DAY``."""
    return max(0, max_per_day - state.replies_in_last_day(now))


def reply_gate_config(flags: Flags) -> GateConfig:
    return GateConfig(
        min_quality_score=flags.MIN_QUALITY_SCORE, dup_cosine_threshold=flags.DUP_COSINE_THRESHOLD, topic_max=1.0
    )


def eligible_styles(styles: Sequence[str], window: RotationWindow, now: datetime, gate: GateConfig) -> list[str]:
    ok = [
        s
        for s in styles
        if rotation_gate(
            "reply", s, window, now=now, topic_max=gate.topic_max, angle_max=gate.angle_max,
            min_sample=gate.min_sample,
        ).passed
    ]
    return ok or list(styles)


def choose_style(
    state: RecentDecisions, now: datetime, rng: np.random.Generator, gate: GateConfig,
    styles: Sequence[str] = REPLY_ARMS,
) -> str:
    posteriors = {} if state.model is None else {
        (a.scope, a.arm): a for a in state.model.arms if a.scope == REPLY_SCOPE
    }
    return thompson_choose(posteriors, eligible_styles(styles, state.reply_rotation, now, gate), rng, scope=REPLY_SCOPE)


_TOPIC_WORDS: dict[str, tuple[str, ...]] = {
    "llm_engineering": ("llm", "prompt", "eval", "rag", "retrieval", "token", "fine-tun", "embedding", "model"),
    "ai_tools": ("ai", "copilot", "chatgpt", "assistant", "agent", "gpt", "claude"),
    "developer_workflow": ("code", "pull request", "review", "test", "deploy", "git", "ci", "bug", "dev"),
    "productivity": ("productiv", "focus", "habit", "calendar", "meeting", "inbox", "time"),
    "startups": ("startup", "founder", "customer", "pricing", "mvp", "revenue", "investor", "saas"),
    "automation": ("automat", "script", "workflow", "cron", "webhook", "zapier", "no-code"),
    "career_growth": ("career", "promot", "job", "hiring", "interview", "mentor", "salary", "manager"),
    "tech_trends": ("trend", "future", "edge", "open-weight", "passkey", "local-first", "launch"),
}


def guess_topic(text: str, topics: Sequence[str] = DEFAULT_TOPICS) -> str:
    """The catalogue topic a tweet is most about (keyword hits; ties to catalogue order), else ``tech_trends``."""
    low = text.casefold()
    best, best_hits = "tech_trends" if "tech_trends" in topics else topics[0], 0
    for topic in topics:
        words = _TOPIC_WORDS.get(topic, (topic.replace("_", " "),))
        hits = sum(len(re.findall(r"\b" + re.escape(w.strip()), low)) for w in words)
        if hits > best_hits:
            best, best_hits = topic, hits
    return best


def reply_schedule(state: RecentDecisions, now: datetime, gap: timedelta) -> datetime:
    at = earliest_free(now.replace(microsecond=0), None, state.busy_times(), gap)
    assert at is not None  # unbounded: always found
    return at
