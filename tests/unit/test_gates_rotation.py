"""Rotation gate: topic <= 35%, angle <= 40% of the last 7 days' queued and posted decisions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.gates.rotation import RotationWindow, rotation_allows, rotation_gate, rotation_key

pytestmark = pytest.mark.unit

NOW = datetime(2025, 10, 1, 12, 0, tzinfo=UTC)


def window_with(topics: list[str], angles: list[str] | None = None, status: str = "queued") -> RotationWindow:
    w = RotationWindow()
    angles = angles or [f"angle{i % 5}" for i in range(len(topics))]
    for i, (t, a) in enumerate(zip(topics, angles, strict=True)):
        w.add(f"d{i}", t, a, NOW - timedelta(hours=i + 1), status)
    return w


def test_seed_defect_skipped_drafts_do_not_count():
    """10 skipped drafts of topic A must not block topic A (the earlier gate counted them)."""
    w = window_with(["B", "C", "D", "E", "F"] * 2)
    for i in range(10):
        w.add(f"skipped{i}", "A", "angle0", NOW - timedelta(minutes=i), status="skipped")
    assert len(w) == 10
    r = rotation_gate("A", "fresh-angle", w, now=NOW)
    assert r.passed and r.reason == "ok"
    assert r.details["topic_count"] == 0 and r.details["window_size"] == 10
    assert r.score == pytest.approx(1 / 11)


def test_queued_drafts_that_become_skipped_failed_or_rejected_leave_the_window():
    w = window_with(["B", "C", "D", "E", "F"] * 2)
    for i in range(6):
        w.add(f"a{i}", "A", f"x{i}", NOW - timedelta(minutes=i))
    assert not rotation_gate("A", "new", w, now=NOW).passed  # 7/17 > 35%
    for i, status in enumerate(["skipped", "failed", "rejected", "skipped"]):
        w.set_status(f"a{i}", status)
    r = rotation_gate("A", "new", w, now=NOW)
    assert r.passed and r.details["topic_count"] == 2 and r.details["window_size"] == 12


def test_posted_counts_like_queued():
    w = window_with(["A", "A", "A", "B", "C", "D", "E", "F", "G", "H"])
    for i in range(3):
        w.set_status(f"d{i}", "posted")
    r = rotation_gate("A", "new", w, now=NOW)
    assert not r.passed and r.details["topic_count"] == 3
    assert w.get("d0") is not None and w.get("d0").status == "posted"


def test_topic_share_above_35_percent_blocks_with_the_resulting_share():
    w = window_with(["A", "A", "A", "B", "C", "D", "E", "F", "G", "H"])
    r = rotation_gate("A", "new", w, now=NOW)
    assert (r.gate, r.passed, r.reason) == ("rotation", False, "topic_share_exceeded")
    assert r.score == pytest.approx(4 / 11)  # 0.364 > 0.35
    ok = rotation_gate("B", "new", w, now=NOW)
    assert ok.passed and ok.score == pytest.approx(2 / 11)


def test_topic_at_two_of_ten_passes():
    w = window_with(["A", "A", "B", "B", "C", "D", "E", "F", "G", "H"])
    r = rotation_gate("A", "new", w, now=NOW)
    assert r.passed and r.details["topic_share"] == pytest.approx(3 / 11)


def test_angle_share_above_40_percent_blocks():
    topics = [f"t{i}" for i in range(10)]
    w = window_with(topics, ["X", "X", "X", "X", "Y", "Y", "Z", "Z", "W", "W"])
    r = rotation_gate("new-topic", "X", w, now=NOW)
    assert not r.passed and r.reason == "angle_share_exceeded"
    assert r.score == pytest.approx(5 / 11)
    w.remove("d0")  # X now 3 of 9 -> 4/10 = 40%, not above
    r = rotation_gate("new-topic", "X", w, now=NOW)
    assert r.passed and r.details["angle_share"] == pytest.approx(0.4)


def test_small_window_is_not_enforced_so_a_fresh_account_can_post():
    empty = RotationWindow()
    r = rotation_gate("A", "X", empty, now=NOW)
    assert r.passed and r.reason == "below_min_sample" and r.score == 1.0
    w = window_with(["A"] * 9, ["X"] * 9)
    r = rotation_gate("A", "X", w, now=NOW)  # 9 < min_sample 10
    assert r.passed and r.reason == "below_min_sample" and r.details["enforced"] is False
    w.add("d9", "A", "X", NOW - timedelta(minutes=1))
    r = rotation_gate("A", "X", w, now=NOW)
    assert not r.passed and r.details["enforced"] is True
    assert rotation_gate("A", "X", w, now=NOW, min_sample=11).passed


def test_fresh_account_rotating_four_topics_and_three_angles_is_never_stalled():
    """A planner that picks the least-used topic and angle gets every draft through, week after week."""
    w = RotationWindow()
    topics, angles = ["ai", "startups", "devtools", "career"], ["how-to", "contrarian", "story"]
    for i in range(300):  # one draft every 2 h for 25 days, so the window fills and slides
        now = NOW + timedelta(hours=2 * i)
        _, tc, ac = w.counts(now)
        topic = min(topics, key=lambda t: (tc[t], topics.index(t)))
        angle = min(angles, key=lambda a: (ac[a], angles.index(a)))
        r = rotation_gate(topic, angle, w, now=now)
        assert r.passed, (i, r)
        w.add(f"d{i}", topic, angle, now)
        w.prune(now)
    n, tc, ac = w.counts(NOW + timedelta(hours=2 * 299))
    assert n == 85 and max(tc.values()) / n <= 0.35 and max(ac.values()) / n <= 0.40


def test_decisions_older_than_seven_days_do_not_count_and_are_pruned():
    w = RotationWindow()
    for i in range(10):
        w.add(f"old{i}", "A", "X", NOW - timedelta(days=8, minutes=i))
    for i, t in enumerate("BCDEFGHIJK"):
        w.add(f"new{i}", t, f"a{i}", NOW - timedelta(days=1))
    r = rotation_gate("A", "X", w, now=NOW)
    assert r.passed and r.details["topic_count"] == 0 and r.details["window_size"] == 10
    assert w.prune(NOW) == 10 and len(w) == 10


def test_topics_and_angles_compare_casefolded():
    w = window_with(["AI Tools", "ai tools", " AI  tools ", "B", "C", "D", "E", "F", "G", "H"])
    r = rotation_gate("ai TOOLS", "new", w, now=NOW)
    assert not r.passed and r.details["topic_count"] == 3


def test_adding_a_skipped_status_for_a_known_decision_removes_it():
    w = window_with(["A"] * 3)
    w.add("d1", "A", "angle1", NOW, status="skipped")
    assert "d1" not in w and len(w) == 2
    w.set_status("unknown", "posted")  # unknown ids are ignored
    assert len(w) == 2


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(["ai", "AI", "startups", "money"]), st.sampled_from(["how_to", "story"])),
             max_size=40),
    st.sampled_from(["ai", "startups", "money", "new"]), st.sampled_from(["how_to", "story", "list"]),
    st.sampled_from([0.2, 0.25, 0.35, 0.4, 0.5, 1.0]) | st.floats(0.05, 1.0),
    st.sampled_from([0.2, 0.25, 0.4, 0.5, 1.0]) | st.floats(0.05, 1.0), st.integers(0, 12),
)
def test_rotation_allows_is_the_gates_verdict(queued, topic, angle, topic_max, angle_max, min_sample):
    w = RotationWindow()
    for i, (t, a) in enumerate(queued):
        w.add(f"d{i}", t, a, NOW - timedelta(hours=i), "queued")
    n, topics, angles = w.counts(NOW)
    verdict = rotation_gate(topic, angle, w, now=NOW, topic_max=topic_max, angle_max=angle_max,
                            min_sample=min_sample).passed
    assert rotation_allows(topics.get(rotation_key(topic), 0), angles.get(rotation_key(angle), 0), n,
                           topic_max=topic_max, angle_max=angle_max, min_sample=min_sample) is verdict
