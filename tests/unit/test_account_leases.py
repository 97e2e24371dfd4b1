"""Lease arithmetic (rendezvous order, shares) and the keeper's rounds on a fake bucket with a fake clock."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Sequence

import pytest

from shared.accounts.leases import (
    Lease,
    LeaseKeeper,
    fair_share,
    key_token,
    lease_key,
    member_key,
    rendezvous_order,
    rendezvous_score,
    shares,
)


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class FakeStore:
    """The bucket's semantics: create refuses an existing key, update/delete need the last revision, every
    entry ends ``ttl`` after its last write."""

    def __init__(self, clock: Clock, ttl: float):
        self.clock, self.ttl = clock, ttl
        self.data: dict[str, tuple[str, int, float]] = {}
        self.rev = itertools.count(1)

    def _live(self, key: str) -> tuple[str, int, float] | None:
        entry = self.data.get(key)
        if entry is not None and self.clock() - entry[2] >= self.ttl:
            del self.data[key]
            return None
        return entry

    def _write(self, key: str, value: str) -> int:
        rev = next(self.rev)
        self.data[key] = (value, rev, self.clock())
        return rev

    async def heartbeat(self, service: str, instance: str) -> None:
        self._write(member_key(service, instance), instance)

    async def leave(self, service: str, instance: str) -> None:
        self.data.pop(member_key(service, instance), None)

    async def members(self, service: str) -> list[str]:
        prefix = f"members.{key_token(service)}."
        return sorted(e[0] for k in list(self.data) if k.startswith(prefix) and (e := self._live(k)))

    async def read(self, service: str, accounts: Sequence[str]) -> dict[str, Lease]:
        out = {}
        for a in accounts:
            entry = self._live(lease_key(service, a))
            if entry:
                out[a] = Lease(entry[0], entry[1])
        return out

    async def create(self, service: str, account: str, instance: str) -> int | None:
        key = lease_key(service, account)
        return None if self._live(key) else self._write(key, instance)

    async def renew(self, service: str, account: str, instance: str, revision: int) -> int | None:
        key = lease_key(service, account)
        entry = self._live(key)
        return self._write(key, instance) if entry and entry[1] == revision else None

    async def release(self, service: str, account: str, revision: int) -> bool:
        key = lease_key(service, account)
        entry = self._live(key)
        if entry and entry[1] == revision:
            del self.data[key]
            return True
        return False


ACCOUNTS = ["acme", "bravo", "charlie", "delta"]


def make(store: FakeStore, clock: Clock, instance: str, accounts: list[str] | None = None) -> LeaseKeeper:
    acc = ACCOUNTS if accounts is None else accounts
    return LeaseKeeper(
        None, "poster", instance, lambda: acc, lease_seconds=store.ttl, clock=clock, store=store
    )


# --- arithmetic ---------------------------------------------------------------------------------------------------


def test_rendezvous_order_is_stable_and_per_instance() -> None:
    accounts = [f"acct{i}" for i in range(40)]
    a = rendezvous_order(accounts, "replica-a")
    assert (
        a == rendezvous_order(reversed(accounts), "replica-a") == rendezvous_order(accounts * 2, "replica-a")
    )
    assert sorted(a) == sorted(accounts)
    assert a != rendezvous_order(accounts, "replica-b")
    # the same in every process: a fixed hash, not Python's salted hash()
    assert (
        rendezvous_score("acme", "a") == rendezvous_score("acme", "a") and rendezvous_score("acme", "a") > 0
    )
    # adding an account keeps the others' relative order (only the newcomer is placed)
    with_new = rendezvous_order([*accounts, "newcomer"], "replica-a")
    assert [x for x in with_new if x != "newcomer"] == a


def test_rendezvous_first_choices_spread_over_accounts() -> None:
    accounts = [f"acct{i}" for i in range(8)]
    firsts = Counter(rendezvous_order(accounts, f"replica-{i}")[0] for i in range(400))
    assert len(firsts) == 8 and max(firsts.values()) < 100  # ~50 each


@pytest.mark.parametrize(
    ("n", "m", "share"),
    [(4, 1, 4), (4, 2, 2), (4, 3, 2), (5, 2, 3), (1, 3, 1), (0, 2, 0), (4, 0, 4), (7, 7, 1)],
)
def test_fair_share_is_ceil(n: int, m: int, share: int) -> None:
    assert fair_share(n, m) == share


def test_shares_sum_to_the_accounts_and_favour_current_holders() -> None:
    for n, m in itertools.product(range(0, 12), range(1, 6)):
        members = [f"m{i}" for i in range(m)]
        got = shares(n, members, {})
        assert sum(got.values()) == n
        assert set(got.values()) <= {n // m, fair_share(n, m)}
    # 4 accounts, a and b hold 2 each, c joins: a keeps 2 (tie broken by id), b gives one to c
    assert shares(4, ["a", "b", "c"], {"a": 2, "b": 2}) == {"a": 2, "b": 1, "c": 1}
    # who holds more keeps the extra one, so the fewest leases move
    assert shares(4, ["a", "b", "c"], {"a": 1, "b": 2, "c": 1}) == {"a": 1, "b": 2, "c": 1}
    assert shares(3, ["b", "a"], {}) == {"a": 2, "b": 1}
    assert shares(3, [], {}) == {}


def test_keys() -> None:
    assert lease_key("poster", "acme") == "poster.acme"
    assert member_key("poster", "host.example-12-ab") == "members.poster.host_example-12-ab"
    with pytest.raises(ValueError):
        LeaseKeeper(None, "members", "a", lambda: [])


# --- rounds on a fake bucket ----------------------------------------------------------------------------------------


async def test_rounds_split_take_over_and_never_overlap() -> None:
    clock = Clock()
    store = FakeStore(clock, ttl=15.0)
    a, b = make(store, clock, "a"), make(store, clock, "b")
    await a.round()
    assert a.held() == frozenset(ACCOUNTS)
    await b.round()
    assert b.held() == frozenset()  # all held by a
    for _ in range(3):
        clock.t += 5
        await a.round()
        await b.round()
        assert not (a.held() & b.held())
    assert len(a.held()) == 2 and len(b.held()) == 2
    # a stalls: no more rounds. It stops holding at 0.8 x 15 = 12 s after its last renewal; b gets the leases
    # only after the bucket drops them (15 s) and b's members view has lost a.
    for _ in range(6):
        clock.t += 2.5
        await b.round()
        assert not (a.held() & b.held()), (clock.t, a.held(), b.held())
    assert a.held() == frozenset() and b.held() == frozenset(ACCOUNTS)


async def test_holds_decays_at_eight_tenths_of_the_lease() -> None:
    clock = Clock()
    store = FakeStore(clock, ttl=10.0)
    a = make(store, clock, "a")
    await a.round()
    clock.t += 8.0
    assert a.holds("acme")
    clock.t += 0.01
    assert not a.holds("acme") and a.held() == frozenset()
    # renewing late but before the bucket drops the lease: still ours (the CAS proves nobody else wrote it)
    await a.round()
    assert a.holds("acme")
    # too late: the bucket dropped it, the renewal is refused, the lease is lost, then taken again if free
    clock.t += 10.0
    store.data.pop(lease_key("poster", "acme"))  # (gone already by TTL; make it explicit)
    b = make(store, clock, "b", ["acme"])
    await b.round()
    await a.round()
    assert b.holds("acme") and not a.holds("acme")


async def test_graceful_stop_and_account_changes() -> None:
    clock = Clock()
    store = FakeStore(clock, ttl=15.0)
    accounts = list(ACCOUNTS)
    seen: list[frozenset[str]] = []
    a = make(store, clock, "a", accounts)
    a.on_change = seen.append
    b = make(store, clock, "b", accounts)
    for _ in range(3):
        await a.round()
        await b.round()
        clock.t += 5
    assert len(a.held()) == len(b.held()) == 2
    await b.stop(release=True)
    assert b.held() == frozenset() and await store.members("poster") == ["a"]
    await a.round()  # the next round takes everything
    assert a.held() == frozenset(ACCOUNTS)
    accounts.append("echo")
    await a.round()
    assert a.holds("echo")
    accounts.remove("bravo")
    await a.round()
    assert not a.holds("bravo") and lease_key("poster", "bravo") not in store.data
    assert seen[-1] == a.held() == frozenset(["acme", "charlie", "delta", "echo"])


async def test_a_lease_written_but_not_recorded_is_adopted() -> None:
    """A create whose answer was lost (timeout): the key names us; the next round takes it back by CAS."""
    clock = Clock()
    store = FakeStore(clock, ttl=15.0)
    await store.create("poster", "acme", "a")
    a = make(store, clock, "a", ["acme"])
    await a.round()
    assert a.holds("acme")
