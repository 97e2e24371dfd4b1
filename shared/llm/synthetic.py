"""Deterministic adapters for shadow mode and tests: `SyntheticWriter` (an `LLM`) and `HashingEmbedder`.

`SyntheticWriter` writes plausible posts from templates and per-topic vocabularies: the same request (seed
included) always gives the same draft, different seeds give different ones. Threads have 2-7 parts, replies
quote what the tweet replied to, and every part fits X's 280 weighted characters and passes the quality gate.

Shadow mode uses these directly, not through `GuardedLLM`: they cost nothing, call nothing, so there is no
budget to hold and no ``llm.*`` event to emit (the decisions they feed are marked ``generation_source=
synthetic``). Live mode never uses them.

`HashingEmbedder` hashes word, word-pair and character n-gram features into ``dim`` signed buckets (the hashing
trick, blake2b so it is stable across processes) and L2-normalises: near-duplicate texts land close together
(cosine > 0.9), unrelated texts near 0. No model, no network.
"""

from __future__ import annotations

import hashlib
import math
import random
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..gates.text import TWEET_LIMIT, weighted_length
from .port import Draft, DraftRequest, EmbeddingResult, LLMResult, Usage, normalize_rows

SYNTHETIC_MODEL = "synthetic-templates-v1"

# --------------------------------------------------------------------------------------------- vocabularies
# Each topic: label, things (plural nouns), actions (verb phrases), pitfalls (gerund phrases), wins (verb phrases
# in the past tense), metrics (what one measures).
_VOCAB: dict[str, dict[str, Any]] = {
    "ai_tools": {
        "label": "AI tools",
        "things": ["code assistants", "meeting summarizers", "AI search tools", "writing copilots",
                   "transcription apps", "AI spreadsheet helpers", "image generators", "browser agents"],
        "actions": ["draft your weekly report with an assistant", "summarize long threads before reading them",
                    "turn voice notes into task lists", "let a copilot write the first test",
                    "ask the model to critique your plan", "batch your research questions"],
        "pitfalls": ["pasting the first answer without checking it", "paying for five tools that overlap",
                     "skipping the prompt and hoping", "using AI for tasks you never understood"],
        "wins": ["cut my review time in half", "cleared a two-week backlog in three days",
                 "stopped writing boilerplate by hand", "answered support tickets twice as fast"],
        "metrics": ["hours saved per week", "tickets closed per day", "drafts per hour", "review minutes"],
    },
    "llm_engineering": {
        "label": "LLM engineering",
        "things": ["eval suites", "prompt templates", "retrieval pipelines", "structured outputs",
                   "token budgets", "fine-tuned small models", "guardrails", "tracing dashboards"],
        "actions": ["write evals before you touch the prompt", "log every prompt and response",
                    "cache embeddings by content hash", "ask for JSON with a strict schema",
                    "set a hard token budget per request", "test with the cheapest model first"],
        "pitfalls": ["shipping a prompt change without an eval", "stuffing the whole wiki into context",
                     "trusting a single golden example", "ignoring latency until launch day"],
        "wins": ["dropped our cost per request by 70%", "caught a regression before users did",
                 "replaced a large model with a small one", "made outputs parse every single time"],
        "metrics": ["cost per request", "eval pass rate", "p95 latency", "tokens per answer"],
    },
    "productivity": {
        "label": "productivity",
        "things": ["time blocks", "weekly reviews", "single-page plans", "focus sessions",
                   "inbox rules", "daily shutdown lists", "calendar audits", "note templates"],
        "actions": ["plan tomorrow before you close the laptop", "batch email into two slots a day",
                    "write the one task that matters on paper", "book focus time like a meeting",
                    "review your calendar every Friday", "cap meetings at 25 minutes"],
        "pitfalls": ["starting the day in the inbox", "saying yes to every meeting",
                     "tracking everything and acting on nothing", "switching apps every month"],
        "wins": ["got four deep-work hours back each week", "stopped working weekends",
                 "finished the project a week early", "cleared my inbox for a month straight"],
        "metrics": ["deep-work hours", "meetings per week", "tasks shipped", "context switches"],
    },
    "developer_workflow": {
        "label": "developer workflow",
        "things": ["small pull requests", "pre-commit hooks", "local dev containers", "fast test suites",
                   "feature flags", "trunk-based branches", "shell aliases", "review checklists"],
        "actions": ["keep pull requests under 200 lines", "run the fast tests on every save",
                    "write the commit message first", "ship behind a feature flag",
                    "automate the boring parts of review", "delete dead code every sprint"],
        "pitfalls": ["letting a branch live for two weeks", "reviewing 1,000-line diffs",
                     "ignoring flaky tests", "debugging in production first"],
        "wins": ["cut our lead time from days to hours", "halved the bugs that reach production",
                 "made onboarding take one afternoon", "merged twice as often with fewer reverts"],
        "metrics": ["lead time", "review turnaround", "build minutes", "change failure rate"],
    },
    "startups": {
        "label": "startups",
        "things": ["customer calls", "landing pages", "pricing tests", "waitlists",
                   "founder-led sales", "weekly metrics", "tiny MVPs", "cold emails"],
        "actions": ["talk to five customers this week", "charge from day one",
                    "ship the ugly version first", "write the pricing page before the product",
                    "track one metric that matters", "say no to the big custom deal"],
        "pitfalls": ["building for months without a user", "hiring before the product works",
                     "chasing investors instead of customers", "copying a competitor's roadmap"],
        "wins": ["found our first ten paying users", "doubled conversion with one pricing change",
                 "cut churn by a third", "closed a pilot from a cold email"],
        "metrics": ["weekly active users", "conversion rate", "monthly churn", "payback period"],
    },
    "automation": {
        "label": "automation",
        "things": ["cron jobs", "webhooks", "no-code workflows", "scripts", "email parsers",
                   "scheduled reports", "form integrations", "chatbots"],
        "actions": ["automate the task you did three times this week", "write a script before buying a tool",
                    "log every automated action", "add a kill switch to every workflow",
                    "start with a checklist, then automate it", "alert on failure, not on success"],
        "pitfalls": ["automating a process nobody understands", "running workflows without logs",
                     "chaining ten tools for one job", "forgetting who owns the automation"],
        "wins": ["saved six hours a week with one script", "stopped copying data between apps",
                 "made monthly reports generate themselves", "removed a whole manual handoff"],
        "metrics": ["manual steps removed", "hours saved", "failed runs", "time to detect a failure"],
    },
    "career_growth": {
        "label": "career growth",
        "things": ["brag documents", "one-on-ones", "side projects", "mentors", "public write-ups",
                   "skill maps", "promotion packets", "peer feedback"],
        "actions": ["keep a brag document updated every Friday", "ask your manager what great looks like",
                    "write about what you learned this month", "take the project nobody wants",
                    "learn the business side of your work", "ask for feedback on one specific thing"],
        "pitfalls": ["waiting to be noticed", "collecting certificates instead of results",
                     "avoiding hard conversations", "switching jobs only for the title"],
        "wins": ["got promoted a cycle early", "landed a role through a blog post",
                 "doubled my scope in a year", "turned a side project into a job offer"],
        "metrics": ["projects shipped", "people you helped", "posts written", "skills used at work"],
    },
    "tech_trends": {
        "label": "tech trends",
        "things": ["AI agents", "edge computing", "open-weight models", "passkeys", "local-first apps",
                   "vector databases", "small language models", "AI-native IDEs"],
        "actions": ["try the trend on one real problem", "read the docs, not the hype",
                    "wait one release before you migrate", "measure before you adopt",
                    "follow the builders, not the commentators", "ask what problem it removes"],
        "pitfalls": ["rewriting everything for a trend", "confusing demos with products",
                     "ignoring the boring stack that works", "betting the company on a beta"],
        "wins": ["replaced a paid API with an open model", "shipped a feature with passkeys in a week",
                 "moved a workload to the edge and cut latency", "made search feel instant"],
        "metrics": ["adoption curves", "GitHub stars", "real deployments", "job postings"],
    },
}

_GENERIC = {
    "things": ["tools", "habits", "checklists", "experiments", "routines", "playbooks"],
    "actions": ["start with the smallest useful step", "measure what changes", "write down what you tried",
                "repeat what worked for a month", "ask someone who has done it", "cut one thing every week"],
    "pitfalls": ["copying someone else's setup", "doing everything at once", "skipping the basics",
                 "never measuring anything"],
    "wins": ["saved hours every week", "made the results repeatable", "finally kept the habit",
             "got better results with less effort"],
    "metrics": ["time saved", "results per week", "mistakes caught", "hours spent"],
}

_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"]

# ------------------------------------------------------------------------------------------------ templates
_HOOKS: dict[str, list[str]] = {
    "how_to": [
        "How to {action} (and why it works):",
        "Here is how I {action}, step by step.",
        "Want better results with {label}? {Action}.",
        "{n} steps to {action}, learned the hard way:",
        "The simplest way to get value from {thing}: {action}.",
        "Most people overcomplicate {label}. Here is what works:",
    ],
    "contrarian": [
        "Unpopular opinion: {thing} are overrated.",
        "Stop {pitfall}. It is costing you more than you think.",
        "Everyone says more {thing}. I think that is wrong.",
        "Hot take: the best move in {label} is doing less, not more.",
        "Nobody talks about the hidden cost of {thing}.",
        "{Thing} won't fix a broken process. Fix the process first.",
    ],
    "story": [
        "Last {month} I {win}. Here is what changed.",
        "A year ago I was {pitfall}. Then one thing changed.",
        "I {win}. It started with a small experiment.",
        "The mistake that taught me the most about {label}: {pitfall}.",
        "Three months ago our team kept {pitfall}. This is what fixed it.",
    ],
    "data": [
        "I tracked {metric} for {weeks} weeks. The results surprised me.",
        "{pct}% of the gains in {label} came from one change.",
        "We measured {metric} before and after adopting {thing}: {pct}% better.",
        "{n} numbers that changed how I think about {label}:",
        "After {weeks} weeks of data, {thing} moved {metric} by {pct}%.",
    ],
    "question": [
        "What is the one thing in {label} you would never give up?",
        "Honest question: do {thing} actually save you time?",
        "Which works better for you: {thing} or {thing2}?",
        "If you could only {action}, would it be enough?",
        "What is the most underrated habit in {label}?",
    ],
}

_POINTS: dict[str, list[str]] = {
    "how_to": [
        "{Action}. It sounds obvious, yet almost nobody does it consistently.",
        "Pick one of your {thing} and {action}. Keep it boring and repeatable.",
        "Write down what you expect before you start. Compare it with what happened.",
        "Avoid {pitfall}. That single habit undoes most of the gains.",
        "Measure {metric} for two weeks. You cannot improve what you never look at.",
        "Keep the setup small. Two {thing} you use daily beat ten you forget.",
        "Review it every Friday for 15 minutes. Drop what did not earn its place.",
    ],
    "contrarian": [
        "The problem is not the tooling. It is {pitfall}.",
        "More {thing} means more overhead. Overhead quietly eats the gains.",
        "The teams I admire most {action}. Nothing fancy.",
        "Look at {metric} instead of opinions. The numbers rarely back the hype.",
        "What actually worked for me: {action}. That is it.",
        "Most advice about {label} is written by people selling {thing}.",
        "Simple beats clever when you have to maintain it for years.",
    ],
    "story": [
        "Week one was rough. I kept {pitfall} out of habit.",
        "Then I decided to {action}, every single day.",
        "By week three {metric} had clearly improved.",
        "The surprising part: it took less effort, not more.",
        "My team noticed before I said anything. That is when I knew it stuck.",
        "I still slip sometimes, but now I notice within a day.",
        "In the end I {win}, with fewer {thing} than before.",
    ],
    "data": [
        "Baseline: {metric} was flat for a month. Nothing we tried moved it.",
        "Change: we started to {action}. Nothing else changed.",
        "Result: {metric} improved by {pct}% within {weeks} weeks.",
        "The biggest drop came from no longer {pitfall}.",
        "{pct2}% of the improvement showed up in the first week.",
        "The cost: about {hours} hours of setup. It paid back within a month.",
        "Caveat: one team, one quarter. Run your own numbers before you copy this.",
    ],
    "question": [
        "My answer: {action}. It is boring, and it works.",
        "I used to rely on {thing}. Now I am not so sure they pull their weight.",
        "The trap I see most often is {pitfall}.",
        "If you track {metric}, I would love to know what you found.",
        "Curious whether small teams see the same thing as large ones.",
        "Bonus question: what did you stop doing that made things better?",
        "I will share the most useful answers in a follow-up.",
    ],
}

#: Angle-neutral points, used after the angle's own (so a long thread never repeats a sentence).
_EXTRA_POINTS = [
    "Keep notes on what you try with {thing}. Patterns show up faster than you expect.",
    "Share what worked with your team. Someone will improve on it within a week.",
    "Expect a slow first week. The payoff shows up later, and it compounds.",
    "Cut anything you have not used in a month. Less to maintain, more focus.",
]

_CLOSERS: dict[str, list[str]] = {
    "how_to": ["Try it for one week and see what changes.", "Save this for your next planning session.",
               "Start small. Consistency does the rest.", "That is the whole method. Simple, not easy."],
    "contrarian": ["Change my mind.", "Agree or disagree?", "Less hype, more results.",
                   "Boring wins. It usually does."],
    "story": ["Small changes compound.", "The lesson: fix the habit, not the tool.",
              "If I can do it, so can you.", "That is the whole story. No magic involved."],
    "data": ["Numbers over opinions.", "Measure first, then decide.", "What would your numbers say?",
             "Data beats guesswork every time."],
    "question": ["What is your take?", "Tell me what works for you.", "Curious to hear your answer.",
                 "Reply with yours and I will read every one."],
}

_REPLIES: dict[str, list[str]] = {
    "add_insight": [
        "On \"{quote}\": the part people miss is {pitfall}. {Action} first and the rest gets easier.",
        "\"{quote}\" matches what I saw: we {win} once we started to {action}.",
        "Good point about \"{quote}\". One addition: track {metric}, or you will not know if it worked.",
    ],
    "ask_question": [
        "Interesting take on \"{quote}\". How do you measure {metric} when you do this?",
        "\"{quote}\": did that hold up after a few months, or did you have to adjust?",
        "Curious about \"{quote}\". What would you do differently if you started today?",
    ],
    "agree_extend": [
        "Agreed on \"{quote}\". I would add: {action}. It made the biggest difference for us.",
        "Yes to \"{quote}\". We {win} doing something similar.",
        "This. \"{quote}\" is underrated. The next step is to {action}.",
    ],
    "counterpoint": [
        "Respectfully, \"{quote}\" depends on context. For small teams, {pitfall} is the bigger risk.",
        "I see it differently: \"{quote}\" works until scale. Then you need to {action}.",
        "Counterpoint on \"{quote}\": we tried it and {metric} got worse until we started to {action}.",
    ],
    "resource": [
        "On \"{quote}\": the best write-up I know is the docs' own guide on {thing}. Worth an hour.",
        "Related to \"{quote}\": keep a short checklist to {action}. It beats any tool.",
        "For \"{quote}\", a template helped us a lot: {action}, then review {metric} weekly.",
    ],
}
_REPLIES_DEFAULT = [
    "\"{quote}\" is a good point. In my experience it pays to {action}.",
    "Thanks for sharing \"{quote}\". We saw the same when we started to {action}.",
]

_NUMBERINGS = ("{i}/ ", "{i}/{n} ", "", "{i}. ")


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:] if s else s


def _vocab(topic: str) -> dict[str, Any]:
    v = _VOCAB.get(topic)
    if v is not None:
        return v
    label = topic.replace("_", " ").replace("-", " ").strip() or "this"
    return {"label": label, **_GENERIC}


def _slots(rng: random.Random, topic: str, n_parts: int) -> dict[str, Any]:
    v = _vocab(topic)
    thing, thing2 = rng.sample(v["things"], 2)
    action = rng.choice(v["actions"])
    pitfall = rng.choice(v["pitfalls"])
    return {
        "label": v["label"],
        "thing": thing,
        "Thing": _cap(thing),
        "thing2": thing2,
        "action": action,
        "Action": _cap(action),
        "pitfall": pitfall,
        "win": rng.choice(v["wins"]),
        "metric": rng.choice(v["metrics"]),
        "month": rng.choice(_MONTHS),
        "weeks": rng.choice([3, 4, 6, 8, 10, 12]),
        "pct": rng.choice([12, 18, 23, 27, 31, 38, 42, 55, 64]),
        "pct2": rng.choice([40, 50, 60, 70]),
        "hours": rng.choice([2, 3, 4, 6, 8]),
        "n": max(3, n_parts - 1),
    }


_URL_RE = re.compile(r"https?://\S+|\bwww\.\S+", re.IGNORECASE)


def _quote(context: str | None, rng: random.Random, max_chars: int = 70) -> str:
    """A short, clean snippet of the tweet replied to (no links, mentions, hashtags, emoji or quotes)."""
    text = _URL_RE.sub(" ", context or "")
    text = re.sub(r"[@#](\w+)", r"\1", text)
    text = "".join(ch for ch in text if ch.isalnum() or ch in " .,;:!?'’%-" or ch.isspace())
    sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+|\n+", text) if len(s.strip().split()) >= 3]
    if not sentences:
        words = text.split()
        return " ".join(words[:8]) if words else "your point"
    s = rng.choice(sentences).rstrip(".!?,;: ")
    if len(s) > max_chars:
        cut = s[:max_chars].rsplit(" ", 1)[0]
        s = cut.rstrip(".,;:!?-' ")
    return s or "your point"


def _fit(sentences: list[str], limit: int = TWEET_LIMIT) -> str:
    """Join sentences, dropping from the end (never the first) until the part fits ``limit``."""
    kept = list(sentences)
    while len(kept) > 1 and weighted_length(" ".join(kept)) > limit:
        kept.pop()
    text = " ".join(kept)
    if weighted_length(text) > limit:  # one long sentence: cut at a word boundary and close it
        words = text.split()
        while words and weighted_length(" ".join(words) + ".") > limit:
            words.pop()
        text = " ".join(words).rstrip(".,;:!?-") + "."
    return text


class SyntheticWriter:
    """A deterministic `LLM`: the draft is a pure function of the request (seed included)."""

    def __init__(self, model: str = SYNTHETIC_MODEL):
        self._model = model

    @property
    def model(self) -> str:
        return self._model

    @property
    def max_output_tokens(self) -> int:
        return 0

    async def draft(self, request: DraftRequest, *, request_id: str | None = None) -> LLMResult:
        d = self.write(request)
        return LLMResult(draft=d, usage=Usage(), model=self._model, request_id=request_id or f"syn-{request.seed}")

    def write(self, request: DraftRequest) -> Draft:
        key = f"{request.seed}|{request.kind}|{request.topic}|{request.angle}|{request.decision_type}|{request.context}"
        rng = random.Random(hashlib.sha256(key.encode()).hexdigest())
        if request.kind == "reply":
            return self._reply(request, rng)
        lo, hi = request.parts_range
        n_parts = rng.randint(lo, min(hi, 7)) if hi > 1 else 1
        slots = _slots(rng, request.topic, n_parts)
        angle = request.angle if request.angle in _HOOKS else rng.choice(sorted(_HOOKS))
        hook = rng.choice(_HOOKS[angle]).format(**slots)
        closer = rng.choice(_CLOSERS[angle])
        points = [p.format(**slots) for p in rng.sample(_POINTS[angle], len(_POINTS[angle]))]
        # don't say again what the hook already said (the action or the pitfall it names)
        said = [v.lower() for v in (slots["action"], slots["pitfall"]) if v.lower() in hook.lower()]
        points = [p for p in points if not any(v in p.lower() for v in said)]
        points += [p.format(**slots) for p in rng.sample(_EXTRA_POINTS, len(_EXTRA_POINTS))]
        if n_parts == 1:
            body = points[: rng.randint(1, 2)]
            sentences = [hook if hook[-1] in ".?!" else hook[:-1] + "."] + body + [closer]
            return Draft(parts=[_fit(sentences)], topic=request.topic, angle=request.angle, hook=hook)
        numbering = rng.choice(_NUMBERINGS)
        raw_parts: list[list[str]] = [[hook]] + [[m] for m in points[: n_parts - 2]] + [[points[n_parts - 2], closer]]
        if not hook.endswith((":", "?")):
            raw_parts[0].append(rng.choice(["A thread:", "Here is what I learned:", "Details below:"]))
        parts = []
        for i, sentences in enumerate(raw_parts, start=1):
            prefix = numbering.format(i=i, n=n_parts)
            parts.append(_fit([prefix + sentences[0], *sentences[1:]]))
        return Draft(parts=parts, topic=request.topic, angle=request.angle, hook=hook)

    def _reply(self, request: DraftRequest, rng: random.Random) -> Draft:
        slots = _slots(rng, request.topic, 1)
        slots["quote"] = _quote(request.context, rng)
        template = rng.choice(_REPLIES.get(request.angle, _REPLIES_DEFAULT))
        sentences = [s for s in re.split(r"(?<=[.!?])\s+(?=[A-Z\"])", template.format(**slots)) if s]
        text = _fit(sentences)
        if weighted_length(text) > TWEET_LIMIT:  # pragma: no cover - _fit guarantees the bound
            text = _fit([text[:200].rsplit(" ", 1)[0] + "."])
        return Draft(parts=[text], topic=request.topic, angle=request.angle, hook=None)


# -------------------------------------------------------------------------------------------- embeddings
_TOKEN_RE = re.compile(r"[a-z0-9]+(?:['’][a-z]+)?")


def _tokens(text: str) -> list[str]:
    return _TOKEN_RE.findall(unicodedata.normalize("NFKC", text).casefold())


def _feature_counts(tokens: list[str]) -> tuple[tuple[str, Counter[str]], ...]:
    """The features of a text by kind, each counted in order of first appearance: words, word pairs, character
    3-grams and 4-grams of the words joined by single spaces with a space at each end (feature ``<kind>:<text>``)."""
    padded = " " + " ".join(tokens) + " "
    n = len(padded)
    return (
        ("w", Counter(tokens)),
        ("b", Counter(map(" ".join, zip(tokens, tokens[1:], strict=False)))),
        ("c3", Counter([padded[i : i + 3] for i in range(n - 2)])),
        ("c4", Counter([padded[i : i + 4] for i in range(n - 3)])),
    )


_WEIGHTS = {"w": 1.0, "b": 0.7, "c3": 0.35, "c4": 0.45}
#: distinct features a ``HashingEmbedder`` remembers the bucket of (cleared when full)
_CACHE_MAX = 1 << 18
#: 1 + ln(count) for the counts a text has (a table, so each is computed once, exactly as ``math.log`` gives it)
_LOG_FACTOR: list[float] = [0.0] + [1.0 + math.log(c) for c in range(1, 256)]


def _log_factor(count: int) -> float:
    return _LOG_FACTOR[count] if count < len(_LOG_FACTOR) else 1.0 + math.log(count)


class HashingEmbedder:
    """A deterministic `Embedder` with no model and no network (the hashing trick over words and n-grams)."""

    def __init__(self, dim: int = 256):
        if dim < 1:
            raise ValueError("dim must be at least 1")
        self._dim = dim
        #: per kind of feature: feature -> (bucket, sign * weight)
        self._cache: dict[str, dict[str, tuple[int, float]]] = {kind: {} for kind in _WEIGHTS}
        self._cached = 0

    @property
    def model(self) -> str:
        return f"hashing-{self._dim}"

    @property
    def dim(self) -> int:
        return self._dim

    def vector(self, text: str) -> np.ndarray:
        buckets: list[int] = []
        weights: list[float] = []
        for kind, counts in _feature_counts(_tokens(text)):
            cache = self._cache[kind]
            for feat, count in counts.items():
                bucket, signed = cache.get(feat) or self._hash(kind, feat)
                buckets.append(bucket)
                weights.append(signed * _log_factor(count))
        # bincount adds the weights in order, as ``v[bucket] += weight`` one feature after another would
        v = np.bincount(np.array(buckets, dtype=np.intp), weights=np.array(weights, dtype=np.float64),
                        minlength=self._dim).astype(np.float64, copy=False)
        return normalize_rows(v)[0]

    def _hash(self, kind: str, feat: str) -> tuple[int, float]:
        """(bucket, sign * weight) of the feature ``<kind>:<feat>``, kept: the templates repeat the same words and
        n-grams."""
        h = int.from_bytes(hashlib.blake2b(f"{kind}:{feat}".encode(), digest_size=8).digest(), "little")
        sign = 1.0 if (h >> 63) & 1 else -1.0
        hit = (h % self._dim, sign * _WEIGHTS[kind])
        if self._cached >= _CACHE_MAX:
            for cache in self._cache.values():
                cache.clear()
            self._cached = 0
        self._cache[kind][feat] = hit
        self._cached += 1
        return hit

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self._dim), dtype=np.float32)
        return np.stack([self.vector(t) for t in texts]).astype(np.float32, copy=False)

    async def embed(self, texts: Sequence[str], *, request_id: str | None = None) -> EmbeddingResult:
        return EmbeddingResult(
            vectors=self.embed_texts(list(texts)), usage=Usage(), model=self.model, request_id=request_id or "hashing"
        )
