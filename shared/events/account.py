"""Events of the account aggregate: the configuration history of each X account.

Subject ``xbot.evt[.<account>].account.<account>.configured``. The accounts file (or, without one, today's
environment) is the input; ``account.configured`` is the record: a replay knows which profile was in force when
each decision was made, and a change through the admin API reaches every service through the log.
"""

from __future__ import annotations

from typing import ClassVar

from shared.accounts.profile import AccountProfile

from .base import Event


class AccountConfigured(Event, frozen=True, kw_only=True, tag="account.configured"):
    aggregate: ClassVar[str] = "account"
    name: ClassVar[str] = "configured"
    profile: AccountProfile
    #: ``shared.accounts.profile_digest(profile)``: the same profile applied twice is one event
    digest: str
    #: where it came from: ``file:<path>``, ``env`` (the default account of today's environment), ``admin``
    source: str
    actor: str = "system"

    @property
    def aggregate_id(self) -> str:
        return self.account
