"""The profile of one X account: who speaks, what about, when, within which limits, through which publisher.

Every type is a frozen ``msgspec.Struct`` of plain values (strings, numbers, tuples, a ``dict[str, str]``),
so a profile goes into an event payload with ``msgspec`` and comes back equal. ``shared.accounts.loader``
builds and validates profiles from ``accounts.toml`` (or from today's single-account environment); the types
here check nothing themselves.
"""

from __future__ import annotations

import hashlib
import re
from typing import Literal

import msgspec

from shared.flags import SPECS
from shared.learning.arms import DEFAULT_ANGLES, content_arm

#: the id of the one account built from the environment when no accounts file exists
DEFAULT_ACCOUNT = "default"

#: publishers an account may use today ("api" comes later)
PUBLISHERS: tuple[str, ...] = ("simulated", "browser")

SessionKind = Literal["file", "env"]

_ENV_VAR = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class SessionRef(msgspec.Struct, frozen=True, kw_only=True):
    """Where an account's X session is kept: ``file:<path>`` (a Playwright storage_state) or ``env:<VAR>``
    (the same, base64, in an environment variable). A reference, never the secret itself."""

    kind: SessionKind
    target: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.target}"


def parse_session_ref(text: str) -> SessionRef:
    """``"file:/secrets/a.json"`` / ``"env:X_SESSION_B64"`` -> ``SessionRef``; ``ValueError`` naming what is wrong."""
    kind, sep, target = text.strip().partition(":")
    if not sep or kind not in ("file", "env"):
        raise ValueError(f"{text!r} is not a session reference (use \"file:<path>\" or \"env:<VAR>\")")
    target = target.strip()
    if not target:
        raise ValueError(f"{text!r} names no {'path' if kind == 'file' else 'variable'}")
    if kind == "env":
        if not _ENV_VAR.match(target):
            raise ValueError(f"{text!r}: {target!r} is not an environment variable name")
        return SessionRef(kind="env", target=target)
    return SessionRef(kind="file", target=target)


class Persona(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Who speaks: a name, a voice, and what the account never says."""

    name: str = ""
    voice: str = ""
    never_say: tuple[str, ...] = ()

    def text(self) -> str:
        """The persona's text as the size limit counts it: name, voice and never_say, one per line."""
        return "\n".join(part for part in (self.name, self.voice, *self.never_say) if part)


class Limits(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How much the account may do. The defaults are the flags' defaults (posts_per_day = 24 an hour)."""

    posts_per_day: int = 24 * int(SPECS["MAX_POSTS_PER_HOUR"].default)
    max_posts_per_hour: int = int(SPECS["MAX_POSTS_PER_HOUR"].default)
    min_post_interval_minutes: int = int(SPECS["MIN_POST_INTERVAL_MINUTES"].default)
    replies_per_day: int = int(SPECS["REPLY_MAX_PER_DAY"].default)


class Replies(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Whom the account answers: X handles (without @) and X searches."""

    targets: tuple[str, ...] = ()
    searches: tuple[str, ...] = ()


class LlmChoice(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The account's chat model and its own daily LLM budget."""

    model: str = str(SPECS["OPENAI_MODEL"].default)
    daily_budget_usd: float = float(SPECS["DAILY_OPENAI_LIMIT_USD"].default)


class AccountProfile(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One X account. ``session`` is a reference (``file:<path>`` / ``env:<VAR>``) or ``None``;
    ``active_hours`` is ``(start, end)``, local hours of ``timezone``, end excluded; ``flags`` are per-account
    flag overrides, each value in its canonical text (``"true"``, ``"0.9"``, ``"5"``)."""

    id: str
    username: str = ""
    publisher: str = "simulated"
    session: str | None = None
    languages: tuple[str, ...] = ("en",)
    timezone: str = "UTC"
    active_hours: tuple[int, int] = (0, 24)
    topics: tuple[str, ...]
    angles: tuple[str, ...] = DEFAULT_ANGLES
    facts: tuple[str, ...] = ()
    example_posts: tuple[str, ...] = ()
    banned_phrases: tuple[str, ...] = ()
    persona: Persona = Persona()
    limits: Limits = Limits()
    replies: Replies = Replies()
    llm: LlmChoice = LlmChoice()
    flags: dict[str, str] = {}

    def content_arms(self) -> tuple[str, ...]:
        """Every topic x angle of the account, topic-major (``"<topic>:<angle>"``)."""
        return tuple(content_arm(t, a) for t in self.topics for a in self.angles)

    def session_ref(self) -> SessionRef | None:
        """The parsed ``session`` (``None`` when the account has none); ``ValueError`` if it does not parse."""
        return None if self.session is None else parse_session_ref(self.session)


def encode_profile(profile: AccountProfile) -> bytes:
    """The canonical JSON of a profile: every field, keys sorted (what ``profile_digest`` hashes)."""
    return msgspec.json.encode(profile, order="sorted")


def decode_profile(data: bytes | str) -> AccountProfile:
    """The inverse of ``encode_profile`` (or of any msgspec JSON encoding of a profile)."""
    return msgspec.json.decode(data, type=AccountProfile)


def profile_digest(profile: AccountProfile) -> str:
    """sha256 (hex) of the canonical JSON: equal profiles have equal digests, in any run or process."""
    return hashlib.sha256(encode_profile(profile)).hexdigest()
