"""The accounts in force in a running stack, and how the accounts file becomes their record in the log.

``AccountBook`` holds the latest profile of each account. It is seeded at start by ``record_accounts`` -- which
reads every ``account.configured`` in the log, and writes one for each account whose profile in the file (or
today's environment) differs from the one last applied *from the file* -- and then follows the log (the service
runtime feeds it each ``account.configured``), so a change through the admin API reaches every service without
a restart, and a restart with an unchanged file does not undo it. The file names the accounts served.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog

from shared.events import AccountConfigured, new_event_id, utcnow
from shared.flags import Flags

from .profile import AccountProfile, profile_digest

log = structlog.get_logger("accounts")

#: sources of a configuration that came from the accounts file or the environment (not from a person)
FILE_SOURCES = ("file:", "env")


@dataclass
class AccountBook:
    """Every account's profile in force, by id (in the order first seen)."""

    profiles: dict[str, AccountProfile] = field(default_factory=dict)
    #: per account: the digest last applied from the file / environment, and the sequence of its last event
    file_digest: dict[str, str] = field(default_factory=dict)
    last_seq: dict[str, int] = field(default_factory=dict)
    #: per account: where its profile in force came from (``file:<path>``, ``env``, ``admin``)
    sources: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, profiles: Iterable[AccountProfile]) -> AccountBook:
        return cls(profiles={p.id: p for p in profiles})

    def apply(self, event: Any, seq: int = 0) -> None:
        if not isinstance(event, AccountConfigured):
            return
        if seq and seq <= self.last_seq.get(event.account, 0):
            return
        self.profiles[event.account] = event.profile
        self.sources[event.account] = event.source
        if event.source.startswith(FILE_SOURCES):
            self.file_digest[event.account] = event.digest
        if seq:
            self.last_seq[event.account] = seq

    def ids(self) -> list[str]:
        return list(self.profiles)

    def get(self, account: str) -> AccountProfile | None:
        return self.profiles.get(account)

    def __getitem__(self, account: str) -> AccountProfile:
        return self.profiles[account]

    def __contains__(self, account: object) -> bool:
        return account in self.profiles

    def __iter__(self) -> Iterator[AccountProfile]:
        return iter(list(self.profiles.values()))

    def __len__(self) -> int:
        return len(self.profiles)

    def from_env(self, account: str) -> bool:
        """The account was built from the environment (no accounts file): its limits are the flags' own, so
        a runtime flag change applies to it as it always did."""
        return self.sources.get(account, "env") == "env"

    def flags_for(self, account: str, flags: Flags) -> Flags:
        """The flags in force for one account (``shared.accounts.flags.account_flags``)."""
        from .flags import account_flags

        profile = self.profiles.get(account)
        if profile is None:
            return flags
        return account_flags(flags, profile, limits=not self.from_env(account))

    def usernames(self) -> frozenset[str]:
        """Our own X handles, lower-case: no account of this stack ever answers another (promise 8)."""
        return frozenset(p.username.lower().lstrip("@") for p in self.profiles.values() if p.username)


async def read_book(bus: Any) -> AccountBook:
    """Every ``account.configured`` in the log, folded (the default account's shape and the others')."""
    book = AccountBook()
    items = []
    for subject in bus.names.event_type("account", "configured"):
        items += [i async for i in bus.read(subject) if i.event is not None]
    for item in sorted(items, key=lambda i: i.seq):
        book.apply(item.event, item.seq)
    return book


def configured_event(profile: AccountProfile, source: str, actor: str = "system") -> AccountConfigured:
    return AccountConfigured(
        event_id=new_event_id(), occurred_at=utcnow(), account=profile.id, profile=profile,
        digest=profile_digest(profile), source=source, actor=actor,
    )


async def publish_configured(bus: Any, book: AccountBook, profile: AccountProfile, source: str,
                             actor: str = "system") -> int:
    """Record ``profile`` as ``account.<id>.configured``, guarded by the account's last configuration (of two
    writers racing, one wins; ``WrongSequence`` for the other). Returns its sequence."""
    from shared.bus import after

    event = configured_event(profile, source, actor)
    seq = await bus.publish(event, expect=after(book.last_seq.get(profile.id, 0)))
    book.apply(event, seq)
    return seq


async def record_accounts(bus: Any, profiles: Sequence[AccountProfile], source: str, *,
                          attempts: int = 20) -> AccountBook:
    """The book at start: the log's configurations, plus one ``account.configured`` for each account of
    ``profiles`` whose digest is not the one last applied from the file (new, or the file changed). Several
    services starting at once write each change once: the loser of a guarded write reads that account's
    history again and writes only if the winner recorded something else."""
    from shared.bus import WrongSequence

    book = await read_book(bus)
    for p in profiles:
        digest = profile_digest(p)
        for attempt in range(attempts):
            if book.file_digest.get(p.id) == digest:
                break
            try:
                seq = await publish_configured(bus, book, p, source)
            except WrongSequence:
                for item in await bus.aggregate_history("account", p.id, p.id):
                    if item.event is not None:
                        book.apply(item.event, item.seq)
                await asyncio.sleep(0.01 * attempt)
                continue
            log.info("account configured", account=p.id, source=source, seq=seq, topics=len(p.topics),
                     publisher=p.publisher)
            break
        else:
            raise RuntimeError(f"could not record account {p.id!r} after {attempts} attempts (the log kept moving)")
    # the file names the accounts served; each as the log last configured it (an admin change stands)
    book.profiles = {p.id: book.profiles.get(p.id, p) for p in profiles}
    return book


def accounts_source(environ: Mapping[str, str]) -> str:
    """``file:<path>`` of the accounts file in use, or ``env`` (the default account of today's environment)."""
    from .loader import accounts_path

    path = accounts_path(environ)
    return "env" if path is None else f"file:{path}"
