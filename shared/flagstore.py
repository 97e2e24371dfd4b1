"""Runtime flag overrides: a KV bucket every replica watches, each change also a ``flag.changed`` event."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from typing import Any

import structlog

from .errors import ConfigError
from .events import FlagChanged, new_event_id, utcnow
from .flags import SPECS, Flags, Source, effective_flags, format_value, load_env_flags, parse_value

log = structlog.get_logger("flags")

INTERNAL_PREFIX = "_"


class FlagStore:
    """``current()`` is always the env defaults with the latest overrides on top (no restart needed)."""

    def __init__(self, bus: Any, environ: Mapping[str, str]):
        self.bus = bus
        self._env_values, self._env_sources = load_env_flags(environ)
        self._overrides: dict[str, str] = {}
        self._flags: Flags = effective_flags(self._env_values, self._env_sources, {})
        self._kv: Any = None
        self._task: asyncio.Task[None] | None = None
        self._poller: asyncio.Task[None] | None = None
        self._watcher: Any = None
        self.poll_every_s = 5.0
        self._changed = asyncio.Event()
        self.version = 0
        #: the bucket stream's last sequence read just before the last full load: every put or delete since
        #: moves it, so ``refresh`` can tell "nothing changed" with one request instead of a read per flag
        self._loaded_seq: int | None = None

    async def start(self, *, watch: bool = True) -> None:
        """Load the overrides; with ``watch`` (services) keep following them, without (one-shot CLI) not."""
        self._kv = await self.bus.kv("flags")
        await self._load_all()
        if watch:
            self._task = asyncio.create_task(self._watch(), name="flags-watch")
            self._poller = asyncio.create_task(self._poll(), name="flags-poll")

    async def _load_all(self) -> None:
        """Read every flag key directly (no key-listing watcher, which can wait forever on a busy server)."""
        seq = await self._bucket_seq()

        async def one(name: str) -> tuple[str, str | None]:
            try:
                entry = await asyncio.wait_for(self._kv.get(name), 5.0)
            except Exception as exc:
                if type(exc).__name__ in ("KeyNotFoundError", "KeyDeletedError", "NotFoundError", "KeyError"):
                    return name, None
                raise
            return name, entry.value.decode() if entry.value else None

        results = await asyncio.gather(*(one(name) for name in SPECS))
        self._apply({name: value for name, value in results if value is not None})
        self._loaded_seq = seq

    async def _bucket_seq(self) -> int | None:
        """The last sequence of the bucket's stream (None when it cannot be read: then always reload)."""
        try:
            info = await asyncio.wait_for(self.bus.js.stream_info(self._kv._stream), 5.0)
        except Exception:
            return None
        return int(info.state.last_seq)

    def _apply(self, overrides: dict[str, str]) -> None:
        if overrides == self._overrides and self.version:
            return
        self._overrides = overrides
        self._flags = effective_flags(self._env_values, self._env_sources, overrides)
        self.version += 1
        self._changed.set()
        self._changed = asyncio.Event()

    async def _poll(self) -> None:
        """Safety net under the watch: re-read the bucket every few seconds."""
        while True:
            await asyncio.sleep(self.poll_every_s)
            with contextlib.suppress(Exception):
                await self._load_all()

    async def _watch(self) -> None:
        while True:
            try:
                watcher = self._watcher = await self._kv.watchall(include_history=False)
                async for entry in watcher:
                    if entry is None or entry.key.startswith(INTERNAL_PREFIX) or entry.key not in SPECS:
                        continue
                    overrides = dict(self._overrides)
                    if entry.operation in ("DEL", "PURGE") or not entry.value:
                        overrides.pop(entry.key, None)
                    else:
                        overrides[entry.key] = entry.value.decode()
                    if overrides != self._overrides:
                        self._apply(overrides)
                        log.info("flag override seen", flag=entry.key, summary=self._flags.MODE)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("flag watch interrupted, reloading", error=str(exc))
                await asyncio.sleep(1.0)
                with contextlib.suppress(Exception):
                    await self._load_all()

    def current(self) -> Flags:
        return self._flags

    __call__ = current

    def overrides(self) -> dict[str, str]:
        return dict(self._overrides)

    def sources(self) -> dict[str, Source]:
        return dict(self._flags.sources)  # type: ignore[arg-type]

    async def refresh(self) -> Flags:
        """The flags as the bucket holds them now (a poster checks this right before each post): one request when
        nothing changed since the last full read, a full read otherwise."""
        seq = await self._bucket_seq()
        if seq is None or seq != self._loaded_seq:
            await self._load_all()
        return self._flags

    async def set(self, name: str, value: str | None, *, actor: str, source: str = "admin") -> Flags:
        """Set (or clear with ``None``) an override. Invalid names or values raise ConfigError; nothing is written."""
        spec = SPECS.get(name)
        if spec is None:
            raise ConfigError(f"unknown flag {name!r}")
        old = self._overrides.get(name)
        new = None if value is None else format_value(parse_value(spec, value))
        # audit first: a change that takes effect always has its flag.changed event
        await self.bus.publish(
            FlagChanged(
                event_id=new_event_id(), occurred_at=utcnow(), flag=name, old_value=old, new_value=new,
                actor=actor, source=source,
            )
        )
        if new is None:
            await self._kv.delete(name)
        else:
            await self._kv.put(name, new.encode())
        overrides = dict(self._overrides)
        if new is None:
            overrides.pop(name, None)
        else:
            overrides[name] = new
        self._apply(overrides)
        return self._flags

    async def stop(self) -> None:
        """Bounded: a watch cancelled while nats-py is still creating it can swallow the cancellation."""
        tasks = [t for t in (self._task, self._poller) if t is not None and not t.done()]
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=1.0)
        if self._watcher is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._watcher.stop(), 1.0)
