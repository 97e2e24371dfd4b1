"""The gate chain (quality, claims, uniqueness, rotation) and X's text rules, as pure functions."""

from .chain import ChainOutcome, GateConfig, format_block_line, guarded, run_gate_chain
from .claims import Claim, ClaimPolicy, claims_gate, flagged_claims
from .quality import quality_gate
from .result import GateResult
from .rotation import RotationEntry, RotationWindow, rotation_gate
from .text import content_hash, fits_tweet, normalize_for_hash, weighted_length
from .uniqueness import UniquenessIndex, as_unit_vector, uniqueness_gate

__all__ = [
    "ChainOutcome",
    "Claim",
    "ClaimPolicy",
    "GateConfig",
    "GateResult",
    "RotationEntry",
    "RotationWindow",
    "UniquenessIndex",
    "as_unit_vector",
    "claims_gate",
    "content_hash",
    "fits_tweet",
    "flagged_claims",
    "format_block_line",
    "guarded",
    "normalize_for_hash",
    "quality_gate",
    "rotation_gate",
    "run_gate_chain",
    "uniqueness_gate",
    "weighted_length",
]
