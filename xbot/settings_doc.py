"""Every setting the code reads, with its default and meaning: the source of README's configuration table and of
`xbot config`."""

from __future__ import annotations

import importlib
from typing import Any

from pydantic_core import PydanticUndefined

from shared.config import CommonSettings
from shared.flags import FLAG_SPECS, format_value

from .supervisor import SERVICES

COMMON_DOCS = {
    "ACCOUNT_LEASE_SECONDS": "split the accounts across a service's replicas with leases of this many seconds "
                             "(0 = off: every replica serves every account)",
    "XBOT_ACCOUNTS_FILE": "the accounts file (TOML, see docs/accounts.example.toml); empty: $XBOT_HOME/accounts.toml "
                          "if present, else one account `default` from this environment",
    "NATS_URL": "NATS server(s), comma-separated",
    "XBOT_NAMESPACE": "prefix of streams, subjects and buckets",
    "STREAM_REPLICAS": "JetStream replicas for streams and buckets (3 on a cluster)",
    "STREAM_MAX_AGE_DAYS": "event retention in days (0 = keep forever)",
    "DUPLICATE_WINDOW_SECONDS": "JetStream duplicate window for Nats-Msg-Id dedup",
    "LOG_FORMAT": "auto (JSON when not a terminal) | json | console",
    "LOG_LEVEL": "DEBUG | INFO | WARNING | ERROR",
    "SHADOW_CLOCK_SPEED": "shadow mode clock speed (60 = an hour a minute); live mode ignores it",
    "SERVICE_HEALTH_PORT": "port for /healthz and /readyz of a service (0 = off)",
    "XBOT_HOME": "data directory of `xbot up`",
    "SHADOW_SEED": "seed of the simulated audience and synthetic writer",
    "SNAPSHOT_EVERY_EVENTS": "save a service's state to the object store after this many new events (0 = never)",
    "SNAPSHOT_CHECK_SECONDS": "how often a service checks whether a snapshot is due",
    "DATABASE_URL": "PostgreSQL for the read models",
    "GATEWAY_HOST": "address the gateway binds",
    "GATEWAY_PORT": "port of the gateway (API, dashboard, /metrics)",
    "ADMIN_TOKEN": "token for /admin/*; unset = admin endpoints answer 403",
    "READY_MAX_LAG": "/readyz fails when the projector is more events behind than this",
    "PROJECTOR_BATCH": "events per projector transaction",
    "PROJECTOR_FLUSH_MS": "longest wait before a partial batch is written",
    "DB_POOL_SIZE": "PostgreSQL connections of the gateway",
    "OPENAI_API_KEY": "OpenAI key; required when MODE=live",
    "OPENAI_BASE_URL": "OpenAI-compatible endpoint (unset = api.openai.com)",
    "LLM_PRICES_JSON": "price table override, USD per 1M tokens per model (JSON)",
    "LLM_TIMEOUT_SECONDS": "timeout of one LLM call",
    "LLM_MAX_OUTPUT_TOKENS": "max completion tokens (also the budget estimate)",
    "LLM_JSON_MODE": "json_schema | json_object structured output",
    "LLM_DRAFT_RETRIES": "more calls a draft may make when an answer is unusable even after the free repairs",
    "UNIQUENESS_WINDOW_DAYS": "uniqueness gate compares against every queued/posted decision this recent",
    "LOCAL_EMBED_DIM": "dimension of the local hashing embedder (shadow mode)",
    "ACCOUNT_FACTS": "what the account may say about itself (JSON list of strings); live drafts claiming anything "
                     "else (results, statistics, money, employers, customers) are skipped as unsupported_claim",
    "ACCOUNT_LANGUAGES": "languages the account writes in (comma-separated: en, es, de, fr)",
    "PLAN_INTERVAL_MINUTES": "plan job schedule (service clock); 0 = only on demand",
    "PLAN_BATCH": "drafts per plan run",
    "PLAN_THREAD_RATIO": "share of drafts written as threads",
    "REPLY_INTERVAL_MINUTES": "reply job schedule (service clock); 0 = only on demand",
    "REPLY_TARGET_ACCOUNTS": "accounts whose tweets the replier answers (comma-separated)",
    "REPLY_SEARCH_QUERIES": "searches whose tweets the replier answers (comma-separated)",
    "REPLY_MAX_AGE_HOURS": "never answer tweets older than this",
    "REPLY_BATCH": "replies drafted per run",
    "REPLY_CANDIDATES_PER_SOURCE": "tweets read per account or query",
    "X_USERNAME": "our X account (the poster reconciles against it, the collector checks pages belong to it)",
    "X_BASE_URL": "X's base URL (point at a staging imitation in tests)",
    "CHROMIUM_PATH": "Chromium binary (default /usr/bin/chromium when present)",
    "X_SESSION_FILE": "Playwright storage state with auth_token and ct0 cookies",
    "X_SESSION_B64": "the same storage state, base64 (for secrets)",
    "X_ARTIFACTS_DIR": "where screenshots and page HTML of failures go",
    "X_DWELL_MIN_MS": "human-like pause, lower bound",
    "X_DWELL_MAX_MS": "human-like pause, upper bound",
    "X_TIMEOUT_MS": "browser operation timeout",
    "X_HEADLESS": "run Chromium headless",
    "POSTING_INTERVAL_MINUTES": "posting job schedule (service clock)",
    "POSTING_BATCH": "due decisions taken per posting run (seed: 5)",
    "POSTING_MAX_ATTEMPTS": "attempts per decision before it fails",
    "POST_RETRY_BASE_SECONDS": "exponential backoff base between attempts",
    "POST_RETRY_INLINE_MAX_SECONDS": "longest backoff waited inside one run (longer ones wait for the next run)",
    "RECONCILE_GRACE_MINUTES": "an in-doubt attempt not found on the timeline after this is retried",
    "RECONCILE_ATTENTION_MINUTES": "an attempt still in doubt after this (timeline unreadable, or landed and not "
    "found) is not retried: the operator is asked (decision.attention_needed)",
    "RATE_LIMIT_BACKOFF_SECONDS": "a 429 without X's reset header pauses posting this long, doubling per 429 in a row",
    "RECONCILE_TIMELINE_LIMIT": "own-timeline tweets read when reconciling",
    "XBOT_TEST_CRASH_AT": "TEST ONLY: kill the poster at after_claim / after_click / after_readback",
    "COLLECT_INTERVAL_HOURS": "collect job schedule (service clock)",
    "COLLECT_HORIZONS_HOURS": "hours after posting at which outcomes are read; fractions allowed (0.25 = +15 min)",
    "COLLECT_MAX_ATTEMPTS": "reads of one outcome before it is given up",
    "COLLECT_MAX_PER_RUN": "outcomes read per run",
    "LEARN_INTERVAL_MINUTES": "learn job schedule (service clock)",
    "LEARN_EVERY_N_OUTCOMES": "also learn after every N new outcomes (0 = off)",
}


def settings_classes() -> dict[str, type[CommonSettings]]:
    found: dict[str, type[CommonSettings]] = {}
    for svc in SERVICES:
        try:
            mod = importlib.import_module(f"services.{svc}.config")
        except ImportError:
            continue
        for obj in vars(mod).values():
            if isinstance(obj, type) and issubclass(obj, CommonSettings) and obj.__module__ == mod.__name__:
                found[svc] = obj
    return found


def _default(field: Any) -> str:
    d = field.default
    if d is PydanticUndefined:
        return "(required)"
    if d is None or d == "":
        return "(unset)"
    return format_value(d)


def rows() -> list[tuple[str, str, str, str]]:
    """(variable, default, used by, meaning)."""
    out: dict[str, list[Any]] = {}
    for spec in FLAG_SPECS:
        out[spec.name] = [spec.name, format_value(spec.default), {"flag (all)"}, spec.doc]
    for name, f in CommonSettings.model_fields.items():
        out[name] = [name, _default(f), {"all"}, COMMON_DOCS.get(name, f.description or "")]
    for svc, cls in settings_classes().items():
        for name, f in cls.model_fields.items():
            if name in CommonSettings.model_fields:
                continue
            if name not in out:
                out[name] = [name, _default(f), set(), COMMON_DOCS.get(name, f.description or "")]
            out[name][2].add(svc)
            if not out[name][3] and f.description:
                out[name][3] = f.description
    return [(r[0], r[1], ", ".join(sorted(r[2])), r[3]) for r in out.values()]


def markdown_table() -> str:
    lines = ["| variable | default | used by | meaning |", "|---|---|---|---|"]
    for var, default, used, doc in rows():
        lines.append(f"| `{var}` | `{default}` | {used} | {doc.replace('|', '/')} |")
    return "\n".join(lines)


START, END = "<!-- config:start -->", "<!-- config:end -->"


def render_readme(text: str) -> str:
    """README with its configuration table regenerated from the code."""
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    return f"{head}{START}\n{markdown_table()}\n{END}{tail}"


if __name__ == "__main__":
    import sys
    from pathlib import Path

    readme = Path(sys.argv[1] if len(sys.argv) > 1 else "README.md")
    readme.write_text(render_readme(readme.read_text()))
    print(f"configuration table written to {readme}")
