"""Golden wire-format tests: a change to an event contract must be noticed here."""

from datetime import UTC, datetime

import msgspec
import pytest

from shared.events import (
    EVENT_TYPES,
    DecisionPosted,
    DecisionQueued,
    DecodeError,
    OutcomeRecorded,
    bytes_float32,
    decode,
    encode,
    float32_bytes,
    subject_of,
)
from shared.events.subjects import AGGREGATES

pytestmark = pytest.mark.unit
T = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)

GOLDEN_POSTED = (
    b'{"type":"decision.posted","event_id":"e1","occurred_at":"2026-11-24T12:00:00Z","schema":2,'
    b'"account":"default","correlation_id":"run-1","causation_id":null,"decision_id":"d1","tweet_id":"1234567890123456789",'
    b'"posted_at":"2026-11-24T12:00:00Z","decision_type":"single","bandit_arm":"ai:how_to","timing_arm":"14",'
    b'"url":"https://x.com/a/status/1234567890123456789","simulated":false,"recovered":false,"thread_tweet_ids":[]}'
)


def test_posted_golden() -> None:
    e = DecisionPosted(
        event_id="e1", occurred_at=T, correlation_id="run-1", decision_id="d1", tweet_id="1234567890123456789",
        posted_at=T, decision_type="single", bandit_arm="ai:how_to", timing_arm="14",
        url="https://x.com/a/status/1234567890123456789",
    )
    assert encode(e) == GOLDEN_POSTED
    assert decode(GOLDEN_POSTED) == e
    assert subject_of(e) == "xbot.evt.decision.d1.posted"


#: the same event as schema-1 code wrote it (no account)
GOLDEN_POSTED_V1 = GOLDEN_POSTED.replace(b'"schema":2,"account":"default",', b'"schema":1,')


def test_schema_1_is_upcast_into_the_default_account() -> None:
    assert b'"account"' not in GOLDEN_POSTED_V1
    e = decode(GOLDEN_POSTED_V1)
    assert e.schema == 2 and e.account == "default"
    assert encode(e) == GOLDEN_POSTED


def test_schema_1_naming_an_account_is_refused() -> None:
    with pytest.raises(DecodeError, match="schema-1 event has no account"):
        decode(GOLDEN_POSTED_V1.replace(b'"schema":1,', b'"schema":1,"account":"acme",'))


def test_another_account_is_in_payload_and_subject() -> None:
    e = msgspec.structs.replace(decode(GOLDEN_POSTED), account="acme")
    assert b'"account":"acme"' in encode(e) and decode(encode(e)) == e
    assert subject_of(e) == "xbot.evt.acme.decision.d1.posted"


@pytest.mark.parametrize("account", ["Acme", "a.b", "a b", "", "x" * 33, "a>"])
def test_an_account_that_is_not_a_subject_token_does_not_decode(account: str) -> None:
    bad = GOLDEN_POSTED.replace(b'"account":"default"', b'"account":' + msgspec.json.encode(account))
    with pytest.raises(DecodeError):
        decode(bad)


def test_outcome_golden_fields() -> None:
    fields = [f for f in OutcomeRecorded.__struct_fields__]
    assert fields == [
        "event_id", "occurred_at", "schema", "account", "correlation_id", "causation_id", "decision_id", "tweet_id",
        "horizon_hours", "impressions", "likes", "retweets", "replies", "bookmarks", "quotes", "er_calculated",
        "simulated", "collected_at", "bandit_arm", "timing_arm", "decision_type",
    ]


def test_queued_fields_cover_content_metadata_columns() -> None:
    cols = {
        "decision_id", "decision_type", "content", "bandit_arm", "timing_arm", "quality_score", "predicted_er",
        "generation_source", "scheduled_at", "topic_cluster", "angle", "content_hash", "features", "embedding",
        "target_tweet_id", "target_username",
    }
    assert cols <= set(DecisionQueued.__struct_fields__)


def test_every_type_round_trips_and_has_unique_tag() -> None:
    tags = [t.__struct_config__.tag for t in EVENT_TYPES]
    assert len(tags) == len(set(tags))
    for t in EVENT_TYPES:
        assert t.__struct_config__.tag == f"{t.aggregate}.{t.name}"


def test_embedding_is_float32_bytes() -> None:
    import numpy as np

    v = np.array([0.5, -1.25, 3.0], dtype=np.float32)
    b = float32_bytes(v)
    assert len(b) == 12
    assert np.array_equal(bytes_float32(b), v)
    raw = msgspec.json.encode({"embedding": b})
    assert b'"embedding":"' in raw  # base64 in JSON, not a list of floats


@pytest.mark.parametrize(
    "payload",
    [b"", b"{", b"[]", b'{"type":"nope.nope"}', b'{"type":"decision.posted"}',
     GOLDEN_POSTED.replace(b'"schema":2', b'"schema":99')],
)
def test_malformed_is_a_decode_error(payload: bytes) -> None:
    with pytest.raises(DecodeError):
        decode(payload)


def test_the_two_subject_shapes_never_match_each_other() -> None:
    from shared.bus.core import BusNames, subject_matches
    from shared.events.subjects import parse_event_subject

    names = BusNames("xbot")
    default, acme = "xbot.evt.decision.d1.posted", "xbot.evt.acme.decision.d1.posted"
    assert parse_event_subject(default) == ("default", "decision.posted")
    assert parse_event_subject(acme) == ("acme", "decision.posted")
    assert parse_event_subject("xbot.evt.decision") is None
    assert subject_matches(names.account_events("default"), default)
    assert not subject_matches(names.account_events("default"), acme)
    assert subject_matches(names.account_events("acme"), acme)
    assert not subject_matches(names.account_events("acme"), default)
    assert subject_matches(names.history("decision", "d1"), default)
    assert not subject_matches(names.history("decision", "d1"), acme)
    assert subject_matches(names.history("decision", "d1", "acme"), acme)
    both = names.event_type("decision", "posted")
    assert [subject_matches(f, default) for f in both] == [True, False]
    assert [subject_matches(f, acme) for f in both] == [False, True]


@pytest.mark.parametrize("account", sorted(AGGREGATES))
def test_an_account_may_not_be_named_like_an_aggregate(account: str) -> None:
    from shared.events.subjects import event_subject

    with pytest.raises(ValueError, match="named like an aggregate"):
        event_subject("decision", "d1", "posted", account=account)
