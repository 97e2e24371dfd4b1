"""Uniqueness gate: a draft must not repeat any queued or posted decision of the window.

The earlier system compared a draft with an arbitrary 100 rows. Here ``UniquenessIndex`` holds EVERY queued and
posted decision of the last ``window_days`` -- unit-normalised float32 embeddings in one preallocated matrix that
doubles when full (amortised O(1) append), plus the normalised content hashes -- and a check is one
matrix-vector product over all rows, with the window applied as a vectorised mask. The owner keeps it in step
with the decision events: ``add`` on queued (and posted), ``remove`` when a decision becomes skipped, failed or
rejected; ``prune(now)`` only frees memory, since the check ignores rows older than the window anyway.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

import msgspec
import numpy as np

from .result import GateResult

GATE = "uniqueness"
DEFAULT_WINDOW_DAYS = 30
_INITIAL_CAPACITY = 1024


def as_unit_vector(embedding: Any, dim: int | None = None) -> np.ndarray:
    """A float32 unit vector from an array, a list or float32 bytes (as embeddings travel on the bus)."""
    if isinstance(embedding, bytes | bytearray | memoryview):
        vec = np.frombuffer(embedding, dtype=np.float32)
    else:
        vec = np.asarray(embedding, dtype=np.float32)
    vec = vec.reshape(-1)
    if vec.size == 0:
        raise ValueError("empty embedding")
    if dim is not None and vec.size != dim:
        raise ValueError(f"embedding has {vec.size} dimensions, the index has {dim}")
    if not np.all(np.isfinite(vec)):
        raise ValueError("embedding has non-finite values")
    norm = float(np.linalg.norm(vec))
    if norm == 0.0:
        raise ValueError("zero embedding")
    return (vec / norm).astype(np.float32, copy=False)


class Match(msgspec.Struct, frozen=True):
    """What a check found: the exact-hash twin (if any) and the nearest decision by cosine."""

    hash_match_id: str | None
    nearest_id: str | None
    max_cosine: float
    compared: int


class UniquenessIndex:
    """Embeddings and content hashes of the queued and posted decisions within ``window_days``."""

    def __init__(
        self,
        *,
        window_days: float = DEFAULT_WINDOW_DAYS,
        dim: int | None = None,
        capacity: int = _INITIAL_CAPACITY,
    ) -> None:
        self.window = timedelta(days=window_days)
        self.dim = dim
        self._capacity = max(1, capacity)
        self._matrix: np.ndarray | None = None
        self._times = np.empty(self._capacity, dtype=np.float64)
        self._ids: list[str] = []
        self._hashes: list[str] = []
        self._row: dict[str, int] = {}
        self._by_hash: dict[str, set[str]] = {}
        #: bumped whenever a row that is not the newest changes (replaced, moved, pruned): similarities computed
        #: before against the rows then in use are stale once it moves
        self._version = 0
        #: ``prepare``'s similarities, per draft embedding, to rows ``[0, n)`` as of index version ``v``
        self._prepared: dict[bytes, np.ndarray] = {}
        self._prepared_at = (-1, 0)

    def __getstate__(self) -> dict[str, Any]:
        """For snapshots: only the rows in use (the spare capacity is uninitialised memory)."""
        n = len(self._ids)
        state = dict(self.__dict__)
        state["_matrix"] = None if self._matrix is None else self._matrix[:n].copy()
        state["_times"] = self._times[:n].copy()
        state["_prepared"], state["_prepared_at"] = {}, (-1, 0)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update({"_version": 0, "_prepared": {}, "_prepared_at": (-1, 0), **state})
        n, cap = len(self._ids), self._capacity
        times = np.empty(cap, dtype=np.float64)
        times[:n] = state["_times"]
        self._times = times
        if state["_matrix"] is not None:
            matrix = np.empty((cap, state["_matrix"].shape[1]), dtype=np.float32)
            matrix[:n] = state["_matrix"]
            self._matrix = matrix

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, decision_id: object) -> bool:
        return decision_id in self._row

    @property
    def capacity(self) -> int:
        return self._capacity

    def _ensure_matrix(self, dim: int) -> np.ndarray:
        if self._matrix is None:
            self.dim = dim
            self._matrix = np.empty((self._capacity, dim), dtype=np.float32)
        return self._matrix

    def _grow(self, needed: int) -> None:
        if needed <= self._capacity:
            return
        new_cap = self._capacity
        while new_cap < needed:
            new_cap *= 2
        if self._matrix is not None:
            grown = np.empty((new_cap, self._matrix.shape[1]), dtype=np.float32)
            grown[: len(self._ids)] = self._matrix[: len(self._ids)]
            self._matrix = grown
        times = np.empty(new_cap, dtype=np.float64)
        times[: len(self._ids)] = self._times[: len(self._ids)]
        self._times = times
        self._capacity = new_cap

    def add(self, decision_id: str, embedding: Any, content_hash: str, at: datetime) -> None:
        """Index a queued/posted decision; adding the same id again replaces its row (idempotent)."""
        vec = as_unit_vector(embedding, self.dim)
        self._ensure_matrix(vec.size)
        row = self._row.get(decision_id)
        if row is None:
            self._grow(len(self._ids) + 1)
            row = len(self._ids)
            self._ids.append(decision_id)
            self._hashes.append(content_hash)
            self._row[decision_id] = row
        else:
            self._version += 1
            self._unlink_hash(decision_id, self._hashes[row])
            self._hashes[row] = content_hash
        matrix = self._matrix  # read after _grow, which may reallocate it
        assert matrix is not None
        matrix[row] = vec
        self._times[row] = at.timestamp()
        self._by_hash.setdefault(content_hash, set()).add(decision_id)

    def add_many(
        self,
        decision_ids: Sequence[str],
        embeddings: Any,
        content_hashes: Sequence[str],
        ats: Sequence[datetime],
    ) -> None:
        """Bulk ``add`` (e.g. on replay): rows are copied in one slice assignment when the ids are new."""
        mat = np.asarray(embeddings, dtype=np.float32)
        if mat.ndim != 2 or not (len(decision_ids) == mat.shape[0] == len(content_hashes) == len(ats)):
            raise ValueError("add_many needs as many ids, hashes and times as embedding rows")
        if any(d in self._row for d in decision_ids) or len(set(decision_ids)) != len(decision_ids):
            for args in zip(decision_ids, mat, content_hashes, ats, strict=True):
                self.add(*args)
            return
        if mat.shape[0] == 0:
            return
        if self.dim is not None and mat.shape[1] != self.dim:
            raise ValueError(f"embeddings have {mat.shape[1]} dimensions, the index has {self.dim}")
        norms = np.linalg.norm(mat, axis=1)
        if not np.all(np.isfinite(mat)) or np.any(norms == 0):
            raise ValueError("zero or non-finite embedding in batch")
        self._ensure_matrix(mat.shape[1])
        start = len(self._ids)
        self._grow(start + mat.shape[0])
        assert self._matrix is not None
        self._matrix[start : start + mat.shape[0]] = mat / norms[:, None]
        self._times[start : start + mat.shape[0]] = [a.timestamp() for a in ats]
        for i, (d, h) in enumerate(zip(decision_ids, content_hashes, strict=True)):
            self._ids.append(d)
            self._hashes.append(h)
            self._row[d] = start + i
            self._by_hash.setdefault(h, set()).add(d)

    def _unlink_hash(self, decision_id: str, h: str) -> None:
        ids = self._by_hash.get(h)
        if ids is not None:
            ids.discard(decision_id)
            if not ids:
                del self._by_hash[h]

    def remove(self, decision_id: str) -> bool:
        """Forget a decision (it became skipped, failed or rejected); O(1) by moving the last row into its slot."""
        row = self._row.pop(decision_id, None)
        if row is None:
            return False
        self._version += 1
        self._unlink_hash(decision_id, self._hashes[row])
        last = len(self._ids) - 1
        if row != last:
            assert self._matrix is not None
            moved = self._ids[last]
            self._matrix[row] = self._matrix[last]
            self._times[row] = self._times[last]
            self._ids[row] = moved
            self._hashes[row] = self._hashes[last]
            self._row[moved] = row
        self._ids.pop()
        self._hashes.pop()
        return True

    def prune(self, now: datetime) -> int:
        """Drop rows older than the window; returns how many were dropped."""
        n = len(self._ids)
        if n == 0:
            return 0
        keep = self._times[:n] >= (now - self.window).timestamp()
        dropped = n - int(keep.sum())
        if dropped == 0:
            return 0
        self._version += 1
        kept_rows = np.flatnonzero(keep)
        assert self._matrix is not None
        self._matrix[: len(kept_rows)] = self._matrix[kept_rows]
        self._times[: len(kept_rows)] = self._times[kept_rows]
        ids = [self._ids[i] for i in kept_rows]
        hashes = [self._hashes[i] for i in kept_rows]
        self._ids, self._hashes = ids, hashes
        self._row = {d: i for i, d in enumerate(ids)}
        self._by_hash = {}
        for d, h in zip(ids, hashes, strict=True):
            self._by_hash.setdefault(h, set()).add(d)
        return dropped

    def prepare(self, embeddings: Sequence[bytes]) -> None:
        """Compare a batch of drafts with every row in use now in ONE matrix product. A later ``check`` of one of
        these embeddings (float32 bytes, as the drafts carry them) then reuses its row of that product and only
        computes against the rows added since; if any older row changed meanwhile it computes afresh. The batch
        replaces the one before; ``forget_prepared`` drops it."""
        self._prepared = {}
        n = len(self._ids)
        if n == 0 or self._matrix is None or not embeddings:
            return
        vecs = np.stack([as_unit_vector(e, self.dim) for e in embeddings])
        sims = vecs @ self._matrix[:n].T
        self._prepared = {bytes(e): sims[i] for i, e in enumerate(embeddings)}
        self._prepared_at = (self._version, n)

    def forget_prepared(self) -> None:
        self._prepared = {}

    def _similarities(self, embedding: Any, vec: np.ndarray, n: int) -> np.ndarray:
        """Cosine of ``vec`` with rows ``[0, n)``: from ``prepare``'s product when it is still current."""
        assert self._matrix is not None
        pre = self._prepared.get(embedding) if self._prepared and isinstance(embedding, bytes) else None
        version, upto = self._prepared_at
        if pre is None or version != self._version or upto > n:
            return self._matrix[:n] @ vec
        if upto == n:
            return pre
        return np.concatenate([pre, self._matrix[upto:n] @ vec])

    def ids(self) -> list[str]:
        return list(self._ids)

    def check(
        self, embedding: Any, content_hash: str, *, now: datetime, exclude: Iterable[str] = ()
    ) -> Match:
        """Compare a draft with every in-window row: one hash lookup and one matrix-vector product."""
        n = len(self._ids)
        excluded = set(exclude)
        cutoff = (now - self.window).timestamp()
        hash_match = None
        for d in sorted(self._by_hash.get(content_hash, ())):
            if d not in excluded and self._times[self._row[d]] >= cutoff:
                hash_match = d
                break
        if n == 0:
            as_unit_vector(embedding, self.dim)  # still validate the draft's embedding
            return Match(hash_match, None, 0.0, 0)
        assert self._matrix is not None
        vec = as_unit_vector(embedding, self.dim)
        sims = self._similarities(embedding, vec, n)
        valid = self._times[:n] >= cutoff
        for d in excluded:
            row = self._row.get(d)
            if row is not None:
                valid[row] = False
        compared = int(valid.sum())
        if compared == 0:
            return Match(hash_match, None, 0.0, 0)
        masked = np.where(valid, sims, -np.inf)
        best = int(np.argmax(masked))
        max_cos = float(np.clip(masked[best], -1.0, 1.0))
        return Match(hash_match, self._ids[best], max_cos, compared)


def uniqueness_gate(
    embedding: Any,
    content_hash: str,
    index: UniquenessIndex,
    *,
    threshold: float,
    now: datetime,
    exclude: Iterable[str] = (),
) -> GateResult:
    """Block an exact normalised-hash repeat (score 1.0) or a draft with cosine >= ``threshold`` to any row."""
    m = index.check(embedding, content_hash, now=now, exclude=exclude)
    details: dict[str, Any] = {
        "threshold": threshold,
        "compared": m.compared,
        "max_cosine": round(m.max_cosine, 6),
        "nearest_decision_id": m.nearest_id,
        "window_days": index.window.total_seconds() / 86400,
    }
    if m.hash_match_id is not None:
        details["duplicate_of"] = m.hash_match_id
        return GateResult(GATE, False, "duplicate_hash", 1.0, details)
    if m.nearest_id is not None and m.max_cosine >= threshold:
        return GateResult(GATE, False, "too_similar", m.max_cosine, details)
    return GateResult(GATE, True, "ok", m.max_cosine, details)
