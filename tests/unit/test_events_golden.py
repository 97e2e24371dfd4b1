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

pytestmark = pytest.mark.unit
T = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)

GOLDEN_POSTED = (
    b'{"type":"decision.posted","event_id":"e1","occurred_at":"2026-11-24T12:00:00Z","schema":1,'
    b'"correlation_id":"run-1","causation_id":null,"decision_id":"d1","tweet_id":"1234567890123456789",'
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


def test_outcome_golden_fields() -> None:
    fields = [f for f in OutcomeRecorded.__struct_fields__]
    assert fields == [
        "event_id", "occurred_at", "schema", "correlation_id", "causation_id", "decision_id", "tweet_id",
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
     GOLDEN_POSTED.replace(b'"schema":1', b'"schema":99')],
)
def test_malformed_is_a_decode_error(payload: bytes) -> None:
    with pytest.raises(DecodeError):
        decode(payload)
