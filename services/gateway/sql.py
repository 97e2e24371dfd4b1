"""SQL the projector writes with, derived from the read-model registry (``read_models``): the tables a rebuild
truncates, the staging tables of the COPY path, and the statements around a batch (the decision rows it loads,
the offset row it locks and moves). Each table's upsert is its ``ReadModel.upsert`` (``read_models.Upsert``).
"""

from __future__ import annotations

from .domain import DECISION_COLUMNS
from .read_models import DECISIONS, READ_MODELS, Upsert

__all__ = ["COPY_MIN_ROWS", "CREATE_STAGES", "INIT_OFFSET", "LOAD_DECISIONS", "LOCK_OFFSET", "READ_MODEL_TABLES",
           "SET_OFFSET", "UPSERTS", "Upsert"]

#: the read models ``xbot replay --rebuild`` truncates (projection_offsets is reset, not truncated)
READ_MODEL_TABLES: tuple[str, ...] = tuple(m.table for m in READ_MODELS)
UPSERTS: tuple[Upsert, ...] = tuple(m.upsert for m in READ_MODELS)
#: run once per connection: the staging tables of the COPY path
CREATE_STAGES = "; ".join(u.create_stage for u in UPSERTS)
#: from this many rows of one table in one batch, COPY + upsert from staging beats column arrays
COPY_MIN_ROWS = 200

LOAD_DECISIONS = (f"SELECT {', '.join(DECISION_COLUMNS)} FROM {DECISIONS.table} "
                  f"WHERE decision_id = ANY($1::uuid[])")
LOCK_OFFSET = "SELECT last_seq FROM projection_offsets WHERE projector = $1 FOR UPDATE"
INIT_OFFSET = "INSERT INTO projection_offsets (projector, last_seq) VALUES ($1, 0) ON CONFLICT (projector) DO NOTHING"
SET_OFFSET = "UPDATE projection_offsets SET last_seq = $2, updated_at = now() WHERE projector = $1"
