"""The flags in force for one account: the stack's flags with the account's profile over them.

An account may make the stack stricter, never looser, on the switches that keep a real account safe: posting
stays disabled, the LLM circuit stays open and approval stays required when either the stack or the account
says so, and real posts or real metrics need both to allow them. Its limits (posts per hour, minimum interval,
replies per day), its model and its other overrides are its own.
"""

from __future__ import annotations

from typing import Any

import msgspec

from shared.flags import SPECS, Flags, parse_value

from .profile import AccountProfile

#: either the stack or the account turns these on
STRICTER_WHEN_TRUE: frozenset[str] = frozenset({"POSTING_DISABLED", "AI_QUOTA_CIRCUIT_OPEN", "REQUIRE_APPROVAL"})
#: both the stack and the account must turn these on
BOTH_MUST_ALLOW: frozenset[str] = frozenset({"LIVE_POSTS", "REAL_METRICS_ENABLED"})


def account_flags(flags: Flags, profile: AccountProfile, *, limits: bool = True) -> Flags:
    """``flags`` for ``profile``'s account. ``limits=False`` keeps the stack's limits and model (the default
    account built from the environment, whose limits *are* the flags)."""
    changes: dict[str, Any] = {}
    if limits:
        changes.update(
            MAX_POSTS_PER_HOUR=profile.limits.max_posts_per_hour,
            MIN_POST_INTERVAL_MINUTES=profile.limits.min_post_interval_minutes,
            REPLY_MAX_PER_DAY=profile.limits.replies_per_day,
            OPENAI_MODEL=profile.llm.model,
        )
    for name, raw in profile.flags.items():
        value = parse_value(SPECS[name], raw)
        if name in STRICTER_WHEN_TRUE:
            value = bool(getattr(flags, name)) or bool(value)
        elif name in BOTH_MUST_ALLOW:
            value = bool(getattr(flags, name)) and bool(value)
        changes[name] = value
    changes = {k: v for k, v in changes.items() if getattr(flags, k) != v}
    return msgspec.structs.replace(flags, **changes) if changes else flags
