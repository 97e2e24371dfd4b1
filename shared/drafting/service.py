"""The wiring every drafting service (the planner, the replier) shares: the recent-decisions state evolved from
the log, catching up with the log before a run, the writers, the health report and the service parts that carry
them. Each bootstrap adds only what is its own (its job, its schedule, its dependencies)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from shared.bus import ReadItem
from shared.events import DEFAULT_ACCOUNT
from shared.llm.writers import LiveWriters, LLMSettings, LocalWriter, llm_writers
from shared.service import JobHandler, ServiceContext, ServiceParts

from .state import INTERESTED, AccountDrafts, RecentDecisions


@dataclass
class Drafting:
    """What ``wire_drafting(ctx, settings)`` wired: the state and the writers, and the runtime's hooks over them."""

    ctx: ServiceContext
    settings: LLMSettings
    #: one recent-decisions state per account
    states: AccountDrafts
    #: shadow mode's writer
    local: LocalWriter
    #: live mode's writers (``live.current()`` for the current flags; None without OPENAI_API_KEY)
    live: LiveWriters

    @property
    def state(self) -> RecentDecisions:
        """The default account's state."""
        return self.states.of(DEFAULT_ACCOUNT)

    def apply(self, item: ReadItem) -> None:
        self.states.apply(item.event)

    async def catch_up(self) -> None:
        """Bring the state up to the log's end before deciding (other replicas' decisions)."""
        await self.ctx.catch_up(timeout=60.0)

    def health(self) -> dict[str, object]:
        return {"mode": self.ctx.flags.current().MODE, **self.states.summary()}

    def parts(self, *, jobs: Mapping[str, JobHandler], schedules: Mapping[str, float]) -> ServiceParts:
        """The service's parts: its ``jobs`` and ``schedules``, and the state, its projection and health."""
        return ServiceParts(
            jobs=dict(jobs),
            schedules=dict(schedules),
            apply=self.apply,
            state=self.states,
            state_config={"UNIQUENESS_WINDOW_DAYS": self.settings.UNIQUENESS_WINDOW_DAYS},
            interested=INTERESTED,
            on_stop=self.live.close,
            health=self.health,
        )


async def wire_drafting(ctx: ServiceContext, settings: LLMSettings) -> Drafting:
    """Check the settings for the current mode (``settings.check_live``: a ConfigError stops the service at
    start), build the empty state and the writers over the shared budget."""
    settings.check_live(ctx.flags.current())
    states = AccountDrafts(uniqueness_window_days=settings.UNIQUENESS_WINDOW_DAYS)
    local, live = await llm_writers(ctx, settings)
    return Drafting(ctx=ctx, settings=settings, states=states, local=local, live=live)
