"""The projector's pure core: the seed's status rules, dead letters, and rows that do not depend on batching."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.gateway.domain import (
    ARMS_UPDATED,
    POST_SKIPPED,
    POSTS_ATTEMPTED,
    ApplyError,
    BatchWrites,
    DecisionRow,
    decision_status,
    evolve_decision,
    fold_batch,
    num,
    uuid_str,
)
from services.gateway.read_models import READ_MODELS, touched_decisions
from shared.bus import ReadItem
from shared.events import (
    DecisionApproved,
    DecisionAttentionNeeded,
    DecisionDoubtResolved,
    DecisionPosted,
    DecisionPostFailed,
    DecisionPostSkipped,
    DecisionRejected,
    DecisionRescheduled,
    DecisionSkipped,
)
from tests.integration.test_projector_scenario import RUNNER, T0, did, queued, scenario, two_accounts

pytestmark = pytest.mark.unit


def items(events: list[Any], start: int = 1) -> list[ReadItem]:
    return [ReadItem(i, f"xbot.evt.{e.aggregate}.{e.aggregate_id}.{e.name}", b"", event=e)
            for i, e in enumerate(events, start)]


def fold_all(events: list[Any]) -> DecisionRow | None:
    row = None
    for i, e in enumerate(events, 1):
        row = evolve_decision(row, e, i)
    return row


def test_queued_stays_queued_through_post_skips_and_records_the_reason() -> None:
    row = fold_all([queued(1), DecisionPostSkipped(event_id="a", occurred_at=T0 + timedelta(hours=1),
                                                   decision_id=did(1), reason="posting_disabled")])
    assert row is not None
    assert (row.status, row.last_post_skip, row.last_seq) == ("queued", "posting_disabled", 2)
    assert row.created_at == T0 + timedelta(minutes=1) and row.updated_at == T0 + timedelta(hours=1)
    assert row.quality_score == Decimal("0.81") and row.generation_source == "real"


def test_posted_is_never_undone_and_final_failures_fail_only_queued() -> None:
    posted = DecisionPosted(event_id="p", occurred_at=T0, decision_id=did(1), tweet_id="1", posted_at=T0,
                            decision_type="single", bandit_arm="a")
    final = DecisionPostFailed(event_id="f", occurred_at=T0, decision_id=did(1), attempt=2, error="boom", final=True)
    assert fold_all([queued(1), posted, final]).status == "posted"  # type: ignore[union-attr]
    row = fold_all([queued(1), final])
    assert row is not None and (row.status, row.error_message) == ("failed", "boom")
    rej = DecisionRejected(event_id="r", occurred_at=T0, decision_id=did(1), reason="")
    assert fold_all([queued(1), posted, rej]).status == "posted"  # type: ignore[union-attr]
    row = fold_all([queued(1), rej])
    assert row is not None and (row.status, row.approval, row.skip_reason) == ("skipped", "rejected", "rejected")


def _failed(n: int, **kw: Any) -> DecisionPostFailed:
    return DecisionPostFailed(event_id=f"f{n}", occurred_at=T0 + timedelta(minutes=n), decision_id=did(1),
                              attempt=1, error="e", **kw)


def _attention(at: Any = None) -> DecisionAttentionNeeded:
    return DecisionAttentionNeeded(event_id="att", occurred_at=T0 + timedelta(hours=2), decision_id=did(1),
                                   attempt=1, reason="in_doubt_too_long", detail="login wall", in_doubt_since=at)


def _resolved(action: str) -> DecisionDoubtResolved:
    return DecisionDoubtResolved(event_id=f"r-{action}", occurred_at=T0 + timedelta(hours=3), decision_id=did(1),
                                 action=action, actor="ana")  # type: ignore[arg-type]


def test_in_doubt_is_its_own_status_until_the_doubt_ends() -> None:
    doubt = _failed(1, error_code="timeout", in_doubt=True)
    row = fold_all([queued(1), doubt])
    assert row is not None and row.status == "in_doubt" and row.attention_reason is None
    assert decision_status([queued(1), doubt]) == "in_doubt"  # the admin endpoints' check sees it too
    # a retry answered 187: the first attempt landed; still not queued (never posted again, only looked for)
    assert fold_all([queued(1), _failed(2, error_code="187", landed=True)]).status == "in_doubt"  # type: ignore[union-attr]
    # the poster closes the doubt (not on the timeline after the grace): a new attempt may start
    closed = fold_all([queued(1), doubt, _failed(2, error_code="not_found_after_grace")])
    assert closed is not None and (closed.status, closed.error_message) == ("queued", "not_found_after_grace: e")
    # a final failure ends it
    assert fold_all([queued(1), doubt, _failed(2, final=True)]).status == "failed"  # type: ignore[union-attr]
    # posted ends it; a late in-doubt failure does not undo posted
    posted = DecisionPosted(event_id="p", occurred_at=T0, decision_id=did(1), tweet_id="1", posted_at=T0,
                            decision_type="single", bandit_arm="a")
    assert fold_all([queued(1), doubt, posted, _failed(3, in_doubt=True)]).status == "posted"  # type: ignore[union-attr]
    # a skipped draft never becomes in doubt
    assert fold_all([queued(1), DecisionRejected(event_id="rj", occurred_at=T0, decision_id=did(1)),
                     doubt, _attention()]).status == "skipped"  # type: ignore[union-attr]


def test_attention_is_recorded_and_cleared_by_the_operators_answer_or_a_post() -> None:
    since = T0 + timedelta(minutes=1)
    base = [queued(1), _failed(1, in_doubt=True), _attention(since)]
    row = fold_all(base)
    assert row is not None
    assert (row.status, row.attention_reason, row.attention_detail, row.attention_since) == (
        "in_doubt", "in_doubt_too_long", "login wall", since)
    # no in_doubt_since in the event: since the event
    assert fold_all([queued(1), _attention()]).attention_since == T0 + timedelta(hours=2)  # type: ignore[union-attr]
    assert fold_all([queued(1), _attention()]).status == "in_doubt"  # type: ignore[union-attr]
    retried = fold_all([*base, _resolved("retry")])
    assert retried is not None and retried.status == "queued"
    assert (retried.attention_reason, retried.attention_detail, retried.attention_since) == (None, None, None)
    abandoned = fold_all([*base, _resolved("abandon")])
    assert abandoned is not None and (abandoned.status, abandoned.attention_reason) == ("failed", None)
    assert abandoned.error_message == "abandoned by ana"
    # an answer to a decision that is not in doubt (any more) changes nothing but the sequence
    again = fold_all([*base, _resolved("retry"), _resolved("abandon")])
    assert again is not None and again.status == "queued" and again.last_seq == 5
    assert fold_all([queued(1), _resolved("abandon")]).status == "queued"  # type: ignore[union-attr]
    posted = DecisionPosted(event_id="p", occurred_at=T0, decision_id=did(1), tweet_id="1", posted_at=T0,
                            decision_type="single", bandit_arm="a", recovered=True)
    found = fold_all([*base, posted])
    assert found is not None and (found.status, found.attention_reason, found.attention_since) == (
        "posted", None, None)


def test_a_posted_decision_keeps_no_post_skip_from_before() -> None:
    skip = DecisionPostSkipped(event_id="s", occurred_at=T0, decision_id=did(1), reason="posting_disabled")
    posted = DecisionPosted(event_id="p", occurred_at=T0, decision_id=did(1), tweet_id="1", posted_at=T0,
                            decision_type="single", bandit_arm="a")
    row = fold_all([queued(1), skip])
    assert row is not None and row.last_post_skip == "posting_disabled"
    row = fold_all([queued(1), skip, posted])
    assert row is not None and (row.status, row.last_post_skip) == ("posted", None)


def test_operator_events_and_second_drafts() -> None:
    moved = T0 + timedelta(days=2)
    row = fold_all([
        queued(1),
        DecisionApproved(event_id="a", occurred_at=T0, decision_id=did(1)),
        DecisionRescheduled(event_id="s", occurred_at=T0, decision_id=did(1), scheduled_at=moved),
        queued(1),  # the same decision drafted again: the first draft stands
    ])
    assert row is not None and row.approval == "approved" and row.scheduled_at == moved and row.last_seq == 4
    sk = queued(2)
    skipped = DecisionSkipped(**{f: getattr(sk, f) for f in sk.__struct_fields__}, gate="rotation",
                              skip_reason="topic 40% > 35%", score=0.4)
    row = fold_all([skipped])
    assert row is not None and (row.status, row.gate, row.gate_score) == ("skipped", "rotation", Decimal("0.4"))
    # an event for a decision with no draft makes no row
    assert evolve_decision(None, DecisionApproved(event_id="x", occurred_at=T0, decision_id=did(9)), 1) is None
    assert decision_status([queued(3), DecisionRejected(event_id="r", occurred_at=T0, decision_id=did(3))]) == "skipped"
    assert decision_status([]) is None


def test_fold_dead_letters_what_no_row_can_hold() -> None:
    good = queued(1)
    bad = type(good)(**{**{f: getattr(good, f) for f in good.__struct_fields__}, "decision_id": "d1"})
    nul = type(good)(**{**{f: getattr(good, f) for f in good.__struct_fields__}, "decision_id": did(2),
                        "content": "x\x00"})
    its = items([bad, nul, good])
    its.insert(1, ReadItem(99, "xbot.evt.decision.q.queued", b"{", error="DecodeError: truncated"))
    w = fold_batch(its, {})
    assert list(w.tables["content_metadata"]) == [did(1)]
    reasons = [r for _, r in w.dead]
    assert len(reasons) == 3 and "not a UUID" in reasons[0] and "DecodeError" in reasons[1] and "NUL" in reasons[2]
    assert w.last_seq == 99 and w.events == 4
    assert touched_decisions(its) == {did(1), did(2)}
    with pytest.raises(ApplyError):
        uuid_str("nope")
    assert uuid_str(did(1).replace("-", "")) == did(1)


def test_numbers_go_to_numeric_in_their_shortest_form() -> None:
    assert num(0.0425) == Decimal("0.0425") and num(1) == Decimal("1.0") and num(None) is None
    assert num(float("inf")) is None and num(Decimal("0.1")) == Decimal("0.1")


def test_counters_and_model_rows() -> None:
    w = fold_batch(items(scenario()), {})
    assert w.counters[(POSTS_ATTEMPTED, "")][0] == 9
    assert w.counters[(POST_SKIPPED, "posting_disabled")][0] == 3
    assert w.counters[(ARMS_UPDATED, "")][0] == 6
    t = w.tables
    assert len(t["bandit_arms"]) == 3 and len(t["timing_slots"]) == 24 and len(t["model_versions"]) == 2
    assert len(t["api_usage"]) == 4
    assert {r[1] for r in t["bandit_arms"].values()} == {"howto:story", "opinion:data", "howto:list"}


# --- batch boundaries do not matter ------------------------------------------------------------------------
class FakeTables:
    """The SQL's semantics in memory, for every registered read model (each upsert's mode): replace only with a
    later last_seq; ignore keeps the first row of a key; counters add; the offset guards."""

    def __init__(self) -> None:
        self.offset = 0
        self.tables: dict[str, dict[Any, Any]] = {}
        self.counters: dict[tuple[str, str, str], int] = {}

    def apply(self, batch: list[ReadItem]) -> None:
        batch = [i for i in batch if i.seq > self.offset]
        if not batch:
            return
        w: BatchWrites = fold_batch(batch, dict(self.tables.get("content_metadata", {})))
        for model in READ_MODELS:
            up = model.upsert
            if up.mode == "add":
                for account, counters in w.account_counters.items():
                    for (name, key), (delta, _seq) in counters.items():
                        at = (account, name, key)
                        self.counters[at] = self.counters.get(at, 0) + delta
                continue
            table = self.tables.setdefault(model.table, {})
            seq_at = up.names.index("last_seq")
            for key, row in w.tables.get(model.table, {}).items():
                if up.mode == "ignore":
                    table.setdefault(key, row)
                    continue
                seq = row.last_seq if isinstance(row, DecisionRow) else row[seq_at]
                old = table.get(key)
                old_seq = None if old is None else (old.last_seq if isinstance(old, DecisionRow) else old[seq_at])
                if old_seq is None or old_seq < seq:
                    table[key] = row
        self.offset = w.last_seq


EVENTS = items(scenario(n_bulk=6))


@settings(max_examples=60, deadline=None)
@given(cuts=st.lists(st.integers(min_value=1, max_value=len(EVENTS) - 1), max_size=12, unique=True),
       redeliver=st.integers(min_value=0, max_value=5))
def test_rows_do_not_depend_on_batch_boundaries_or_redelivery(cuts: list[int], redeliver: int) -> None:
    whole = FakeTables()
    whole.apply(EVENTS)
    split = FakeTables()
    bounds = [0, *sorted(cuts), len(EVENTS)]
    batches = [EVENTS[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]
    for i, b in enumerate(batches):
        split.apply(b)
        if i < redeliver:
            split.apply(b)  # redelivered: changes nothing
    assert split.tables == whole.tables and split.counters == whole.counters and split.offset == whole.offset


TWO = items(two_accounts(n_bulk=4))


@settings(max_examples=30, deadline=None)
@given(cuts=st.lists(st.integers(min_value=1, max_value=len(TWO) - 1), max_size=10, unique=True))
def test_two_accounts_rows_do_not_depend_on_batch_boundaries(cuts: list[int]) -> None:
    whole = FakeTables()
    whole.apply(TWO)
    split = FakeTables()
    bounds = [0, *sorted(cuts), len(TWO)]
    for a, b in zip(bounds, bounds[1:], strict=False):
        split.apply(TWO[a:b])
    assert split.tables == whole.tables and split.counters == whole.counters


def test_each_row_and_counter_is_its_events_account() -> None:
    w = fold_batch(TWO, {})
    rows = w.tables["content_metadata"]
    assert {r.account for r in rows.values()} == {"default", RUNNER}
    assert rows[did(1, RUNNER)].account == RUNNER and rows[did(1)].account == "default"
    # same scope and arm in two accounts: two rows; the runner's learner does not overwrite the default's
    assert {k[0] for k in w.tables["bandit_arms"]} == {"default", RUNNER}
    assert w.account_counters[RUNNER][(POSTS_ATTEMPTED, "")][0] == 2
    assert w.counters[(POSTS_ATTEMPTED, "")][0] == 9 + 4  # the default account's
    assert list(w.tables["accounts"]) == [RUNNER]


def test_flagged_claims_are_kept_on_the_row_for_the_person_approving() -> None:
    claim = "We cut p95 latency by 42% last quarter."
    row = fold_all([queued(1, flagged_claims=[claim]),
                    DecisionApproved(event_id="ap", occurred_at=T0, decision_id=did(1))])
    assert row is not None and (row.flagged_claims, row.approval) == (f'["{claim}"]', "approved")
    assert fold_all([queued(2)]).flagged_claims == "[]"  # type: ignore[union-attr]
    # a later skip by the claims gate says which sentence blocked it; a later skip without any keeps them
    q = queued(3)
    sk = DecisionSkipped(**{**{f: getattr(q, f) for f in q.__struct_fields__ if f != "event_id"},
                            "event_id": "s", "flagged_claims": [claim]}, gate="claims",
                         skip_reason="unsupported_claim")
    row = fold_all([q, sk])
    assert row is not None and (row.status, row.gate, row.flagged_claims) == ("skipped", "claims", f'["{claim}"]')


def test_x_limit_answers_are_rows_and_an_answer_in_doubt_is_not_one() -> None:
    until = T0 + timedelta(minutes=15)
    evs = [queued(1), *[DecisionPostFailed(event_id=f"f{i}", occurred_at=T0 + timedelta(minutes=i), decision_id=did(1),
                                           attempt=1, error="x", error_code=code, in_doubt=doubt, paused_until=pu)
                        for i, (code, doubt, pu) in enumerate((("429", False, until), ("226", False, None),
                                                               ("429", True, until), ("timeout", False, None)))]]
    w = fold_batch(items(evs), {})
    assert [(r[0], r[2], r[4]) for r in w.tables["x_limit_answers"].values()] == [(2, "429", until), (3, "226", None)]
    assert w.rows == 1 + 2 + 1  # the decision row, the two answers and the real_drafts_queued counter


def test_highlight_marks_each_flagged_sentence_and_escapes_the_rest() -> None:
    from services.gateway.routers.dashboard import highlight_claims

    text = "A <b>tip</b>. We grew 40% & more. Again: We grew 40% & more."
    out = str(highlight_claims(text, ["We grew 40% & more.", "", "not in the text"]))
    mark = '<mark class="claim">We grew 40% &amp; more.</mark>'
    assert out == f"A &lt;b&gt;tip&lt;/b&gt;. {mark} Again: {mark}"
    assert str(highlight_claims("abcdef", ["abcd", "cdef"])) == '<mark class="claim">abcdef</mark>'  # merged
    assert str(highlight_claims("<i>", [])) == "&lt;i&gt;"


def test_the_registry_derives_what_the_projection_decodes_and_writes() -> None:
    from services.gateway import sql
    from services.gateway.read_models import DECODED, DISPATCH, steps_for
    from shared.events import TYPE_NAMES, AccountConfigured, OutcomeCollectionFailed

    assert sql.READ_MODEL_TABLES == tuple(m.table for m in READ_MODELS) and len(set(sql.READ_MODEL_TABLES)) == 12
    # every event type some table folds is decoded; the ones no table holds are skipped from their subjects
    assert DECODED == set(TYPE_NAMES) - {"outcome.collection_failed"}
    assert [t for t, _ in DISPATCH[AccountConfigured]] == ["accounts"]
    assert steps_for(OutcomeCollectionFailed) == ()
    # an event's folds run in registry order: the decision row first, then the rows the event adds elsewhere
    assert [t for t, _ in DISPATCH[DecisionPosted]] == ["content_metadata", "posted_decisions"]
    assert [t for t, _ in DISPATCH[DecisionPostFailed]] == ["content_metadata", "x_limit_answers"]
    for m in READ_MODELS:  # every row a fold makes fits its upsert (tuples in column order, last_seq included)
        assert "last_seq" in m.upsert.names and set(m.upsert.key) <= set(m.upsert.names)
    w = fold_batch(items(scenario()), {})
    for m in READ_MODELS:
        assert all(len(r) == len(m.upsert.columns) for r in m.rows(w)), m.table
