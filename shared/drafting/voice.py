"""What an account's profile asks of its drafts: the arms it chooses between, the facts it may state, the voice
the prompt asks for and the phrases it never uses. One ``AccountVoice`` per account, for the planner and the
replier alike."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import msgspec

from shared.accounts.profile import AccountProfile
from shared.gates import ClaimPolicy
from shared.learning.arms import HOURS
from shared.llm.port import DraftRequest


class AccountVoice(msgspec.Struct, frozen=True, kw_only=True):
    account: str
    #: the content arms (``topic:angle``); empty: the built-in catalogue
    arms: tuple[str, ...] = ()
    topics: tuple[str, ...] = ()
    claims: ClaimPolicy = ClaimPolicy()
    #: the prompt's niche, persona, what it never says and example posts (all empty: the built-in prompt)
    niche: tuple[str, ...] = ()
    persona: str = ""
    never_say: tuple[str, ...] = ()
    examples: tuple[str, ...] = ()
    banned_phrases: tuple[str, ...] = ()
    #: when the account posts: local hours ``[start, end)`` of its timezone
    timezone: str = "UTC"
    active_hours: tuple[int, int] = (0, 24)
    #: the account's own daily LLM budget (None: the stack's DAILY_OPENAI_LIMIT_USD alone)
    budget_usd: float | None = None

    def utc_hours(self, now: datetime) -> tuple[int, ...]:
        """The UTC hours whose local hour (on ``now``'s day, in the account's timezone) is an active one."""
        start, end = self.active_hours
        if (start, end) == (0, 24):
            return HOURS
        tz = ZoneInfo(self.timezone)
        day = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        return tuple(h for h in HOURS if start <= day.replace(hour=h).astimezone(tz).hour < end)


def voice_of(profile: AccountProfile, *, builtin: bool, claims: ClaimPolicy | None = None) -> AccountVoice:
    """The voice of ``profile``. ``builtin``: the default account built from the environment, which drafts
    exactly as a single-account stack always did (the built-in arms and prompt; ``claims`` from the settings)."""
    policy = claims or ClaimPolicy(facts=tuple(profile.facts), languages=tuple(profile.languages))
    if builtin:
        return AccountVoice(account=profile.id, claims=policy, topics=tuple(profile.topics),
                            banned_phrases=tuple(profile.banned_phrases), timezone=profile.timezone,
                            active_hours=tuple(profile.active_hours))  # type: ignore[arg-type]
    persona = profile.persona
    who = ", ".join(x for x in (persona.name, persona.voice) if x)
    return AccountVoice(
        account=profile.id, arms=profile.content_arms(), topics=tuple(profile.topics), claims=policy,
        niche=tuple(profile.topics), persona=who, never_say=tuple(persona.never_say),
        examples=tuple(profile.example_posts), banned_phrases=tuple(profile.banned_phrases),
        timezone=profile.timezone, active_hours=tuple(profile.active_hours),  # type: ignore[arg-type]
        budget_usd=float(profile.llm.daily_budget_usd),
    )


def with_voice(request: DraftRequest, voice: AccountVoice | None) -> DraftRequest:
    """``request`` carrying the account's voice into the prompt (unchanged without one)."""
    if voice is None:
        return request
    return msgspec.structs.replace(request, niche=voice.niche, persona=voice.persona, never_say=voice.never_say,
                                   examples=voice.examples, account=voice.account,
                                   account_budget_usd=voice.budget_usd)

