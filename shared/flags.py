"""The flags of the seed's table, with their exact defaults, strict parsing and the decisions they drive.

Environment variables give the defaults; runtime overrides live in the KV bucket ``xbot_flags`` (see
``shared.flagstore``), each change also a ``flag.changed`` event. Everything here is pure.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, Literal

import msgspec

from .errors import ConfigError

Source = Literal["default", "env", "override"]


class FlagSpec(msgspec.Struct, frozen=True):
    name: str
    kind: str  # bool | float | int | str | mode
    default: Any
    doc: str
    minimum: float | None = None
    maximum: float | None = None


FLAG_SPECS: tuple[FlagSpec, ...] = (
    FlagSpec("AI_QUOTA_CIRCUIT_OPEN", "bool", False, "true = block ALL LLM calls (and nothing else)"),
    FlagSpec("POSTING_DISABLED", "bool", True, "true = skip posting to X (but still plan and queue)"),
    FlagSpec("LIVE_POSTS", "bool", False, "true = allow actual X posting"),
    FlagSpec("REAL_METRICS_ENABLED", "bool", False, "true = collect real engagement from X"),
    FlagSpec("MODE", "mode", "shadow", "shadow = synthetic content, simulated X; live = real LLM and X"),
    FlagSpec("DAILY_OPENAI_LIMIT_USD", "float", 10.0, "daily LLM spend cap in USD", 0.0, 1e6),
    FlagSpec("DISABLE_LLM_WHEN_BUDGET_HIT", "bool", True, "true = refuse LLM calls once the cap is reached"),
    FlagSpec("DUP_COSINE_THRESHOLD", "float", 0.85, "uniqueness gate: block at cosine >= this", 0.0, 1.0),
    FlagSpec("SIMILARITY_THRESHOLD", "float", 0.85, "fallback uniqueness threshold", 0.0, 1.0),
    FlagSpec("MIN_QUALITY_SCORE", "float", 0.7, "quality gate: block below this score", 0.0, 1.0),
    FlagSpec("OPENAI_MODEL", "str", "gpt-4o-mini", "chat model for drafts"),
    FlagSpec("EMBED_MODEL", "str", "text-embedding-3-small", "embedding model"),
    FlagSpec("MAX_POSTS_PER_HOUR", "int", 1, "posts (not replies) per rolling hour", 0, 1000),
    FlagSpec("MIN_POST_INTERVAL_MINUTES", "int", 15, "minimum minutes between two posts", 0, 10080),
    FlagSpec("REPLY_MAX_PER_DAY", "int", 10, "replies per rolling 24 hours", 0, 10000),
    FlagSpec("REQUIRE_APPROVAL", "bool", False, "true = post only decisions approved by an operator"),
    FlagSpec("X_COOLDOWN_MINUTES", "int", 60, "pause posting this long after X answers 226", 0, 10080),
    FlagSpec("SUCCESS_ER_THRESHOLD", "float", 0.03, "learner: an outcome with ER above this is a success", 0.0, 1.0),
)
SPECS: dict[str, FlagSpec] = {s.name: s for s in FLAG_SPECS}

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


MAX_VALUE_LENGTH = 200


def parse_value(spec: FlagSpec, raw: str) -> Any:
    """Strict parse; raises ConfigError naming the variable (quoting at most the start of a bad value)."""
    if len(raw) > MAX_VALUE_LENGTH:
        raise ConfigError(f"{spec.name} is too long ({len(raw)} characters; at most {MAX_VALUE_LENGTH})")
    text = raw.strip()
    if spec.kind == "bool":
        low = text.lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ConfigError(f"{spec.name}={raw!r} is not a boolean (use true or false)")
    if spec.kind == "mode":
        low = text.lower()
        if low not in ("shadow", "live"):
            raise ConfigError(f"{spec.name}={raw!r} must be 'shadow' or 'live'")
        return low
    if spec.kind in ("float", "int"):
        try:
            value: float | int = float(text) if spec.kind == "float" else int(text)
        except ValueError:
            raise ConfigError(f"{spec.name}={raw!r} is not a{'n integer' if spec.kind == 'int' else ' number'}") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{spec.name}={raw!r} is not a finite number")
        if spec.minimum is not None and value < spec.minimum or spec.maximum is not None and value > spec.maximum:
            raise ConfigError(f"{spec.name}={raw!r} is out of range [{spec.minimum}, {spec.maximum}]")
        return value
    if not text:
        raise ConfigError(f"{spec.name} is empty")
    return text


def format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class Flags(msgspec.Struct, frozen=True, kw_only=True):
    """The effective flag values."""

    AI_QUOTA_CIRCUIT_OPEN: bool = False
    POSTING_DISABLED: bool = True
    LIVE_POSTS: bool = False
    REAL_METRICS_ENABLED: bool = False
    MODE: str = "shadow"
    DAILY_OPENAI_LIMIT_USD: float = 10.0
    DISABLE_LLM_WHEN_BUDGET_HIT: bool = True
    DUP_COSINE_THRESHOLD: float = 0.85
    SIMILARITY_THRESHOLD: float = 0.85
    MIN_QUALITY_SCORE: float = 0.7
    OPENAI_MODEL: str = "gpt-4o-mini"
    EMBED_MODEL: str = "text-embedding-3-small"
    MAX_POSTS_PER_HOUR: int = 1
    MIN_POST_INTERVAL_MINUTES: int = 15
    REPLY_MAX_PER_DAY: int = 10
    REQUIRE_APPROVAL: bool = False
    X_COOLDOWN_MINUTES: int = 60
    SUCCESS_ER_THRESHOLD: float = 0.03
    sources: dict[str, str] = {}

    @property
    def live(self) -> bool:
        return self.MODE == "live"


def load_env_flags(environ: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, Source]]:
    """Defaults overlaid with the environment. Raises ConfigError on the first invalid value."""
    values: dict[str, Any] = {}
    sources: dict[str, Source] = {}
    for spec in FLAG_SPECS:
        raw = environ.get(spec.name)
        if raw is None or raw == "" and spec.kind != "str":
            values[spec.name], sources[spec.name] = spec.default, "default"
        else:
            values[spec.name], sources[spec.name] = parse_value(spec, raw), "env"
    return values, sources


def effective_flags(
    env_values: Mapping[str, Any], env_sources: Mapping[str, Source], overrides: Mapping[str, str]
) -> Flags:
    """Env values with runtime overrides on top. An override that does not parse is ignored (never half-applied)."""
    values = dict(env_values)
    sources: dict[str, str] = dict(env_sources)
    for name, raw in overrides.items():
        spec = SPECS.get(name)
        if spec is None:
            continue
        try:
            values[name] = parse_value(spec, raw)
        except ConfigError:
            continue
        sources[name] = "override"
    return Flags(**values, sources=sources)


def flags_from_env(environ: Mapping[str, str]) -> Flags:
    values, sources = load_env_flags(environ)
    return Flags(**values, sources=dict(sources))


class Allowed(msgspec.Struct, frozen=True):
    allowed: bool
    reason: str


def is_llm_allowed(flags: Flags) -> Allowed:
    """Only AI_QUOTA_CIRCUIT_OPEN blocks the LLM; POSTING_DISABLED never does."""
    if flags.AI_QUOTA_CIRCUIT_OPEN:
        return Allowed(False, "circuit_open")
    return Allowed(True, "ok")


def is_posting_allowed(flags: Flags) -> Allowed:
    """Posting to X needs POSTING_DISABLED=false AND LIVE_POSTS=true."""
    if flags.POSTING_DISABLED:
        return Allowed(False, "posting_disabled")
    if not flags.LIVE_POSTS:
        return Allowed(False, "live_posts_off")
    return Allowed(True, "ok")


def is_real_analytics_allowed(flags: Flags) -> Allowed:
    if not flags.REAL_METRICS_ENABLED:
        return Allowed(False, "real_metrics_disabled")
    return Allowed(True, "ok")


def flag_summary(flags: Flags) -> str:
    """One line for logs and ``/env``."""
    llm, post, real = is_llm_allowed(flags), is_posting_allowed(flags), is_real_analytics_allowed(flags)

    def onoff(a: Allowed) -> str:
        return "ON" if a.allowed else f"OFF({a.reason})"

    return (
        f"MODE={flags.MODE} LLM={onoff(llm)} POSTING={onoff(post)} REAL_METRICS={onoff(real)} "
        f"BUDGET=${flags.DAILY_OPENAI_LIMIT_USD:g}/day MODEL={flags.OPENAI_MODEL}"
    )


def env_view(flags: Flags) -> dict[str, Any]:
    """The seed's ``GET /env`` JSON."""
    return {
        "AI_QUOTA_CIRCUIT_OPEN": flags.AI_QUOTA_CIRCUIT_OPEN,
        "POSTING_DISABLED": flags.POSTING_DISABLED,
        "LIVE_POSTS": flags.LIVE_POSTS,
        "REAL_METRICS_ENABLED": flags.REAL_METRICS_ENABLED,
        "MODE": flags.MODE,
        "OPENAI_MODEL": flags.OPENAI_MODEL,
        "llmAllowed": is_llm_allowed(flags).allowed,
        "postingAllowed": is_posting_allowed(flags).allowed,
        "analyticsAllowed": is_real_analytics_allowed(flags).allowed,
        "summary": flag_summary(flags),
    }


FlagsProvider = Callable[[], Flags]
