"""Which accounts a job run is for, and how its counts over them add up."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from shared.accounts import parse_accounts
from shared.accounts.book import AccountBook
from shared.events import Command, utcnow
from shared.service import combine_counts, job_accounts

pytestmark = pytest.mark.unit

BOOK = AccountBook.of(parse_accounts("".join(f'[[account]]\nid = "{a}"\ntopics = ["t"]\n' for a in "abc"), "f", {}))


def cmd(by: str = "schedule", **params: str) -> Command:
    return Command(job="plan", run_id="plan-1", requested_at=utcnow(), requested_by=by, params=params)


class Leases:
    def holds(self, account: str) -> bool:
        return account in {"a", "c"}


def test_a_run_is_for_every_account_one_named_or_the_replicas_share() -> None:
    ctx = SimpleNamespace(accounts=BOOK, leases=None)
    assert [p.id for p in job_accounts(cmd(), ctx)] == ["a", "b", "c"]  # type: ignore[arg-type]
    assert [p.id for p in job_accounts(cmd(account="b"), ctx)] == ["b"]  # type: ignore[arg-type]
    assert job_accounts(cmd(account="zzz"), ctx) == []  # type: ignore[arg-type]
    ctx.leases = Leases()
    assert [p.id for p in job_accounts(cmd(), ctx)] == ["a", "c"]  # type: ignore[arg-type]  # scheduled: its share
    assert [p.id for p in job_accounts(cmd(by="admin"), ctx)] == ["a", "b", "c"]  # type: ignore[arg-type]
    assert [p.id for p in job_accounts(cmd(account="b"), ctx)] == ["b"]  # type: ignore[arg-type]


def test_counts_add_up_and_a_run_is_skipped_only_when_every_account_was() -> None:
    assert combine_counts([{"queued": 2, "_skipped": 0}, {"queued": 1, "skipped": 1}]) == {"queued": 3, "skipped": 1}
    assert combine_counts([{"due": 0, "_skipped": 1}, {"due": 2}]) == {"due": 2}
    assert combine_counts([{"due": 0, "_skipped": 1}, {"due": 0, "_skipped": 1}]) == {"due": 0, "_skipped": 1}
    assert combine_counts([]) == {}
