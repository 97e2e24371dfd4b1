"""The arms the learner chooses between, and the small frozen records it keeps about them.

A content arm is a ``<topic>:<angle>`` string (``"ai_tools:how_to"``); a reply arm is one reply style
(``"add_insight"``). Timing arms are the 24 hourly slots (0..23, UTC), spelled ``"hour:<h>"`` when stored
as the ``timing_arm`` text column.
"""

from __future__ import annotations

import msgspec

CONTENT_SCOPE = "content"
REPLY_SCOPE = "reply"
SCOPES: tuple[str, ...] = (CONTENT_SCOPE, REPLY_SCOPE)

#: Topics of a tech / AI / productivity account.
DEFAULT_TOPICS: tuple[str, ...] = (
    "ai_tools",
    "llm_engineering",
    "productivity",
    "developer_workflow",
    "startups",
    "automation",
    "career_growth",
    "tech_trends",
)

#: How a post approaches its topic.
DEFAULT_ANGLES: tuple[str, ...] = ("how_to", "contrarian", "story", "data", "question")

#: Reply styles (the arms of the ``reply`` scope).
REPLY_ARMS: tuple[str, ...] = ("add_insight", "ask_question", "agree_extend", "counterpoint", "resource")

HOURS: tuple[int, ...] = tuple(range(24))

ARM_SEPARATOR = ":"


def content_arm(topic: str, angle: str) -> str:
    """The arm name of a topic and an angle: ``"<topic>:<angle>"``."""
    if ARM_SEPARATOR in topic or ARM_SEPARATOR in angle:
        raise ValueError(f"topic and angle must not contain {ARM_SEPARATOR!r}: {topic!r}, {angle!r}")
    return f"{topic}{ARM_SEPARATOR}{angle}"


def split_arm(arm: str) -> tuple[str, str]:
    """``"<topic>:<angle>"`` -> ``(topic, angle)``; raises ``ValueError`` for anything else."""
    topic, sep, angle = arm.partition(ARM_SEPARATOR)
    if not sep or not topic or not angle or ARM_SEPARATOR in angle:
        raise ValueError(f"not a content arm (want '<topic>:<angle>'): {arm!r}")
    return topic, angle


def default_content_arms(
    topics: tuple[str, ...] = DEFAULT_TOPICS, angles: tuple[str, ...] = DEFAULT_ANGLES
) -> tuple[str, ...]:
    """Every topic × angle, in catalogue order (topic-major)."""
    return tuple(content_arm(t, a) for t in topics for a in angles)


def timing_arm(hour: int) -> str:
    """The ``timing_arm`` text of an hourly slot: ``"hour:<h>"``."""
    if not 0 <= int(hour) <= 23:
        raise ValueError(f"hour out of range 0..23: {hour!r}")
    return f"hour:{int(hour)}"


def hour_of_timing_arm(text: str) -> int:
    """``"hour:<h>"`` -> ``h``; raises ``ValueError`` for anything else."""
    prefix, sep, rest = text.partition(":")
    if prefix != "hour" or not sep or not rest.isdigit() or not 0 <= int(rest) <= 23:
        raise ValueError(f"not a timing arm (want 'hour:<0..23>'): {text!r}")
    return int(rest)


class ArmPosterior(msgspec.Struct, frozen=True, kw_only=True):
    """Beta posterior of one arm: ``alpha = prior_alpha + successes``, ``beta = prior_beta + failures``."""

    arm: str
    scope: str
    alpha: float
    beta: float
    successes: int
    failures: int

    @property
    def n(self) -> int:
        return self.successes + self.failures

    @property
    def mean(self) -> float:
        return self.alpha / (self.alpha + self.beta)


class SlotStats(msgspec.Struct, frozen=True, kw_only=True):
    """Engagement observed in one hourly slot; ``mean_er`` is ``None`` when nothing was observed (n == 0)."""

    hour: int
    n: int
    mean_er: float | None
    sum_er: float
