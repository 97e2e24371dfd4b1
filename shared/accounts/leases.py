"""Per-account leases: each account is served by exactly one replica of a service at a time (decision 0015).

A JetStream KV bucket per namespace, ``<ns>_leases``, whose ``max_age`` is the lease time (``lease_seconds``,
15 s by default) and history 1, holds

* ``<service>.<account>`` -> the holding replica's instance id (one lease), and
* ``members.<service>.<instance>`` -> the instance id (a replica's heartbeat),

so an entry not written again within ``lease_seconds`` disappears: a dead replica's leases and membership end by
themselves. Acquiring is ``create`` (refused while the key exists), renewing is ``update(..., last=revision)``
and releasing is ``delete(..., last=revision)``, so two replicas can never both have written the same lease
since its last expiry.

Every ``lease_seconds / 3`` a :class:`LeaseKeeper` runs a round: renew what it holds (a refused renewal means
the lease was lost), heartbeat, read the live members and the accounts' leases, work out its share, give back
what it holds beyond its share (the accounts last in its rendezvous order) and ``create`` free leases in its
rendezvous order (highest hash of ``(account, instance)`` first) until it reaches its share. Shares sum to the
number of accounts: each member gets ``floor(n / m)``, and the ``n mod m`` members holding the most now (ties:
the lower instance id) one more, i.e. ``ceil(n / m)`` -- a plain ``ceil`` for everyone would never move an
account to a replica that joins after the others hold ``ceil`` each (4 accounts, 2 + 2, then a third replica).

A replica that stalls must stop acting *before* anyone else can take its lease: ``holds()`` is true only while
the last successful write of the lease (timed from just *before* the request was sent, so no later than the
server's write) is at most ``0.8 * lease_seconds`` old, while the server frees it only ``lease_seconds`` after
that write. So the stalled replica stops at least ``0.2 * lease_seconds`` before the lease can go to another.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import inspect
import math
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import structlog

log = structlog.get_logger("leases")

BUCKET = "leases"
DEFAULT_LEASE_SECONDS = 15.0
#: a lease counts as held while its last renewal is at most this fraction of ``lease_seconds`` old
HOLD_FRACTION = 0.8
#: rounds per lease time
ROUNDS_PER_LEASE = 3
MEMBERS = "members"

_UNSAFE = re.compile(r"[^-_=a-zA-Z0-9]")


def key_token(text: str) -> str:
    """One KV key token (no dots): characters a key may not hold become ``_``."""
    return _UNSAFE.sub("_", text) or "_"


def lease_key(service: str, account: str) -> str:
    return f"{key_token(service)}.{key_token(account)}"


def member_key(service: str, instance: str) -> str:
    return f"{MEMBERS}.{key_token(service)}.{key_token(instance)}"


def rendezvous_score(account: str, instance: str) -> int:
    """A stable 64-bit hash of ``(account, instance)`` (the same in every process, unlike ``hash``)."""
    digest = hashlib.blake2b(f"{account}\x00{instance}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def rendezvous_order(accounts: Iterable[str], instance: str) -> list[str]:
    """``instance``'s preference: highest score first (ties, practically never: the account id)."""
    return sorted(set(accounts), key=lambda a: (-rendezvous_score(a, instance), a))


def fair_share(n_accounts: int, n_members: int) -> int:
    """The most one member holds: ``ceil(accounts / members)`` (every account when it is alone or first)."""
    return math.ceil(n_accounts / max(n_members, 1))


def shares(n_accounts: int, members: Sequence[str], holdings: Mapping[str, int]) -> dict[str, int]:
    """Each member's target, summing to ``n_accounts``: ``floor(n / m)`` each, plus one for the ``n mod m``
    members that hold the most now (ties: the lower instance id), so the fewest leases move."""
    unique = sorted(set(members))
    if not unique:
        return {}
    base, extra = divmod(n_accounts, len(unique))
    ranked = sorted(unique, key=lambda m: (-holdings.get(m, 0), m))
    return {m: base + (1 if i < extra else 0) for i, m in enumerate(ranked)}


@dataclass(frozen=True)
class Lease:
    holder: str
    revision: int


class LeaseStore(Protocol):
    """What the keeper needs of the bucket (:class:`KVLeaseStore`; a fake one in the unit tests)."""

    async def heartbeat(self, service: str, instance: str) -> None: ...

    async def leave(self, service: str, instance: str) -> None: ...

    async def members(self, service: str) -> list[str]: ...

    async def read(self, service: str, accounts: Sequence[str]) -> dict[str, Lease]:
        """The current lease of each account that has one (an account missing from the answer is free)."""
        ...

    async def create(self, service: str, account: str, instance: str) -> int | None:
        """The new revision, or None when the account is held."""
        ...

    async def renew(self, service: str, account: str, instance: str, revision: int) -> int | None:
        """The new revision, or None when the lease is no longer at ``revision`` (lost)."""
        ...

    async def release(self, service: str, account: str, revision: int) -> bool: ...


def _missing(exc: BaseException) -> bool:
    return type(exc).__name__ in ("KeyNotFoundError", "KeyDeletedError", "NotFoundError")


def _wrong_sequence(exc: BaseException) -> bool:
    if type(exc).__name__ == "KeyWrongLastSequenceError":
        return True
    return getattr(exc, "err_code", None) in (10071, 10164)


class KVLeaseStore:
    """:class:`LeaseStore` on a nats-py KeyValue bucket; every request is bounded by ``timeout``."""

    def __init__(self, kv: Any, js: Any, *, timeout: float = 5.0):
        self.kv = kv
        self.js = js
        self.timeout = timeout

    async def _t(self, awaitable: Any) -> Any:
        return await asyncio.wait_for(awaitable, self.timeout)

    async def heartbeat(self, service: str, instance: str) -> None:
        await self._t(self.kv.put(member_key(service, instance), instance.encode()))

    async def leave(self, service: str, instance: str) -> None:
        await self._t(self.kv.delete(member_key(service, instance)))

    async def members(self, service: str) -> list[str]:
        prefix = f"$KV.{self.kv._name}."
        info = await self._t(
            self.js.stream_info(self.kv._stream, subjects_filter=f"{prefix}{MEMBERS}.{key_token(service)}.>")
        )
        keys = [s[len(prefix) :] for s in (info.state.subjects or {})]

        async def one(key: str) -> str | None:
            try:
                entry = await self._t(self.kv.get(key))
            except Exception as exc:
                if _missing(exc):  # left (a delete marker) or expired since the listing
                    return None
                raise
            return entry.value.decode() if entry.value else None

        return sorted({m for m in await asyncio.gather(*(one(k) for k in keys)) if m})

    async def read(self, service: str, accounts: Sequence[str]) -> dict[str, Lease]:
        async def one(account: str) -> tuple[str, Lease | None]:
            try:
                entry = await self._t(self.kv.get(lease_key(service, account)))
            except Exception as exc:
                if _missing(exc):
                    return account, None
                raise
            if not entry.value:
                return account, None
            return account, Lease(entry.value.decode(), int(entry.revision))

        return {
            a: lease for a, lease in await asyncio.gather(*(one(a) for a in accounts)) if lease is not None
        }

    async def create(self, service: str, account: str, instance: str) -> int | None:
        try:
            return int(await self._t(self.kv.create(lease_key(service, account), instance.encode())))
        except Exception as exc:
            if _wrong_sequence(exc) or type(exc).__name__ == "KeyExistsError":
                return None
            raise

    async def renew(self, service: str, account: str, instance: str, revision: int) -> int | None:
        try:
            return int(
                await self._t(self.kv.update(lease_key(service, account), instance.encode(), last=revision))
            )
        except Exception as exc:
            if _wrong_sequence(exc):
                return None
            raise

    async def release(self, service: str, account: str, revision: int) -> bool:
        try:
            await self._t(self.kv.delete(lease_key(service, account), last=revision))
        except Exception as exc:
            if _wrong_sequence(exc):
                return False
            raise
        return True


async def open_lease_bucket(bus: Any, lease_seconds: float) -> tuple[Any, float]:
    """The namespace's lease bucket (created with ``max_age = lease_seconds``, history 1, if missing) and the
    lease time it really has (an existing bucket's ``max_age`` wins: the server is what frees leases)."""
    from nats.js import api
    from nats.js.errors import BucketNotFoundError

    js = bus.js
    bucket = bus.names.bucket(BUCKET)
    try:
        kv = await js.key_value(bucket)
    except BucketNotFoundError:
        settings = getattr(bus, "settings", None)
        config = api.KeyValueConfig(
            bucket=bucket,
            history=1,
            ttl=lease_seconds,
            storage=api.StorageType.FILE,
            replicas=getattr(settings, "replicas", 1),
        )
        try:
            kv = await js.create_key_value(config)
        except Exception:  # another replica created it first (with another lease time, say)
            kv = await js.key_value(bucket)
    info = await js.stream_info(kv._stream)
    actual = float(info.config.max_age or 0)
    if actual <= 0:
        raise ValueError(f"lease bucket {bucket} has no max_age: a dead replica's leases would never end")
    if abs(actual - lease_seconds) > 1e-3:
        log.warning(
            "lease bucket has another lease time, using it",
            bucket=bucket,
            wanted=lease_seconds,
            actual=actual,
        )
    return kv, actual


@dataclass
class _Held:
    revision: int
    renewed_at: float  # clock() just before the request that wrote ``revision`` was sent


OnChange = Callable[[frozenset[str]], Any]


class LeaseKeeper:
    """Holds this replica's share of ``accounts()`` for ``service``; see the module docstring."""

    def __init__(
        self,
        bus: Any,
        service: str,
        instance_id: str,
        accounts: Callable[[], Sequence[str]],
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        *,
        on_change: OnChange | None = None,
        store: LeaseStore | None = None,
    ):
        if key_token(service) == MEMBERS:
            raise ValueError(f"service name {service!r} is reserved in the lease bucket")
        if lease_seconds <= 0:
            raise ValueError("lease_seconds must be positive")
        self.bus = bus
        self.service = service
        self.instance_id = instance_id
        self.accounts = accounts
        self.lease_seconds = float(lease_seconds)
        self.clock = clock
        self.on_change = on_change
        self.store: LeaseStore | None = store
        self._held: dict[str, _Held] = {}
        self._reported: frozenset[str] = frozenset()
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self.rounds = 0

    # --- what the service asks ---------------------------------------------------------------------------------

    @property
    def interval(self) -> float:
        return self.lease_seconds / ROUNDS_PER_LEASE

    @property
    def hold_seconds(self) -> float:
        return self.lease_seconds * HOLD_FRACTION

    def holds(self, account: str) -> bool:
        """True only while this replica's lease on ``account`` was renewed within ``0.8 * lease_seconds``."""
        held = self._held.get(account)
        return held is not None and self.clock() - held.renewed_at <= self.hold_seconds

    def held(self) -> frozenset[str]:
        now = self.clock()
        return frozenset(a for a, h in self._held.items() if now - h.renewed_at <= self.hold_seconds)

    # --- life ----------------------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the bucket, run one round now (a lone replica holds its share before its first job), then one
        every ``lease_seconds / 3``."""
        if self.store is None:
            kv, self.lease_seconds = await open_lease_bucket(self.bus, self.lease_seconds)
            self.store = KVLeaseStore(kv, self.bus.js, timeout=max(0.5, self.interval))
        await self.round()
        self._task = asyncio.create_task(self._loop(), name=f"leases-{self.service}")

    async def stop(self, release: bool = True) -> None:
        """Stop renewing. With ``release`` give every lease and the membership back at once, so the others take
        over on their next round; without it (as a crash would) the leases end on the server after
        ``lease_seconds`` and ``holds()`` turns false within ``0.8 * lease_seconds`` of the last renewal."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        if not release or self.store is None:
            return
        async with self._lock:
            for account in list(self._held):
                await self._release(account, reason="stop")
            with contextlib.suppress(Exception):
                await self.store.leave(self.service, self.instance_id)
        await self._notify()

    async def _loop(self) -> None:
        next_at = self.clock() + self.interval
        while True:
            await asyncio.sleep(max(0.0, next_at - self.clock()))
            next_at = max(next_at + self.interval, self.clock())
            try:
                await self.round()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the next round tries again; holds() decays meanwhile
                log.warning(
                    "lease round failed", service=self.service, instance=self.instance_id, error=repr(exc)
                )

    # --- one round -----------------------------------------------------------------------------------------------

    async def round(self) -> None:
        async with self._lock:
            try:
                await self._round()
            finally:
                self.rounds += 1
        await self._notify()

    async def _round(self) -> None:
        store = self.store
        assert store is not None, "start() first"
        me = self.instance_id
        accounts = list(dict.fromkeys(self.accounts()))
        wanted = set(accounts)

        # renew first: it is what keeps holds() true
        for account in [a for a in self._held if a not in wanted]:
            await self._release(account, reason="account removed")
        await asyncio.gather(*(self._renew(a) for a in list(self._held)))

        await store.heartbeat(self.service, me)
        members = await store.members(self.service)
        if me not in members:
            members = sorted({*members, me})
        current = await store.read(self.service, accounts)
        holdings: dict[str, int] = {}
        for lease in current.values():
            holdings[lease.holder] = holdings.get(lease.holder, 0) + 1
        holdings[me] = len(self._held)
        target = shares(len(accounts), members, holdings)[me]

        if len(self._held) > target:
            mine = rendezvous_order(self._held, me)
            for account in mine[target:]:
                await self._release(account, reason="rebalance")
            return
        for account in rendezvous_order(accounts, me):
            if len(self._held) >= target:
                break
            if account in self._held:
                continue
            found = current.get(account)
            if found is None:
                await self._acquire(account)
            elif found.holder == me:  # ours, but we lost track of it (a write that timed out, a restart)
                await self._adopt(account, found.revision)

    async def _renew(self, account: str) -> None:
        assert self.store is not None
        held = self._held[account]
        sent = self.clock()
        try:
            revision = await self.store.renew(self.service, account, self.instance_id, held.revision)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # unknown outcome: keep it, holds() decays, the next round tells
            log.warning(
                "lease renewal failed",
                service=self.service,
                account=account,
                instance=self.instance_id,
                error=repr(exc),
            )
            return
        if revision is None:
            self._held.pop(account, None)
            log.warning("lease lost", service=self.service, account=account, instance=self.instance_id)
            return
        self._held[account] = _Held(revision, sent)

    async def _acquire(self, account: str) -> None:
        assert self.store is not None
        sent = self.clock()
        revision = await self.store.create(self.service, account, self.instance_id)
        if revision is not None:
            self._held[account] = _Held(revision, sent)
            log.info("lease acquired", service=self.service, account=account, instance=self.instance_id)

    async def _adopt(self, account: str, revision: int) -> None:
        assert self.store is not None
        sent = self.clock()
        new = await self.store.renew(self.service, account, self.instance_id, revision)
        if new is not None:
            self._held[account] = _Held(new, sent)
            log.info(
                "lease acquired",
                service=self.service,
                account=account,
                instance=self.instance_id,
                adopted=True,
            )

    async def _release(self, account: str, *, reason: str) -> None:
        assert self.store is not None
        held = self._held.pop(account, None)
        if held is None:
            return
        try:
            ok = await self.store.release(self.service, account, held.revision)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # it ends on the server by itself; we have stopped acting on it already
            log.warning(
                "lease release failed",
                service=self.service,
                account=account,
                instance=self.instance_id,
                error=repr(exc),
            )
            return
        if ok:
            log.info(
                "lease released",
                service=self.service,
                account=account,
                instance=self.instance_id,
                reason=reason,
            )
        else:
            log.warning("lease lost", service=self.service, account=account, instance=self.instance_id)

    async def _notify(self) -> None:
        now = frozenset(self._held)
        if now == self._reported:
            return
        self._reported = now
        if self.on_change is None:
            return
        try:
            result = self.on_change(self.held())
            if inspect.isawaitable(result):
                await result
        except Exception as exc:
            log.warning(
                "lease on_change failed", service=self.service, instance=self.instance_id, error=repr(exc)
            )
