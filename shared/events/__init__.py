"""Event contracts: the envelope, every event as a frozen msgspec Struct, subjects, encode/decode."""

from .account import AccountConfigured
from .base import (
    ACCOUNT_PATTERN,
    SCHEMA_VERSION,
    AccountId,
    Event,
    bytes_float32,
    float32_bytes,
    new_event_id,
    utcnow,
)
from .commands import JOBS, Command
from .decision import (
    DecisionApproved,
    DecisionAttentionNeeded,
    DecisionDoubtResolved,
    DecisionPartPosted,
    DecisionPosted,
    DecisionPostFailed,
    DecisionPostSkipped,
    DecisionPostStarted,
    DecisionQueued,
    DecisionRejected,
    DecisionRescheduled,
    DecisionSkipped,
)
from .llm import FAILURE_REASONS, LlmCallCompleted, LlmCallFailed
from .model import ArmState, ModelUpdated, PredictorState, SlotState
from .ops import FlagChanged, JobCompleted
from .outcome import OutcomeCollectionFailed, OutcomeRecorded
from .registry import (
    EVENT_TYPES,
    TYPE_NAMES,
    AnyEvent,
    DecodeError,
    decode,
    decode_command,
    encode,
    subject_of,
    upcast,
)
from .subjects import DEFAULT_ACCOUNT

__all__ = [
    "AccountConfigured",
    "ACCOUNT_PATTERN", "AccountId", "DEFAULT_ACCOUNT", "upcast", "SCHEMA_VERSION", "Event", "bytes_float32", "float32_bytes", "new_event_id", "utcnow", "JOBS", "Command",
    "DecisionApproved", "DecisionAttentionNeeded", "DecisionDoubtResolved", "DecisionPartPosted", "DecisionPosted", "DecisionPostFailed", "DecisionPostSkipped",
    "DecisionPostStarted", "DecisionQueued", "DecisionRejected", "DecisionRescheduled", "DecisionSkipped",
    "FAILURE_REASONS", "LlmCallCompleted", "LlmCallFailed", "ArmState", "ModelUpdated", "PredictorState",
    "SlotState", "FlagChanged", "JobCompleted", "OutcomeCollectionFailed", "OutcomeRecorded", "EVENT_TYPES",
    "TYPE_NAMES", "AnyEvent", "DecodeError", "decode", "decode_command", "encode", "subject_of",
]
