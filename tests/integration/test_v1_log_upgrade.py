"""A log written before accounts (schema 1, ``tests/fixtures/v1_log/events.jsonl``, recorded by that code) replays
with today's code into the ``default`` account: the same read-model rows and service states as the same story
written today, every event upcast to schema 2, and a decision queued then is claimed under the same guard now."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import pytest

from services.collector.domain import CollectorState
from services.collector.domain import evolve as collector_evolve
from services.learner.domain import LearnerState
from services.learner.domain import evolve as learner_evolve
from services.poster.domain import PosterState
from shared.bus import after
from shared.drafting.state import RecentDecisions
from shared.events import SCHEMA_VERSION, DecisionPostStarted, DecisionQueued
from tests.integration.test_projector_replay import snapshot
from tests.integration.test_projector_scenario import migrated, own_bus_and_database, project_all, scenario

pytestmark = pytest.mark.integration

FIXTURE = Path(__file__).parents[1] / "fixtures" / "v1_log" / "events.jsonl"


def v1_lines() -> list[dict[str, str]]:
    return [json.loads(line) for line in FIXTURE.read_text(encoding="utf-8").splitlines() if line]


async def load_v1(bus: Any) -> int:
    """Put the recorded messages on the stream exactly as schema-1 code did (its subjects, its bytes)."""
    lines = v1_lines()
    prefix = bus.names.evt_prefix
    for line in lines:
        subject = line["subject"].replace("xbot.evt", prefix, 1)
        await bus.publish_raw(subject, line["data"].encode(), {"Nats-Msg-Id": json.loads(line["data"])["event_id"]})
    return len(lines)


def test_the_fixture_is_schema_1_and_has_no_account() -> None:
    lines = v1_lines()
    assert len(lines) == len(scenario(n_bulk=6)) == 83
    assert all(json.loads(x["data"])["schema"] == 1 and "account" not in json.loads(x["data"]) for x in lines)
    assert all(len(x["subject"].split(".")) == 5 for x in lines)  # no account token


async def test_a_schema_1_log_projects_the_rows_todays_code_writes(bus, database_url, nats_url,
                                                                    postgres_admin_url) -> None:
    await migrated(database_url)
    n = await load_v1(bus)
    old = await project_all(bus, database_url)
    assert old.dead_lettered == 0 and old.position == n
    rows_from_v1 = await snapshot(database_url)

    async with own_bus_and_database(nats_url, postgres_admin_url) as (bus2, db2):
        await migrated(db2)
        await bus2.publish_many(scenario(n_bulk=6))
        await project_all(bus2, db2)
        rows_today = await snapshot(db2)
    assert rows_from_v1 == rows_today  # every row of every table
    assert len(rows_from_v1["content_metadata"]) > 10


async def test_a_schema_1_log_rebuilds_every_service_state_into_the_default_account(bus) -> None:
    await load_v1(bus)
    events = [item.event async for item in bus.read() if item.event is not None]
    assert len(events) == 83
    assert {(e.schema, e.account) for e in events} == {(SCHEMA_VERSION, "default")}
    today = scenario(n_bulk=6)
    assert [msgspec.structs.asdict(e) for e in events] == [msgspec.structs.asdict(e) for e in today]

    def states(evs: list[Any]) -> list[Any]:
        drafting = RecentDecisions.empty()
        poster, collector, learner = PosterState(), CollectorState(), LearnerState()
        for seq, e in enumerate(evs, 1):
            drafting.apply(e)
            poster.evolve(e, seq)
            collector = collector_evolve(collector, e)
            learner = learner_evolve(learner, e, seq)
        return [drafting.summary(), sorted(poster.decisions), collector, learner.decisions, learner.last_model]

    assert states(events) == states(today)


async def test_a_decision_queued_before_accounts_is_claimed_under_the_same_guard(bus) -> None:
    await load_v1(bus)
    queued = [item async for item in bus.read() if isinstance(item.event, DecisionQueued)]
    first = queued[0]
    history = [i for i in await bus.aggregate_history("decision", first.event.decision_id) if not i.caught_up]
    assert [i.event.type for i in history] == ["decision.queued", "decision.post_skipped"]
    claim = DecisionPostStarted(event_id="claim-after-upgrade", occurred_at=first.event.occurred_at,
                                decision_id=first.event.decision_id, attempt=1, poster_id="p")
    seq = await bus.publish(claim, expect=after(history[-1].seq))
    assert seq > history[-1].seq
    again = DecisionPostStarted(event_id="claim-again", occurred_at=first.event.occurred_at,
                                decision_id=first.event.decision_id, attempt=1, poster_id="q")
    from shared.bus import WrongSequence

    with pytest.raises(WrongSequence):  # the guard sees the old-shape history and the new claim together
        await bus.publish(again, expect=after(history[-1].seq))
