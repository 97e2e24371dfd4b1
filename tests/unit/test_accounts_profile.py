"""Account profiles (shared/accounts): the example file loads, profiles survive TOML and msgspec round trips,
the digest is stable, every bad input is one line naming the file, the account and the field, and without a
file the one ``default`` account is today's environment."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

from shared.accounts import (
    ACCOUNT_FLAGS,
    DEFAULT_ACCOUNT,
    DEFAULT_REPLY_SEARCHES,
    DEFAULT_REPLY_TARGETS,
    AccountProfile,
    AccountsError,
    Limits,
    Persona,
    SessionRef,
    decode_profile,
    default_account_from_env,
    dump_accounts,
    encode_profile,
    load_accounts,
    parse_accounts,
    parse_session_ref,
    profile_digest,
    validate_document,
)
from shared.errors import ConfigError
from shared.flags import SPECS
from shared.learning.arms import DEFAULT_ANGLES, DEFAULT_TOPICS

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "docs" / "accounts.example.toml"
SRC = "accounts.toml"

GOOD = """
[[account]]
id = "runner"
username = "@ana_runs"
timezone = "Europe/Madrid"
topics = ["marathon_training", "nutrition"]
"""


def problems(text: str, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(AccountsError) as info:
        parse_accounts(text, SRC, environ or {})
    err = info.value
    assert isinstance(err, ConfigError)
    assert str(err) == "\n".join(err.problems)
    assert all("\n" not in p for p in err.problems)
    return err.problems


def one_problem(text: str, environ: dict[str, str] | None = None) -> str:
    found = problems(text, environ)
    assert len(found) == 1, found
    return found[0]


# ------------------------------------------------------------------------------------------ the example


def test_the_example_file_loads_two_accounts() -> None:
    runner, lawyer = load_accounts({"XBOT_ACCOUNTS_FILE": str(EXAMPLE)})
    assert (runner.id, runner.username, runner.timezone, runner.publisher) == (
        "runner", "ana_runs", "Europe/Madrid", "simulated")
    assert (lawyer.id, lawyer.username, lawyer.timezone) == ("lawyer", "tom_lex", "America/New_York")
    assert lawyer.flags == {"POSTING_DISABLED": "true"}
    assert runner.flags == {"MIN_QUALITY_SCORE": "0.75", "REQUIRE_APPROVAL": "true"}
    assert runner.active_hours == (7, 22) and runner.languages == ("en", "es")
    assert runner.replies.targets == ("runnersworld", "strava")
    assert runner.content_arms()[0] == "marathon_training:how_to"
    assert len(runner.content_arms()) == len(runner.topics) * len(runner.angles)


def test_defaults_of_a_minimal_account() -> None:
    [p] = parse_accounts(GOOD, SRC, {})
    assert p.username == "ana_runs" and p.publisher == "simulated" and p.session is None
    assert p.languages == ("en",) and p.active_hours == (0, 24) and p.angles == DEFAULT_ANGLES
    assert p.facts == () and p.flags == {} and p.persona == Persona()
    assert p.limits == Limits(posts_per_day=24 * SPECS["MAX_POSTS_PER_HOUR"].default,
                              max_posts_per_hour=SPECS["MAX_POSTS_PER_HOUR"].default,
                              min_post_interval_minutes=SPECS["MIN_POST_INTERVAL_MINUTES"].default,
                              replies_per_day=SPECS["REPLY_MAX_PER_DAY"].default)
    assert p.llm.model == SPECS["OPENAI_MODEL"].default
    assert p.llm.daily_budget_usd == SPECS["DAILY_OPENAI_LIMIT_USD"].default


# -------------------------------------------------------------------------------------- round trips


def test_dump_then_load_gives_equal_profiles() -> None:
    profiles = load_accounts({"XBOT_ACCOUNTS_FILE": str(EXAMPLE)})
    text = dump_accounts(profiles)
    assert parse_accounts(text, "dumped.toml", {}) == profiles
    assert dump_accounts(parse_accounts(text, "dumped.toml", {})) == text


def test_dump_escapes_strings_and_keeps_odd_values() -> None:
    odd = AccountProfile(
        id="odd", username="", topics=("t",), angles=("a",),
        facts=('She said "hi"\\ then\nleft\ttab \x7f \x01 ñ 日本 🎉',), example_posts=("x" * 280,),
        persona=Persona(name="Zoë", voice="", never_say=("a\\b",)),
        session="env:ODD_SESSION", flags={"MIN_QUALITY_SCORE": "0.1", "OPENAI_MODEL": "gpt-x", "LIVE_POSTS": "false"},
    )
    [back] = parse_accounts(dump_accounts([odd]), "dumped.toml", {})
    assert back == odd


def test_default_account_round_trips_through_toml() -> None:
    default = default_account_from_env({"X_USERNAME": "@me", "ACCOUNT_FACTS": '["I wrote 2 books"]'})
    assert parse_accounts(dump_accounts([default]), "dumped.toml", {}) == [default]


def test_msgspec_encode_decode_is_identity() -> None:
    profiles = load_accounts({"XBOT_ACCOUNTS_FILE": str(EXAMPLE)}) + [default_account_from_env({})]
    for p in profiles:
        assert decode_profile(encode_profile(p)) == p
        assert msgspec.json.decode(msgspec.json.encode(p), type=AccountProfile) == p
        assert msgspec.msgpack.decode(msgspec.msgpack.encode(p), type=AccountProfile) == p


def test_decoding_rejects_unknown_fields() -> None:
    data = msgspec.json.encode({"id": "a", "topics": ["t"], "topcis": []})
    with pytest.raises(msgspec.ValidationError):
        decode_profile(data)


def test_digest_is_stable_and_changes_with_a_field() -> None:
    [p] = parse_accounts(GOOD, SRC, {})
    digest = profile_digest(p)
    assert len(digest) == 64 and digest == profile_digest(parse_accounts(GOOD, SRC, {})[0])
    assert profile_digest(msgspec.structs.replace(p, timezone="UTC")) != digest
    assert profile_digest(msgspec.structs.replace(p, persona=Persona(name="Ana"))) != digest
    # dict insertion order does not matter
    a = msgspec.structs.replace(p, flags={"LIVE_POSTS": "true", "POSTING_DISABLED": "false"})
    b = msgspec.structs.replace(p, flags={"POSTING_DISABLED": "false", "LIVE_POSTS": "true"})
    assert profile_digest(a) == profile_digest(b)
    # and another process computes the same digest
    code = ("from shared.accounts import parse_accounts, profile_digest; import sys; "
            "print(profile_digest(parse_accounts(sys.stdin.read(), 'x', {})[0]))")
    out = subprocess.run([sys.executable, "-c", code], input=GOOD, capture_output=True, text=True, cwd=ROOT,
                         check=True, env={"PYTHONHASHSEED": "123", "PATH": ""})
    assert out.stdout.strip() == digest


def test_session_refs() -> None:
    assert parse_session_ref("file:/secrets/a.json") == SessionRef(kind="file", target="/secrets/a.json")
    assert parse_session_ref("env:X_SESSION_B64") == SessionRef(kind="env", target="X_SESSION_B64")
    assert str(parse_session_ref("env:ABC")) == "env:ABC"
    for bad in ("/secrets/a.json", "s3:bucket", "file:", "env:not a var"):
        with pytest.raises(ValueError):
            parse_session_ref(bad)
    [p] = parse_accounts(GOOD + 'session = "env:RUNNER"\n', SRC, {})
    assert p.session_ref() == SessionRef(kind="env", target="RUNNER")


# --------------------------------------------------------------------------------------- bad inputs


def test_unknown_key_is_named() -> None:
    assert one_problem(GOOD + 'topcis = ["x"]\n') == (
        "accounts.toml: account 'runner': unknown key 'topcis' (did you mean 'topics'?)")
    assert one_problem(GOOD + '[account.persona]\nnme = "Ana"\n') == (
        "accounts.toml: account 'runner': unknown key 'persona.nme' (did you mean 'name'?)")
    assert one_problem('acount = 1\n' + GOOD) == "accounts.toml: unknown key 'acount' (did you mean 'account'?)"


def test_duplicate_id() -> None:
    assert one_problem(GOOD + GOOD.replace("ana_runs", "ana_two")) == (
        "accounts.toml: account 'runner' (#2): id: duplicate id (account #1 has it too)")


def test_duplicate_username_across_accounts() -> None:
    assert one_problem(GOOD + GOOD.replace('"runner"', '"runner2"').replace("@ana_runs", "ANA_RUNS")) == (
        "accounts.toml: account 'runner2': username: 'ANA_RUNS' is also the username of account 'runner'")


def test_missing_or_bad_id_is_named_by_index() -> None:
    assert one_problem(GOOD.replace('id = "runner"', "")) == "accounts.toml: account #1: id: missing"
    line = one_problem(GOOD + GOOD.replace('"runner"', '"Run.ner"').replace("ana_runs", "b"))
    assert line.startswith("accounts.toml: account #2: id: 'Run.ner' must match ^[a-z]")


def test_missing_session_for_a_browser_account(tmp_path: Path) -> None:
    browser = GOOD + 'publisher = "browser"\n'
    assert one_problem(browser) == ('accounts.toml: account \'runner\': session: missing session '
                                    '(publisher \'browser\' needs "file:<path>" or "env:<VAR>")')
    assert one_problem(browser + f'session = "file:{tmp_path}/nope.json"\n') == (
        f"accounts.toml: account 'runner': session: missing session: file '{tmp_path}/nope.json' does not exist")
    assert one_problem(browser + 'session = "env:RUNNER_SESSION"\n', {"RUNNER_SESSION": " "}) == (
        "accounts.toml: account 'runner': session: missing session: environment variable RUNNER_SESSION is not set")
    assert one_problem(browser + 'session = "cookie:abc"\n').startswith(
        "accounts.toml: account 'runner': session: 'cookie:abc' is not a session reference")
    assert one_problem(browser + "session = 5\n") == (
        "accounts.toml: account 'runner': session: must be a string, got an integer")
    secret = tmp_path / "runner.json"
    secret.write_text("{}")
    [p] = parse_accounts(browser + f'session = "file:{secret}"\n', SRC, {})
    assert p.session == f"file:{secret}" and p.publisher == "browser"
    [p] = parse_accounts(browser + 'session = "env:RUNNER_SESSION"\n', SRC, {"RUNNER_SESSION": "e30="})
    assert p.session_ref() == SessionRef(kind="env", target="RUNNER_SESSION")


def test_browser_account_needs_a_username(tmp_path: Path) -> None:
    secret = tmp_path / "s.json"
    secret.write_text("{}")
    text = GOOD.replace('username = "@ana_runs"', "") + f'publisher = "browser"\nsession = "file:{secret}"\n'
    assert one_problem(text) == (
        "accounts.toml: account 'runner': username: missing (publisher 'browser' needs the account's X handle)")


def test_api_publisher_is_not_available_yet() -> None:
    assert one_problem(GOOD + 'publisher = "api"\n') == (
        "accounts.toml: account 'runner': publisher: 'api' is not available yet (use 'simulated' or 'browser')")


def test_persona_over_the_size_limit() -> None:
    text = GOOD + f'[account.persona]\nname = "Ana"\nvoice = "{"v" * 1995}"\nnever_say = ["x"]\n'
    assert one_problem(text) == (
        "accounts.toml: account 'runner': persona: 2001 characters of name, voice and never_say (at most 2000)")
    ok = GOOD + f'[account.persona]\nname = "Ana"\nvoice = "{"v" * 1994}"\nnever_say = ["x"]\n'
    assert parse_accounts(ok, SRC, {})[0].persona.voice == "v" * 1994


def test_empty_or_missing_topics() -> None:
    assert one_problem(GOOD.replace('["marathon_training", "nutrition"]', "[]")) == (
        "accounts.toml: account 'runner': topics: is empty (at least one topic)")
    assert one_problem(GOOD.replace('topics = ["marathon_training", "nutrition"]', "")) == (
        "accounts.toml: account 'runner': topics: missing (at least one topic)")
    assert one_problem(GOOD.replace('"nutrition"]', '"marathon_training"]')) == (
        "accounts.toml: account 'runner': topics: 'marathon_training' is listed twice")
    assert one_problem(GOOD.replace('"nutrition"', '"Nutrition Tips"')).startswith(
        "accounts.toml: account 'runner': topics: 'Nutrition Tips' must match ^[a-z]")
    many = ", ".join(f'"t{i}"' for i in range(41))
    assert one_problem(GOOD.replace('["marathon_training", "nutrition"]', f"[{many}]")) == (
        "accounts.toml: account 'runner': topics: 41 items (at most 40)")


def test_bad_username_or_timezone_type() -> None:
    assert one_problem(GOOD.replace("@ana_runs", "ana runs")) == (
        "accounts.toml: account 'runner': username: 'ana runs' is not an X handle (^[A-Za-z0-9_]{1,15}$)")
    assert one_problem(GOOD.replace('"Europe/Madrid"', "5")) == (
        "accounts.toml: account 'runner': timezone: must be a string, got an integer")


def test_unknown_timezone() -> None:
    assert one_problem(GOOD.replace("Europe/Madrid", "Mars/Base")) == (
        "accounts.toml: account 'runner': timezone: 'Mars/Base' is not a known timezone")
    assert one_problem(GOOD.replace("Europe/Madrid", "../../etc/passwd")) == (
        "accounts.toml: account 'runner': timezone: '../../etc/passwd' is not a known timezone")


@pytest.mark.parametrize(("line", "expected"), [
    ("active_hours = [22, 7]", "active_hours: [22, 7] must have 0 <= start < end <= 24"),
    ("active_hours = [0, 25]", "active_hours: [0, 25] must have 0 <= start < end <= 24"),
    ("active_hours = 7", "active_hours: must be [start, end], two whole hours, got 7"),
    ("languages = [\"en\", \"it\"]", "languages: unknown language it (known: en, es, de, fr)"),
    ("languages = []", "languages: needs at least one language of en, es, de, fr"),
    ("publisher = \"robot\"", "publisher: 'robot' is not a publisher (use 'simulated' or 'browser')"),
    ("facts = [\"ok\", 3]", "facts[1]: must be a string, got an integer"),
    ("facts = \"I ran\"", "facts: must be an array of strings, got a string"),
    ("banned_phrases = [\"  \"]", "banned_phrases[0]: is empty"),
    (f"example_posts = [\"{'x' * 281}\"]", "example_posts[0]: 281 characters (at most 280)"),
    ("example_posts = [" + ", ".join(['"p"'] * 11) + "]", "example_posts: 11 items (at most 10)"),
    ("angles = []", "angles: is empty (at least one angle)"),
    ("persona = 3", "persona: must be a table ([account.persona]), got an integer"),
    ("[account.limits]\nposts_per_day = -1", "limits.posts_per_day: -1 is negative (at least 0)"),
    ("[account.limits]\nreplies_per_day = true", "limits.replies_per_day: must be an integer, got a boolean"),
    ("[account.limits]\nmax_posts_per_hour = 1.5", "limits.max_posts_per_hour: must be an integer, got a number"),
    ("[account.llm]\ndaily_budget_usd = -2.0", "llm.daily_budget_usd: -2.0 must be a finite number >= 0"),
    ("[account.llm]\ndaily_budget_usd = inf", "llm.daily_budget_usd: inf must be a finite number >= 0"),
    ("[account.llm]\nmodel = \" \"", "llm.model: is empty"),
    ("[account.replies]\ntargets = [\"@ok\", \"not ok\"]",
     "replies.targets: 'not ok' is not an X handle (^[A-Za-z0-9_]{1,15}$)"),
    ("[account.replies]\ntargets = [\"@ana_runs\"]",
     "replies.targets: 'ana_runs' is our own account 'runner' (our accounts never reply to each other)"),
    ("[account.flags]\nPOSTING_DISABLED = \"maybe\"",
     "flags: POSTING_DISABLED='maybe' is not a boolean (use true or false)"),
    ("[account.flags]\nMIN_QUALITY_SCORE = 2", "flags: MIN_QUALITY_SCORE='2' is out of range [0.0, 1.0]"),
    ("[account.flags]\nMAX_POSTS_PER_HOUR = 1.5", "flags: MAX_POSTS_PER_HOUR='1.5' is not an integer"),
    ("[account.flags]\nMODE = \"live\"",
     f"flags: MODE cannot be set per account (only {', '.join(ACCOUNT_FLAGS)})"),
    ("[account.flags]\nPOSTNG_DISABLED = true", "flags: 'POSTNG_DISABLED' is not a flag (did you mean 'POSTING_DISABLED'?)"),
    ("[account.flags]\nLIVE_POSTS = [true]", "flags: LIVE_POSTS must be a boolean, number or string, got an array"),
])
def test_bad_field_is_one_line_naming_account_and_field(line: str, expected: str) -> None:
    assert one_problem(GOOD + line + "\n") == f"accounts.toml: account 'runner': {expected}"


def test_flag_values_are_normalized() -> None:
    text = GOOD + ('[account.flags]\nPOSTING_DISABLED = "Yes"\nLIVE_POSTS = false\nMIN_QUALITY_SCORE = 1\n'
                   'MAX_POSTS_PER_HOUR = "3"\nOPENAI_MODEL = " gpt-4o "\n')
    [p] = parse_accounts(text, SRC, {})
    assert p.flags == {"POSTING_DISABLED": "true", "LIVE_POSTS": "false", "MIN_QUALITY_SCORE": "1.0",
                       "MAX_POSTS_PER_HOUR": "3", "OPENAI_MODEL": "gpt-4o"}


def test_no_accounts_at_all() -> None:
    assert one_problem("") == "accounts.toml: no accounts (declare at least one [[account]] table)"
    assert one_problem("account = []\n") == "accounts.toml: no accounts (declare at least one [[account]] table)"
    assert problems("account = 3\n") == [
        "accounts.toml: account: must be an array of tables ([[account]]), got an integer",
        "accounts.toml: no accounts (declare at least one [[account]] table)",
    ]


def test_several_problems_give_several_lines() -> None:
    text = """
[[account]]
id = "runner"
username = "ana_runs"
topics = []
timezone = "Mars/Base"
topcis = ["x"]
publisher = "browser"

[[account]]
username = "ana_runs"
topics = ["ok"]

[[account]]
id = "lawyer"
username = "ana_runs"
topics = ["law"]
[account.persona]
voice = "%s"
""" % ("v" * 2001)
    assert problems(text) == [
        "accounts.toml: account 'runner': unknown key 'topcis' (did you mean 'topics'?)",
        "accounts.toml: account 'runner': session: missing session "
        "(publisher 'browser' needs \"file:<path>\" or \"env:<VAR>\")",
        "accounts.toml: account 'runner': timezone: 'Mars/Base' is not a known timezone",
        "accounts.toml: account 'runner': topics: is empty (at least one topic)",
        "accounts.toml: account #2: id: missing",
        "accounts.toml: account 'lawyer': persona: 2001 characters of name, voice and never_say (at most 2000)",
        "accounts.toml: account 'lawyer': username: 'ana_runs' is also the username of account 'runner'",
    ]


def test_validate_document_takes_a_parsed_document() -> None:
    doc = {"account": [{"id": "a", "topics": ["t"], "limits": {"posts_per_day": 3}}]}
    [p] = validate_document(doc, "inline", {})
    assert p.limits.posts_per_day == 3
    with pytest.raises(AccountsError) as info:
        validate_document({"account": [{"id": "a", "topics": ["t"], "timezone": None}]}, "inline", {})
    assert info.value.problems == ["inline: account 'a': timezone: must be a string, got a NoneType"]


# ------------------------------------------------------------------------------------- which file


def test_no_file_gives_the_default_account_from_env(tmp_path: Path) -> None:
    env = {"XBOT_HOME": str(tmp_path), "X_USERNAME": "@me_dev", "ACCOUNT_FACTS": '["I run a 3-person agency"]',
           "ACCOUNT_LANGUAGES": "en, es", "REPLY_TARGET_ACCOUNTS": "@alice, bob", "MAX_POSTS_PER_HOUR": "2",
           "REPLY_MAX_PER_DAY": "4", "OPENAI_MODEL": "gpt-4o", "DAILY_OPENAI_LIMIT_USD": "3.5",
           "X_SESSION_B64": "e30="}
    [p] = load_accounts(env)
    assert p.id == DEFAULT_ACCOUNT == "default"
    assert (p.username, p.publisher, p.session) == ("me_dev", "simulated", "env:X_SESSION_B64")
    assert p.facts == ("I run a 3-person agency",) and p.languages == ("en", "es")
    assert p.topics == DEFAULT_TOPICS and p.angles == DEFAULT_ANGLES
    assert p.replies.targets == ("alice", "bob") and p.replies.searches == DEFAULT_REPLY_SEARCHES
    assert p.limits == Limits(posts_per_day=48, max_posts_per_hour=2,
                              min_post_interval_minutes=SPECS["MIN_POST_INTERVAL_MINUTES"].default,
                              replies_per_day=4)
    assert (p.llm.model, p.llm.daily_budget_usd) == ("gpt-4o", 3.5)
    assert p.flags == {} and p.timezone == "UTC" and p.active_hours == (0, 24)


def test_default_account_in_live_mode_uses_the_browser_without_requiring_a_session(tmp_path: Path) -> None:
    [p] = load_accounts({"XBOT_HOME": str(tmp_path), "MODE": "live"})
    assert p.publisher == "browser" and p.session is None
    p = default_account_from_env({"MODE": "live", "X_SESSION_FILE": "/s/x.json", "X_SESSION_B64": "e30="})
    assert p.session == "file:/s/x.json"


def test_default_account_defaults_are_todays() -> None:
    p = default_account_from_env({})
    assert p.publisher == "simulated" and p.username == "" and p.session is None and p.facts == ()
    assert p.languages == ("en",)
    assert p.limits.max_posts_per_hour == SPECS["MAX_POSTS_PER_HOUR"].default
    assert p.limits.posts_per_day == 24 * SPECS["MAX_POSTS_PER_HOUR"].default
    assert p.llm.model == SPECS["OPENAI_MODEL"].default
    assert default_account_from_env({"REPLY_SEARCH_QUERIES": ""}).replies.searches == ()


def test_reply_defaults_are_the_repliers() -> None:
    from services.replier.config import ReplierSettings

    fields = ReplierSettings.model_fields
    assert ",".join(DEFAULT_REPLY_SEARCHES) == fields["REPLY_SEARCH_QUERIES"].default
    assert ",".join(DEFAULT_REPLY_TARGETS) == fields["REPLY_TARGET_ACCOUNTS"].default


def test_default_account_reports_bad_environment() -> None:
    with pytest.raises(AccountsError) as info:
        default_account_from_env({"ACCOUNT_FACTS": "not json", "ACCOUNT_LANGUAGES": "xx",
                                  "REPLY_TARGET_ACCOUNTS": "ok,not ok"})
    lines = info.value.problems
    assert len(lines) == 3 and all(line.startswith("environment: ") for line in lines)
    assert lines[0].startswith("environment: ACCOUNT_FACTS is invalid: must be a JSON list of strings")
    assert lines[1] == "environment: ACCOUNT_LANGUAGES is invalid: unknown language xx (known: en, es, de, fr)"
    assert lines[2].startswith("environment: REPLY_TARGET_ACCOUNTS: 'not ok' is not an X handle")
    with pytest.raises(AccountsError, match=r"^environment: MODE='prod' must be 'shadow' or 'live'$"):
        default_account_from_env({"MODE": "prod"})


def test_home_accounts_file_is_used_when_present(tmp_path: Path) -> None:
    (tmp_path / "accounts.toml").write_text(GOOD)
    [p] = load_accounts({"XBOT_HOME": str(tmp_path), "X_USERNAME": "ignored"})
    assert p.id == "runner" and p.username == "ana_runs"


def test_explicit_file_wins_and_must_exist(tmp_path: Path) -> None:
    (tmp_path / "accounts.toml").write_text(GOOD)
    other = tmp_path / "other.toml"
    other.write_text(GOOD.replace("runner", "other"))
    [p] = load_accounts({"XBOT_HOME": str(tmp_path), "XBOT_ACCOUNTS_FILE": str(other)})
    assert p.id == "other"
    missing = tmp_path / "nowhere.toml"
    with pytest.raises(AccountsError) as info:
        load_accounts({"XBOT_HOME": str(tmp_path), "XBOT_ACCOUNTS_FILE": str(missing)})
    assert info.value.problems == [f"{missing}: no such file (XBOT_ACCOUNTS_FILE names it)"]


def test_toml_syntax_error_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "accounts.toml"
    path.write_text('[[account]]\nid = "runner"\ntopics = ["a" "b"]\n')
    with pytest.raises(AccountsError) as info:
        load_accounts({"XBOT_HOME": str(tmp_path)})
    [line] = info.value.problems
    assert line.startswith(f"{path}: not valid TOML: ") and "line 3" in line and "column" in line


def test_bad_file_problems_name_the_path(tmp_path: Path) -> None:
    path = tmp_path / "accounts.toml"
    path.write_text(GOOD.replace("Europe/Madrid", "Mars/Base"))
    with pytest.raises(AccountsError) as info:
        load_accounts({"XBOT_ACCOUNTS_FILE": str(path)})
    assert info.value.problems == [f"{path}: account 'runner': timezone: 'Mars/Base' is not a known timezone"]
    path.write_bytes(b"\xff\xfe")
    with pytest.raises(AccountsError, match="not UTF-8"):
        load_accounts({"XBOT_ACCOUNTS_FILE": str(path)})
