"""The X accounts a stack runs: their profiles (``profile``) and where they come from (``loader``).

``load_accounts()`` reads ``XBOT_ACCOUNTS_FILE`` / ``$XBOT_HOME/accounts.toml`` or, without a file, builds the
one ``default`` account of today's environment; ``docs/accounts.example.toml`` shows the file.
"""

from .loader import (
    ACCOUNT_FLAGS,
    ACCOUNTS_FILE_NAME,
    DEFAULT_REPLY_SEARCHES,
    DEFAULT_REPLY_TARGETS,
    AccountsError,
    accounts_path,
    default_account_from_env,
    dump_accounts,
    load_accounts,
    load_accounts_file,
    parse_accounts,
    session_problem,
    validate_document,
)
from .profile import (
    DEFAULT_ACCOUNT,
    PUBLISHERS,
    AccountProfile,
    Limits,
    LlmChoice,
    Persona,
    Replies,
    SessionRef,
    decode_profile,
    encode_profile,
    parse_session_ref,
    profile_digest,
)

__all__ = [
    "ACCOUNTS_FILE_NAME",
    "ACCOUNT_FLAGS",
    "DEFAULT_ACCOUNT",
    "DEFAULT_REPLY_SEARCHES",
    "DEFAULT_REPLY_TARGETS",
    "PUBLISHERS",
    "AccountProfile",
    "AccountsError",
    "Limits",
    "LlmChoice",
    "Persona",
    "Replies",
    "SessionRef",
    "accounts_path",
    "decode_profile",
    "default_account_from_env",
    "dump_accounts",
    "encode_profile",
    "load_accounts",
    "load_accounts_file",
    "parse_accounts",
    "parse_session_ref",
    "profile_digest",
    "session_problem",
    "validate_document",
]
