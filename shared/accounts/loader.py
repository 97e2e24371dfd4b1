"""Where the account profiles come from: ``accounts.toml`` (validated, every problem reported at once), or,
when there is no such file, the one ``default`` account today's environment describes.

``load_accounts`` picks the file: ``XBOT_ACCOUNTS_FILE`` when set (it must exist), else
``$XBOT_HOME/accounts.toml`` when that exists, else ``default_account_from_env``. ``validate_document``
checks a parsed document and raises ``AccountsError``, one line per problem, each naming the file, the
account (its id, or ``#<n>`` counting from 1 when the id itself is missing or bad) and the field.
``dump_accounts`` writes profiles back as TOML that loads to equal profiles.

A ``file:`` session path is used as written (a relative one is relative to the working directory).
"""

from __future__ import annotations

import difflib
import math
import os
import re
import tomllib
import zoneinfo
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from shared.errors import ConfigError
from shared.events.subjects import AGGREGATES
from shared.flags import SPECS, flags_from_env, format_value, parse_value
from shared.gates.claims import parse_facts, parse_languages
from shared.learning.arms import DEFAULT_ANGLES, DEFAULT_TOPICS

from .profile import (
    DEFAULT_ACCOUNT,
    PUBLISHERS,
    AccountProfile,
    Limits,
    LlmChoice,
    Persona,
    Replies,
    SessionRef,
    parse_session_ref,
)

#: flags an account may override for itself (the rest are the stack's)
ACCOUNT_FLAGS: tuple[str, ...] = (
    "POSTING_DISABLED",
    "LIVE_POSTS",
    "REQUIRE_APPROVAL",
    "REAL_METRICS_ENABLED",
    "MAX_POSTS_PER_HOUR",
    "MIN_POST_INTERVAL_MINUTES",
    "REPLY_MAX_PER_DAY",
    "X_COOLDOWN_MINUTES",
    "MIN_QUALITY_SCORE",
    "DUP_COSINE_THRESHOLD",
    "SIMILARITY_THRESHOLD",
    "OPENAI_MODEL",
    "DAILY_OPENAI_LIMIT_USD",
)

#: the replier's defaults for REPLY_TARGET_ACCOUNTS / REPLY_SEARCH_QUERIES, as lists (shared/ cannot import
#: services/, decision 0012; tests/unit/test_accounts_profile.py checks these equal ``ReplierSettings``'s)
DEFAULT_REPLY_TARGETS: tuple[str, ...] = ()
DEFAULT_REPLY_SEARCHES: tuple[str, ...] = ("AI agents", "LLM engineering", "developer productivity")

#: the file looked for in XBOT_HOME
ACCOUNTS_FILE_NAME = "accounts.toml"

ID_PATTERN = r"^[a-z][a-z0-9_-]{0,31}$"
USERNAME_PATTERN = r"^[A-Za-z0-9_]{1,15}$"
TOKEN_PATTERN = r"^[a-z][a-z0-9_]{0,39}$"
MAX_TOKENS = 40
MAX_EXAMPLE_POSTS = 10
MAX_POST_CHARS = 280
MAX_PERSONA_CHARS = 2000

_ID = re.compile(ID_PATTERN)
_USERNAME = re.compile(USERNAME_PATTERN)
_TOKEN = re.compile(TOKEN_PATTERN)

_ACCOUNT_KEYS = (
    "id", "username", "publisher", "session", "languages", "timezone", "active_hours", "topics", "angles",
    "facts", "example_posts", "banned_phrases", "persona", "limits", "replies", "llm", "flags",
)
_TABLE_KEYS: dict[str, tuple[str, ...]] = {
    "persona": ("name", "voice", "never_say"),
    "limits": ("posts_per_day", "max_posts_per_hour", "min_post_interval_minutes", "replies_per_day"),
    "replies": ("targets", "searches"),
    "llm": ("model", "daily_budget_usd"),
}


class AccountsError(ConfigError):
    """The accounts could not be loaded: ``problems`` holds one line per problem; ``str()`` joins them."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems: list[str] = list(problems)
        super().__init__("\n".join(self.problems))


# ----------------------------------------------------------------------------------------- small helpers


def _kind(value: Any) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "an array",
             dict: "a table"}
    return names.get(type(value), f"a {type(value).__name__}")


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _quote(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _suggest(key: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(key, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _strip_at(handle: str) -> str:
    return handle.strip().removeprefix("@")


def _comma_list(text: str) -> tuple[str, ...]:
    """``"a, b,,c"`` -> ``("a", "b", "c")`` (commas or new lines), as the replier splits its settings."""
    return tuple(p.strip() for p in re.split(r"[,\n]", text or "") if p.strip())


def session_problem(ref: SessionRef, environ: Mapping[str, str]) -> str | None:
    """Why the session a reference names is not at hand (``None`` when it is)."""
    if ref.kind == "env":
        return None if environ.get(ref.target, "").strip() else f"environment variable {ref.target} is not set"
    path = Path(ref.target).expanduser()
    if not path.is_file():
        return f"file {ref.target!r} does not exist"
    if not os.access(path, os.R_OK):
        return f"file {ref.target!r} is not readable"
    return None


class _Account:
    """The checks of one ``[[account]]`` table: each bad field adds one problem line and gives a default."""

    def __init__(self, problems: list[str], where: str) -> None:
        self.problems = problems
        self.where = where  # "<file>: account 'runner'" or "<file>: account #2"

    def add(self, field: str, message: str) -> None:
        self.problems.append(f"{self.where}: {field}: {message}")

    def unknown(self, table: Mapping[str, Any], known: Sequence[str], prefix: str = "") -> None:
        for key in table:
            if key not in known:
                self.problems.append(f"{self.where}: unknown key {prefix + key!r}{_suggest(key, known)}")

    def table(self, raw: Mapping[str, Any], key: str) -> dict[str, Any]:
        value = raw.get(key, {})
        if not isinstance(value, dict):
            self.add(key, f"must be a table ([account.{key}]), got {_kind(value)}")
            return {}
        return value

    def string(self, raw: Mapping[str, Any], key: str, default: str, field: str | None = None) -> str:
        value = raw.get(key, default)
        if not isinstance(value, str):
            self.add(field or key, f"must be a string, got {_kind(value)}")
            return default
        return value

    def integer(self, raw: Mapping[str, Any], key: str, default: int, field: str) -> int:
        value = raw.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            self.add(field, f"must be an integer, got {_kind(value)}")
            return default
        if value < 0:
            self.add(field, f"{value} is negative (at least 0)")
            return default
        return value

    def number(self, raw: Mapping[str, Any], key: str, default: float, field: str) -> float:
        value = raw.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.add(field, f"must be a number, got {_kind(value)}")
            return default
        if not math.isfinite(value) or value < 0:
            self.add(field, f"{value} must be a finite number >= 0")
            return default
        return float(value)

    def strings(self, raw: Mapping[str, Any], key: str, default: Sequence[str], field: str | None = None,
                *, max_items: int | None = None, max_chars: int | None = None) -> tuple[str, ...]:
        """A list of non-empty strings (each stripped)."""
        field = field or key
        value = raw.get(key, list(default))
        if not isinstance(value, list):
            self.add(field, f"must be an array of strings, got {_kind(value)}")
            return tuple(default)
        out: list[str] = []
        ok = True
        for i, item in enumerate(value):
            if not isinstance(item, str):
                self.add(f"{field}[{i}]", f"must be a string, got {_kind(item)}")
                ok = False
            elif not item.strip():
                self.add(f"{field}[{i}]", "is empty")
                ok = False
            elif max_chars is not None and len(item.strip()) > max_chars:
                self.add(f"{field}[{i}]", f"{len(item.strip())} characters (at most {max_chars})")
                ok = False
            else:
                out.append(item.strip())
        if max_items is not None and len(value) > max_items:
            self.add(field, f"{len(value)} items (at most {max_items})")
            ok = False
        return tuple(out) if ok else tuple(default)

    def tokens(self, raw: Mapping[str, Any], key: str, default: Sequence[str]) -> tuple[str, ...]:
        """Topics / angles: a non-empty list of unique ``TOKEN_PATTERN`` words, at most ``MAX_TOKENS``."""
        if key not in raw and not default:
            self.add(key, f"missing (at least one {key[:-1]})")
            return ()
        items = self.strings(raw, key, default, max_items=MAX_TOKENS)
        if key in raw and isinstance(raw[key], list) and not raw[key]:
            self.add(key, f"is empty (at least one {key[:-1]})")
        bad = [t for t in items if not _TOKEN.match(t)]
        for t in bad:
            self.add(key, f"{_quote(t)} must match {TOKEN_PATTERN} (lower-case letters, digits and _)")
        seen: set[str] = set()
        for t in items:
            if t in seen:
                self.add(key, f"{t!r} is listed twice")
            seen.add(t)
        return items


# --------------------------------------------------------------------------------------- one account


def _check_account(raw: Mapping[str, Any], where: str, problems: list[str], environ: Mapping[str, str]
                   ) -> AccountProfile:
    a = _Account(problems, where)
    a.unknown(raw, _ACCOUNT_KEYS)

    account_id = raw.get("id")  # checked by the caller (it names the account)
    publisher = a.string(raw, "publisher", "simulated")
    if publisher == "api":
        a.add("publisher", "'api' is not available yet (use 'simulated' or 'browser')")
        publisher = "simulated"
    elif publisher not in PUBLISHERS:
        a.add("publisher", f"{_quote(publisher)} is not a publisher (use 'simulated' or 'browser')")
        publisher = "simulated"

    username = _strip_at(a.string(raw, "username", ""))
    if username and not _USERNAME.match(username):
        a.add("username", f"{_quote(username)} is not an X handle ({USERNAME_PATTERN})")
    elif not username and publisher != "simulated" and isinstance(raw.get("username", ""), str):
        a.add("username", f"missing (publisher {publisher!r} needs the account's X handle)")

    session: str | None = a.string(raw, "session", "").strip() or None
    if session is not None:
        try:
            ref = parse_session_ref(session)
        except ValueError as exc:
            a.add("session", str(exc))
        else:
            session = str(ref)
            if publisher != "simulated":
                why = session_problem(ref, environ)
                if why:
                    a.add("session", f"missing session: {why}")
    elif publisher != "simulated" and isinstance(raw.get("session", ""), str):
        a.add("session", f"missing session (publisher {publisher!r} needs \"file:<path>\" or \"env:<VAR>\")")

    languages: tuple[str, ...] = ("en",)
    raw_languages = a.strings(raw, "languages", ("en",))
    try:
        languages = parse_languages(raw_languages)
    except ValueError as exc:
        a.add("languages", f"{exc}")

    timezone = a.string(raw, "timezone", "UTC")
    try:
        zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        a.add("timezone", f"{_quote(timezone)} is not a known timezone")
        timezone = "UTC"

    active_hours = (0, 24)
    hours = raw.get("active_hours", [0, 24])
    if (not isinstance(hours, list) or len(hours) != 2
            or any(isinstance(h, bool) or not isinstance(h, int) for h in hours)):
        a.add("active_hours", f"must be [start, end], two whole hours, got {_quote(hours)}")
    elif not 0 <= hours[0] < hours[1] <= 24:
        a.add("active_hours", f"{hours} must have 0 <= start < end <= 24")
    else:
        active_hours = (hours[0], hours[1])

    topics = a.tokens(raw, "topics", ())
    angles = a.tokens(raw, "angles", DEFAULT_ANGLES)
    facts = a.strings(raw, "facts", ())
    example_posts = a.strings(raw, "example_posts", (), max_items=MAX_EXAMPLE_POSTS, max_chars=MAX_POST_CHARS)
    banned = a.strings(raw, "banned_phrases", ())

    p = a.table(raw, "persona")
    a.unknown(p, _TABLE_KEYS["persona"], "persona.")
    persona = Persona(name=a.string(p, "name", "", "persona.name").strip(),
                      voice=a.string(p, "voice", "", "persona.voice").strip(),
                      never_say=a.strings(p, "never_say", (), "persona.never_say"))
    if len(persona.text()) > MAX_PERSONA_CHARS:
        a.add("persona", f"{len(persona.text())} characters of name, voice and never_say "
                         f"(at most {MAX_PERSONA_CHARS})")

    lim = a.table(raw, "limits")
    a.unknown(lim, _TABLE_KEYS["limits"], "limits.")
    d = Limits()
    per_hour = a.integer(lim, "max_posts_per_hour", d.max_posts_per_hour, "limits.max_posts_per_hour")
    limits = Limits(
        posts_per_day=a.integer(lim, "posts_per_day", 24 * per_hour, "limits.posts_per_day"),
        max_posts_per_hour=per_hour,
        min_post_interval_minutes=a.integer(lim, "min_post_interval_minutes", d.min_post_interval_minutes,
                                            "limits.min_post_interval_minutes"),
        replies_per_day=a.integer(lim, "replies_per_day", d.replies_per_day, "limits.replies_per_day"),
    )

    rep = a.table(raw, "replies")
    a.unknown(rep, _TABLE_KEYS["replies"], "replies.")
    targets = tuple(_strip_at(t) for t in a.strings(rep, "targets", (), "replies.targets"))
    for t in targets:
        if not _USERNAME.match(t):
            a.add("replies.targets", f"{_quote(t)} is not an X handle ({USERNAME_PATTERN})")
    replies = Replies(targets=targets, searches=a.strings(rep, "searches", (), "replies.searches"))

    llm_raw = a.table(raw, "llm")
    a.unknown(llm_raw, _TABLE_KEYS["llm"], "llm.")
    dl = LlmChoice()
    model = a.string(llm_raw, "model", dl.model, "llm.model").strip()
    if not model:
        a.add("llm.model", "is empty")
        model = dl.model
    llm = LlmChoice(model=model,
                    daily_budget_usd=a.number(llm_raw, "daily_budget_usd", dl.daily_budget_usd,
                                              "llm.daily_budget_usd"))

    flags: dict[str, str] = {}
    for name, value in a.table(raw, "flags").items():
        spec = SPECS.get(name)
        if spec is None:
            a.add("flags", f"{name!r} is not a flag{_suggest(name, ACCOUNT_FLAGS)}")
            continue
        if name not in ACCOUNT_FLAGS:
            a.add("flags", f"{name} cannot be set per account (only {', '.join(ACCOUNT_FLAGS)})")
            continue
        if not isinstance(value, bool | int | float | str):
            a.add("flags", f"{name} must be a boolean, number or string, got {_kind(value)}")
            continue
        try:
            flags[name] = format_value(parse_value(spec, format_value(value)))
        except ConfigError as exc:
            a.add("flags", str(exc))

    return AccountProfile(
        id=account_id if isinstance(account_id, str) else "",
        username=username, publisher=publisher, session=session, languages=languages, timezone=timezone,
        active_hours=active_hours, topics=topics, angles=angles, facts=facts, example_posts=example_posts,
        banned_phrases=banned, persona=persona, limits=limits, replies=replies, llm=llm,
        flags=dict(sorted(flags.items())),
    )


# ------------------------------------------------------------------------------------------ documents


def validate_document(doc: Mapping[str, Any], source: str, environ: Mapping[str, str]) -> list[AccountProfile]:
    """The profiles a parsed accounts document declares; ``AccountsError`` with every problem found.

    ``source`` names the document in each line (its path); ``environ`` is where ``env:`` sessions are looked
    up.
    """
    problems: list[str] = []
    for key in doc:
        if key != "account":
            problems.append(f"{source}: unknown key {key!r}{_suggest(key, ['account'])}")
    accounts = doc.get("account", [])
    if not isinstance(accounts, list):
        problems.append(f"{source}: account: must be an array of tables ([[account]]), got {_kind(accounts)}")
        accounts = []
    if not accounts:
        problems.append(f"{source}: no accounts (declare at least one [[account]] table)")

    profiles: list[AccountProfile] = []
    first_of_id: dict[str, int] = {}
    for n, raw in enumerate(accounts, start=1):
        if not isinstance(raw, dict):
            problems.append(f"{source}: account #{n}: must be a table ([[account]]), got {_kind(raw)}")
            continue
        account_id = raw.get("id")
        if account_id is None:
            where = f"{source}: account #{n}"
            problems.append(f"{where}: id: missing")
        elif not isinstance(account_id, str) or not _ID.match(account_id):
            where = f"{source}: account #{n}"
            problems.append(f"{where}: id: {_quote(account_id)} must match {ID_PATTERN} "
                            f"(it becomes a NATS subject token)")
        elif account_id in AGGREGATES:
            where = f"{source}: account #{n}"
            problems.append(f"{where}: id: {account_id!r} is the name of an event aggregate "
                            f"({', '.join(sorted(AGGREGATES))}); pick another id")
        elif account_id in first_of_id:
            where = f"{source}: account {account_id!r} (#{n})"
            problems.append(f"{where}: id: duplicate id (account #{first_of_id[account_id]} has it too)")
        else:
            first_of_id[account_id] = n
            where = f"{source}: account {account_id!r}"
        profiles.append(_check_account(raw, where, problems, environ))

    own: dict[str, str] = {}
    for profile in profiles:
        if not profile.username or not profile.id:
            continue
        other = own.get(profile.username.casefold())
        if other is not None and other != profile.id:
            problems.append(f"{source}: account {profile.id!r}: username: {profile.username!r} is also the "
                            f"username of account {other!r}")
        else:
            own.setdefault(profile.username.casefold(), profile.id)
    for profile in profiles:
        for target in profile.replies.targets:
            other = own.get(target.casefold())
            if other is not None and profile.id:
                problems.append(f"{source}: account {profile.id!r}: replies.targets: {target!r} is our own "
                                f"account {other!r} (our accounts never reply to each other)")

    if problems:
        raise AccountsError(problems)
    return profiles


def parse_accounts(text: str, source: str, environ: Mapping[str, str]) -> list[AccountProfile]:
    """Parse TOML text and validate it; a syntax error is one line with ``source`` and tomllib's position."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise AccountsError([f"{source}: not valid TOML: {_one_line(str(exc))}"]) from None
    return validate_document(doc, source, environ)


def load_accounts_file(path: str | os.PathLike[str], environ: Mapping[str, str]) -> list[AccountProfile]:
    source = str(path)
    try:
        text = Path(path).expanduser().read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise AccountsError([f"{source}: not UTF-8 text ({exc.reason} at byte {exc.start})"]) from None
    except OSError as exc:
        raise AccountsError([f"{source}: cannot be read ({exc.strerror or exc})"]) from None
    return parse_accounts(text, source, environ)


def accounts_path(environ: Mapping[str, str]) -> Path | None:
    """The accounts file ``load_accounts`` reads (``None``: there is none, the default account applies).
    ``AccountsError`` when ``XBOT_ACCOUNTS_FILE`` names a file that does not exist."""
    explicit = environ.get("XBOT_ACCOUNTS_FILE", "").strip()
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise AccountsError([f"{explicit}: no such file (XBOT_ACCOUNTS_FILE names it)"])
        return path
    from shared.config import CommonSettings

    home = environ.get("XBOT_HOME") or str(CommonSettings.model_fields["XBOT_HOME"].default)
    path = Path(home).expanduser() / ACCOUNTS_FILE_NAME
    return path if path.is_file() else None


def load_accounts(environ: Mapping[str, str] | None = None) -> list[AccountProfile]:
    """The accounts of this stack (see the module docstring); ``AccountsError`` listing every problem."""
    env: Mapping[str, str] = os.environ if environ is None else environ
    path = accounts_path(env)
    if path is None:
        return [default_account_from_env(env)]
    return load_accounts_file(path, env)


# ------------------------------------------------------------------------------------ default account


def default_account_from_env(environ: Mapping[str, str]) -> AccountProfile:
    """Today's single-account setup as the profile ``default``: X_USERNAME, MODE (live = browser), the
    session variables, ACCOUNT_FACTS / ACCOUNT_LANGUAGES, REPLY_TARGET_ACCOUNTS / REPLY_SEARCH_QUERIES and the
    flags for limits and model. No session is required here (the services check theirs at start)."""
    from shared.llm.writers import LLMSettings

    where = "environment"
    problems: list[str] = []
    try:
        flags = flags_from_env(environ)
    except ConfigError as exc:
        raise AccountsError([f"{where}: {exc}"]) from None

    username = _strip_at(environ.get("X_USERNAME", ""))
    if username and not _USERNAME.match(username):
        problems.append(f"{where}: X_USERNAME: {_quote(username)} is not an X handle ({USERNAME_PATTERN})")
        username = ""

    session: str | None = None
    if environ.get("X_SESSION_FILE", "").strip():
        session = f"file:{environ['X_SESSION_FILE'].strip()}"
    elif environ.get("X_SESSION_B64", "").strip():
        session = "env:X_SESSION_B64"

    facts: tuple[str, ...] = ()
    try:
        facts = parse_facts(environ.get("ACCOUNT_FACTS", str(LLMSettings.model_fields["ACCOUNT_FACTS"].default)))
    except ValueError as exc:
        problems.append(f"{where}: ACCOUNT_FACTS is invalid: {exc}")
    languages: tuple[str, ...] = ("en",)
    try:
        languages = parse_languages(
            environ.get("ACCOUNT_LANGUAGES", str(LLMSettings.model_fields["ACCOUNT_LANGUAGES"].default)))
    except ValueError as exc:
        problems.append(f"{where}: ACCOUNT_LANGUAGES is invalid: {exc}")

    raw_targets = environ.get("REPLY_TARGET_ACCOUNTS")
    targets = tuple(_strip_at(t) for t in (
        DEFAULT_REPLY_TARGETS if raw_targets is None else _comma_list(raw_targets)))
    for t in targets:
        if not _USERNAME.match(t):
            problems.append(f"{where}: REPLY_TARGET_ACCOUNTS: {_quote(t)} is not an X handle ({USERNAME_PATTERN})")
    raw_searches = environ.get("REPLY_SEARCH_QUERIES")
    searches = DEFAULT_REPLY_SEARCHES if raw_searches is None else _comma_list(raw_searches)
    if problems:
        raise AccountsError(problems)

    return AccountProfile(
        id=DEFAULT_ACCOUNT,
        username=username,
        publisher="browser" if flags.live else "simulated",
        session=session,
        languages=languages,
        topics=DEFAULT_TOPICS,
        angles=DEFAULT_ANGLES,
        facts=facts,
        limits=Limits(
            posts_per_day=24 * flags.MAX_POSTS_PER_HOUR,
            max_posts_per_hour=flags.MAX_POSTS_PER_HOUR,
            min_post_interval_minutes=flags.MIN_POST_INTERVAL_MINUTES,
            replies_per_day=flags.REPLY_MAX_PER_DAY,
        ),
        replies=Replies(targets=targets, searches=searches),
        llm=LlmChoice(model=flags.OPENAI_MODEL, daily_budget_usd=float(flags.DAILY_OPENAI_LIMIT_USD)),
    )


# --------------------------------------------------------------------------------------------- dumping


def _toml_string(text: str) -> str:
    out = ['"']
    for ch in text:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"TOML has no value for {value!r} here")
        return repr(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def dump_accounts(profiles: Iterable[AccountProfile]) -> str:
    """TOML text of the profiles, every field written, that ``parse_accounts`` reads back to equal profiles."""
    lines: list[str] = []

    def pairs(values: Mapping[str, Any]) -> None:
        lines.extend(f"{k} = {_toml_value(v)}" for k, v in values.items())

    for profile in profiles:
        if lines:
            lines.append("")
        lines.append("[[account]]")
        top = {
            "id": profile.id, "username": profile.username, "publisher": profile.publisher,
            "session": profile.session, "languages": profile.languages, "timezone": profile.timezone,
            "active_hours": profile.active_hours, "topics": profile.topics, "angles": profile.angles,
            "facts": profile.facts, "example_posts": profile.example_posts,
            "banned_phrases": profile.banned_phrases,
        }
        pairs({k: v for k, v in top.items() if v is not None})
        for name, part in (("persona", profile.persona), ("limits", profile.limits),
                           ("replies", profile.replies), ("llm", profile.llm)):
            lines += ["", f"[account.{name}]"]
            pairs({f: getattr(part, f) for f in part.__struct_fields__})
        if profile.flags:
            lines += ["", "[account.flags]"]
            pairs({k: parse_value(SPECS[k], v) for k, v in sorted(profile.flags.items())})
    return "\n".join(lines) + "\n"
