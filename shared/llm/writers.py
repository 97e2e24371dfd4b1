"""What a service that drafts with the LLM needs, whatever it drafts: its settings (``LLMSettings``), the
``Writer`` port it drafts and embeds through, shadow mode's ``LocalWriter`` (synthetic writer, local hashing
embedder), live mode's ``LiveWriters`` (``GuardedLLM`` over OpenAI and the shared KV budget), and
``llm_writers`` to wire both for a service."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, Protocol

from pydantic import Field, field_validator

from shared.config import CommonSettings
from shared.errors import ConfigError
from shared.gates import ClaimPolicy


class LLMSettings(CommonSettings):
    """Settings of a service that drafts with the LLM (the planner, the replier). OPENAI_MODEL, EMBED_MODEL,
    the budget and the circuit are flags (runtime-changeable); these are the rest."""

    #: required when MODE=live: the service stops at start with one line without it
    OPENAI_API_KEY: str = ""
    #: an OpenAI-compatible endpoint (empty = OpenAI's own)
    OPENAI_BASE_URL: str = ""
    #: per-model prices overriding the built-in table, e.g. {"gpt-4o-mini": [0.15, 0.6]}
    LLM_PRICES_JSON: str = ""
    #: seconds before one LLM call counts as failed (reason timeout)
    LLM_TIMEOUT_SECONDS: float = Field(30.0, gt=0, le=600)
    #: completion tokens a draft may use (what the budget reserves per call)
    LLM_MAX_OUTPUT_TOKENS: int = Field(700, ge=50, le=16000)
    #: json_schema (structured outputs) or json_object (plain JSON mode, for servers without the former)
    LLM_JSON_MODE: str = Field("json_schema", pattern=r"^(json_schema|json_object)$")
    #: how many more calls a draft may make when an answer comes back unusable even after the free repairs
    LLM_DRAFT_RETRIES: int = Field(1, ge=0, le=3)
    #: keep this many days of queued/posted decisions in the uniqueness check
    UNIQUENESS_WINDOW_DAYS: float = Field(30.0, gt=0, le=3650)
    #: dimensions of the local hashing embedder of shadow mode
    LOCAL_EMBED_DIM: int = Field(256, ge=16, le=8192)
    #: what the account may say about itself, a JSON list of strings (unset = nothing): a live draft's
    #: first-person results, statistics, money, named employers or customers must be held by one of them
    #: (the claims gate); the live prompt passes them as the only facts the model may state. An account
    #: profile will supply the same list.
    ACCOUNT_FACTS: str = ""
    #: languages the account writes in (comma-separated: en, es, de, fr); the claims gate reads their
    #: first-person markers, the prompt asks for them
    ACCOUNT_LANGUAGES: str = "en"

    @field_validator("LLM_PRICES_JSON")
    @classmethod
    def _prices(cls, v: str) -> str:
        from .pricing import PriceTable

        try:
            PriceTable.from_json(v)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        return v

    @field_validator("ACCOUNT_FACTS")
    @classmethod
    def _facts(cls, v: str) -> str:
        from shared.gates.claims import parse_facts

        parse_facts(v)  # ValueError -> "ACCOUNT_FACTS is invalid: ..."
        return v

    @field_validator("ACCOUNT_LANGUAGES")
    @classmethod
    def _languages(cls, v: str) -> str:
        from shared.gates.claims import parse_languages

        parse_languages(v)
        return v

    def claim_policy(self) -> ClaimPolicy:
        """The account's facts and languages, as the claims gate and the prompt take them."""
        return ClaimPolicy.from_settings(self.ACCOUNT_FACTS, self.ACCOUNT_LANGUAGES)

    def check_live(self, flags: Any) -> None:
        """MODE=live needs OPENAI_API_KEY: raise the one-line ConfigError the runtime prints at start."""
        if getattr(flags, "MODE", "shadow") == "live" and not self.OPENAI_API_KEY.strip():
            raise ConfigError("OPENAI_API_KEY is missing (MODE=live needs it)")


class Writer(Protocol):
    """Drafts and embeds: ``GuardedLLM`` in live mode, ``LocalWriter`` in shadow mode."""

    async def draft(self, request: Any, *, correlation_id: str | None = None) -> Any: ...

    async def embed(self, texts: Sequence[str], *, correlation_id: str | None = None, account: str = "default",
                    account_budget_usd: float | None = None) -> Any: ...


class LocalWriter:
    """Shadow mode's writer: the synthetic writer and the local hashing embedder (no network, no cost, no
    ``llm.*`` events: nothing is called)."""

    def __init__(self, *, embed_dim: int = 256) -> None:
        from .synthetic import HashingEmbedder, SyntheticWriter

        self.llm = SyntheticWriter()
        self.embedder = HashingEmbedder(embed_dim)

    async def draft(self, request: Any, *, correlation_id: str | None = None) -> Any:
        return await self.llm.draft(request)

    async def embed(self, texts: Sequence[str], *, correlation_id: str | None = None, account: str = "default",
                    account_budget_usd: float | None = None) -> Any:
        return await self.embedder.embed(texts)


class LiveWriters:
    """Live mode's writer: ``GuardedLLM`` over the OpenAI adapters, the shared KV budget and ``emit``.

    Built lazily per (OPENAI_MODEL, EMBED_MODEL) flag values, so a runtime model change applies on the next
    call; ``None`` when OPENAI_API_KEY is not set.
    """

    def __init__(
        self,
        settings: LLMSettings,
        *,
        budget_store: Any,
        flags: Callable[[], Any],
        clock: Callable[[], datetime],
        emit: Callable[[Any], Awaitable[None]],
    ) -> None:
        self.settings = settings
        self.budget_store = budget_store
        self.flags = flags
        self.clock = clock
        self.emit = emit
        self._built: dict[tuple[str, str], Any] = {}

    def current(self) -> Any | None:
        s = self.settings
        if not s.OPENAI_API_KEY.strip():
            return None
        f = self.flags()
        key = (f.OPENAI_MODEL, f.EMBED_MODEL)
        guarded = self._built.get(key)
        if guarded is None:
            from . import GuardedLLM, PriceTable, openai_adapters

            llm, embedder = openai_adapters(
                s.OPENAI_API_KEY,
                base_url=s.OPENAI_BASE_URL or None,
                model=f.OPENAI_MODEL,
                embed_model=f.EMBED_MODEL,
                timeout=s.LLM_TIMEOUT_SECONDS,
                max_output_tokens=s.LLM_MAX_OUTPUT_TOKENS,
                json_mode=s.LLM_JSON_MODE,
            )
            guarded = GuardedLLM(
                llm, embedder, self.budget_store, self.flags, self.clock, self.emit,
                prices=PriceTable.from_json(s.LLM_PRICES_JSON), draft_retries=s.LLM_DRAFT_RETRIES,
            )
            self._built[key] = guarded
        return guarded

    async def close(self) -> None:
        for guarded in self._built.values():
            client = getattr(guarded.llm, "client", None)
            if client is not None:
                with contextlib.suppress(Exception):
                    await client.close()
        self._built.clear()


async def llm_writers(ctx: Any, settings: LLMSettings) -> tuple[LocalWriter, LiveWriters]:
    """Wire a drafting service (``ctx`` is its ``ServiceContext``): the shadow writer, and the live writer
    factory over the shared KV budget that reports every call as an ``llm.*`` event on the bus."""
    from . import KVBudgetStore, record_to_event

    bus = ctx.bus

    async def emit(record: Any) -> None:
        await bus.publish(record_to_event(record, service=ctx.name))

    budget = KVBudgetStore(await bus.kv("budget"))
    live = LiveWriters(settings, budget_store=budget, flags=ctx.flags.current, clock=ctx.clock.now, emit=emit)
    return LocalWriter(embed_dim=settings.LOCAL_EMBED_DIM), live
