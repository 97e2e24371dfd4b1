"""Uniqueness gate: every queued/posted decision of the window is compared, not an arbitrary 100 rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from shared.gates.text import content_hash
from shared.gates.uniqueness import UniquenessIndex, as_unit_vector, uniqueness_gate

pytestmark = pytest.mark.unit

NOW = datetime(2025, 10, 1, 12, 0, tzinfo=UTC)
DIM = 32


def rng_vectors(n: int, dim: int = DIM, seed: int = 7) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, dim), dtype=np.float32)


def unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def filled(n: int, *, days_span: float = 6.0) -> tuple[UniquenessIndex, np.ndarray]:
    """An index of n decisions d0 (oldest) .. d{n-1} (newest), spread over the last days_span days."""
    vecs = rng_vectors(n)
    index = UniquenessIndex(window_days=7)
    for i in range(n):
        at = NOW - timedelta(days=days_span) + timedelta(days=days_span) * i / n
        index.add(f"d{i}", vecs[i], content_hash(f"decision number {i}"), at)
    return index, vecs


def test_empty_index_passes_with_score_zero():
    r = uniqueness_gate(rng_vectors(1)[0], content_hash("hello"), UniquenessIndex(), threshold=0.85, now=NOW)
    assert (r.gate, r.passed, r.reason, r.score) == ("uniqueness", True, "ok", 0.0)
    assert r.details["compared"] == 0


def test_exact_normalised_hash_blocks_with_score_one():
    index, vecs = filled(10)
    index.add("dup", rng_vectors(1, seed=99)[0], content_hash("Ship small, ship often."), NOW)
    draft = rng_vectors(1, seed=123)[0]  # an unrelated embedding: the hash alone catches it
    r = uniqueness_gate(
        draft, content_hash("SHIP small -- ship often!! https://t.co/x"), index, threshold=0.85, now=NOW
    )
    assert (r.passed, r.reason, r.score) == (False, "duplicate_hash", 1.0)
    assert r.details["duplicate_of"] == "dup"


def test_near_duplicate_embedding_blocks_with_the_cosine_and_nearest_id():
    index, vecs = filled(50)
    draft = unit(vecs[17]) + 0.05 * unit(rng_vectors(1, seed=5)[0])
    r = uniqueness_gate(draft, content_hash("brand new text"), index, threshold=0.85, now=NOW)
    expected = float(unit(draft) @ unit(vecs[17]))
    assert not r.passed and r.reason == "too_similar"
    assert r.score == pytest.approx(expected, abs=1e-5) and r.score >= 0.85
    assert r.details["nearest_decision_id"] == "d17"
    assert r.details["compared"] == 50


def test_passes_below_threshold_with_score_the_max_cosine():
    index, vecs = filled(50)
    draft = rng_vectors(1, seed=77)[0]
    r = uniqueness_gate(draft, content_hash("brand new text"), index, threshold=0.85, now=NOW)
    cosines = np.array([unit(v) @ unit(draft) for v in vecs])
    assert r.passed and r.reason == "ok"
    assert r.score == pytest.approx(float(cosines.max()), abs=1e-5)
    assert r.details["nearest_decision_id"] == f"d{int(cosines.argmax())}"


def test_threshold_is_inclusive():
    index = UniquenessIndex()
    index.add("a", [1.0, 0.0], "h-a", NOW)
    draft = [0.85, float(np.sqrt(1 - 0.85**2))]  # cosine 0.85 exactly (to float32 precision)
    r = uniqueness_gate(draft, "h-new", index, threshold=0.8499, now=NOW)
    assert not r.passed and r.reason == "too_similar"
    assert uniqueness_gate(draft, "h-new", index, threshold=0.851, now=NOW).passed


def test_seed_defect_duplicate_of_500th_oldest_in_1000_rows_is_caught():
    """The earlier gate looked at 100 arbitrary rows; the 500th-oldest of 1,000 must still be found."""
    index, vecs = filled(1000)
    assert len(index) == 1000
    # by embedding
    r = uniqueness_gate(vecs[499] * 3.0, content_hash("reworded, new text"), index, threshold=0.85, now=NOW)
    assert not r.passed and r.reason == "too_similar"
    assert r.details["nearest_decision_id"] == "d499" and r.details["compared"] == 1000
    assert r.score == pytest.approx(1.0, abs=1e-5)
    # by hash, with an unrelated embedding
    r = uniqueness_gate(
        rng_vectors(1, seed=4242)[0], content_hash("Decision number 499!"), index, threshold=0.85, now=NOW
    )
    assert not r.passed and r.reason == "duplicate_hash" and r.details["duplicate_of"] == "d499"


def test_removed_decision_no_longer_blocks_and_moved_rows_stay_correct():
    index, vecs = filled(20)
    assert index.remove("d5")  # d19 is moved into d5's slot
    assert not index.remove("d5")
    assert len(index) == 19 and "d5" not in index
    r = uniqueness_gate(vecs[5], content_hash("decision number 5"), index, threshold=0.99, now=NOW)
    assert r.passed
    moved = uniqueness_gate(vecs[19], content_hash("other"), index, threshold=0.85, now=NOW)
    assert not moved.passed and moved.details["nearest_decision_id"] == "d19"
    dup = uniqueness_gate(
        rng_vectors(1, seed=1)[0], content_hash("decision number 19"), index, threshold=0.85, now=NOW
    )
    assert dup.reason == "duplicate_hash" and dup.details["duplicate_of"] == "d19"


def test_rows_older_than_the_window_are_ignored_then_pruned():
    index = UniquenessIndex(window_days=7)
    old_vec, new_vec = rng_vectors(2, seed=3)
    index.add("old", old_vec, "h-old", NOW - timedelta(days=8))
    index.add("new", new_vec, "h-new", NOW - timedelta(days=1))
    assert uniqueness_gate(old_vec, "h-old", index, threshold=0.85, now=NOW).passed
    assert not uniqueness_gate(old_vec, "h-old", index, threshold=0.85, now=NOW - timedelta(days=2)).passed
    assert index.prune(NOW) == 1
    assert index.ids() == ["new"]
    assert not uniqueness_gate(new_vec, "x", index, threshold=0.85, now=NOW).passed


def test_capacity_doubles_and_every_row_survives_growth():
    index = UniquenessIndex(capacity=4)
    vecs = rng_vectors(37)
    for i, v in enumerate(vecs):
        index.add(f"d{i}", v, f"h{i}", NOW)
    assert index.capacity == 64 and len(index) == 37
    for i in (0, 3, 4, 17, 36):
        r = uniqueness_gate(vecs[i], "fresh", index, threshold=0.999, now=NOW)
        assert r.details["nearest_decision_id"] == f"d{i}"


def test_adding_the_same_decision_twice_replaces_it():
    index = UniquenessIndex()
    a, b = rng_vectors(2, seed=11)
    index.add("d", a, "h1", NOW)
    index.add("d", b, "h2", NOW)
    assert len(index) == 1
    assert uniqueness_gate(a, "h1", index, threshold=0.99, now=NOW).passed
    assert uniqueness_gate(b, "zz", index, threshold=0.99, now=NOW).reason == "too_similar"
    assert uniqueness_gate(a, "h2", index, threshold=0.99, now=NOW).reason == "duplicate_hash"


def test_excluded_ids_are_not_compared():
    index, vecs = filled(5)
    r = uniqueness_gate(
        vecs[2], content_hash("decision number 2"), index, threshold=0.85, now=NOW, exclude=["d2"]
    )
    assert r.passed and r.details["compared"] == 4


def test_float32_bytes_embeddings_as_on_the_bus():
    index = UniquenessIndex()
    v = rng_vectors(1)[0]
    index.add("d", v.astype(np.float32).tobytes(), "h", NOW)
    assert not uniqueness_gate(v.tobytes(), "x", index, threshold=0.85, now=NOW).passed


def test_bad_embeddings_raise():
    index = UniquenessIndex(dim=4)
    with pytest.raises(ValueError):
        index.add("d", [1.0, 2.0, 3.0], "h", NOW)  # wrong dimension
    with pytest.raises(ValueError):
        as_unit_vector([0.0, 0.0])
    with pytest.raises(ValueError):
        as_unit_vector([float("nan"), 1.0])
    index.add("d", [1, 0, 0, 0], "h", NOW)
    with pytest.raises(ValueError):
        uniqueness_gate([1, 0], "x", index, threshold=0.85, now=NOW)


def test_add_many_matches_add():
    vecs = rng_vectors(300)
    ats = [NOW - timedelta(minutes=i) for i in range(300)]
    one, bulk = UniquenessIndex(capacity=8), UniquenessIndex(capacity=8)
    for i in range(300):
        one.add(f"d{i}", vecs[i], f"h{i}", ats[i])
    bulk.add_many([f"d{i}" for i in range(300)], vecs, [f"h{i}" for i in range(300)], ats)
    q = rng_vectors(1, seed=999)[0]
    a = uniqueness_gate(q, "h42", one, threshold=0.85, now=NOW)
    b = uniqueness_gate(q, "h42", bulk, threshold=0.85, now=NOW)
    assert a == b and a.details["duplicate_of"] == "d42"
    c = uniqueness_gate(q, "none", bulk, threshold=0.85, now=NOW)
    assert c.score == pytest.approx(uniqueness_gate(q, "none", one, threshold=0.85, now=NOW).score)


def test_100k_by_256_window_finds_the_planted_near_duplicate():
    """Correctness over 100,000 rows of 256 dimensions; the check is one product (speed is benchmarked elsewhere)."""
    n, dim, chunk = 100_000, 256, 10_000
    rng = np.random.default_rng(2025)
    index = UniquenessIndex(window_days=30, dim=dim)
    target = 73_421
    target_vec = None
    for start in range(0, n, chunk):
        block = rng.standard_normal((chunk, dim), dtype=np.float32)
        if start <= target < start + chunk:
            target_vec = block[target - start].copy()
        ids = [f"d{i}" for i in range(start, start + chunk)]
        index.add_many(
            ids, block, [f"h{i}" for i in range(start, start + chunk)], [NOW - timedelta(days=1)] * chunk
        )
    assert len(index) == n and index.capacity == 131_072
    assert target_vec is not None
    draft = unit(target_vec) + 0.1 * unit(rng.standard_normal(dim, dtype=np.float32))
    r = uniqueness_gate(draft, "unseen-hash", index, threshold=0.85, now=NOW)
    assert not r.passed and r.reason == "too_similar"
    assert r.details["nearest_decision_id"] == f"d{target}" and r.details["compared"] == n
    assert r.score > 0.98
    fresh = uniqueness_gate(
        rng.standard_normal(dim, dtype=np.float32), "h99999", index, threshold=0.85, now=NOW
    )
    assert fresh.reason == "duplicate_hash" and fresh.details["duplicate_of"] == "d99999"


def test_a_prepared_batch_gives_the_same_answers_as_checking_each_draft_afresh():
    """``prepare`` computes a batch's similarities in one product; ``check`` must still see every row in use at
    its own time: rows added since (the batch's own queued drafts), and a fresh computation after a row was
    replaced, removed or pruned."""
    index, _ = filled(300, days_span=9.0)
    drafts = [d.astype(np.float32).tobytes() for d in rng_vectors(12, seed=11)]
    index.prepare(drafts)
    fresh = UniquenessIndex(window_days=7)

    def same(i: int, now: datetime) -> None:
        got = index.check(drafts[i], "h", now=now, exclude=("d5",))
        index_prepared, index._prepared = index._prepared, {}  # the same check without the prepared product
        want = index.check(drafts[i], "h", now=now, exclude=("d5",))
        index._prepared = index_prepared
        assert (got.nearest_id, got.compared) == (want.nearest_id, want.compared)
        assert got.max_cosine == pytest.approx(want.max_cosine, abs=1e-6)

    for i in range(4):
        same(i, NOW)
        index.add(f"batch{i}", np.frombuffer(drafts[i], dtype=np.float32), f"hb{i}", NOW)  # queued: a new row
    assert index.check(drafts[1], "h", now=NOW).nearest_id == "batch1"  # rows added after prepare are compared
    index.remove("d250")  # moves the newest row (batch3) into its slot: the prepared product is stale
    same(3, NOW)
    assert index.check(drafts[3], "h", now=NOW).nearest_id == "batch3"
    index.prepare(drafts)
    index.add("d7", np.frombuffer(drafts[6], dtype=np.float32), "h7", NOW)  # replaces an old row in place
    same(6, NOW)
    assert index.check(drafts[6], "h", now=NOW).nearest_id == "d7"
    index.prepare(drafts)
    assert index.prune(NOW + timedelta(days=2)) > 0
    same(7, NOW + timedelta(days=2))
    index.forget_prepared()
    same(8, NOW)
    assert fresh.check(drafts[0], "h", now=NOW).compared == 0
