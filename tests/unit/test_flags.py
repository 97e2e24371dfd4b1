"""Every default of the seed's table, strict parsing, and every combination the seed describes."""

import pytest

from shared.config import CommonSettings, load_settings
from shared.errors import ConfigError
from shared.flags import (
    FLAG_SPECS,
    effective_flags,
    env_view,
    flag_summary,
    flags_from_env,
    is_llm_allowed,
    is_posting_allowed,
    is_real_analytics_allowed,
    load_env_flags,
)

pytestmark = pytest.mark.unit

SEED_DEFAULTS = {
    "AI_QUOTA_CIRCUIT_OPEN": False,
    "POSTING_DISABLED": True,
    "LIVE_POSTS": False,
    "REAL_METRICS_ENABLED": False,
    "MODE": "shadow",
    "DAILY_OPENAI_LIMIT_USD": 10.0,
    "DISABLE_LLM_WHEN_BUDGET_HIT": True,
    "DUP_COSINE_THRESHOLD": 0.85,
    "SIMILARITY_THRESHOLD": 0.85,
    "MIN_QUALITY_SCORE": 0.7,
    "OPENAI_MODEL": "gpt-4o-mini",
    "EMBED_MODEL": "text-embedding-3-small",
    "MAX_POSTS_PER_HOUR": 1,
    "MIN_POST_INTERVAL_MINUTES": 15,
    "REPLY_MAX_PER_DAY": 10,
}


@pytest.mark.parametrize("name,default", sorted(SEED_DEFAULTS.items()))
def test_seed_defaults(name: str, default: object) -> None:
    flags = flags_from_env({})
    assert getattr(flags, name) == default
    assert flags.sources[name] == "default"


def test_every_spec_default_matches_struct_default() -> None:
    flags = flags_from_env({})
    for spec in FLAG_SPECS:
        assert getattr(flags, spec.name) == spec.default, spec.name


# (circuit, posting_disabled, live_posts, real_metrics) -> (llm, posting, analytics)
COMBOS = [
    ((False, True, False, False), (True, False, False)),   # seed "tonight": LLM on, posting off
    ((False, False, True, True), (True, True, True)),      # seed go-live switches
    ((True, True, False, False), (False, False, False)),   # circuit open blocks LLM only
    ((True, False, True, True), (False, True, True)),      # circuit open does not block posting
    ((False, False, False, False), (True, False, False)),  # LIVE_POSTS=false keeps posting off
    ((False, True, True, False), (True, False, False)),    # POSTING_DISABLED wins over LIVE_POSTS
]


@pytest.mark.parametrize("given,expected", COMBOS)
def test_combinations(given: tuple, expected: tuple) -> None:
    env = dict(zip(("AI_QUOTA_CIRCUIT_OPEN", "POSTING_DISABLED", "LIVE_POSTS", "REAL_METRICS_ENABLED"),
                   ["true" if g else "false" for g in given], strict=True))
    f = flags_from_env(env)
    assert (is_llm_allowed(f).allowed, is_posting_allowed(f).allowed, is_real_analytics_allowed(f).allowed) == expected
    view = env_view(f)
    assert (view["llmAllowed"], view["postingAllowed"], view["analyticsAllowed"]) == expected


def test_reasons() -> None:
    assert is_llm_allowed(flags_from_env({"AI_QUOTA_CIRCUIT_OPEN": "true"})).reason == "circuit_open"
    assert is_posting_allowed(flags_from_env({})).reason == "posting_disabled"
    assert is_posting_allowed(flags_from_env({"POSTING_DISABLED": "false"})).reason == "live_posts_off"


def test_env_view_has_exactly_the_seed_keys() -> None:
    assert list(env_view(flags_from_env({}))) == [
        "AI_QUOTA_CIRCUIT_OPEN", "POSTING_DISABLED", "LIVE_POSTS", "REAL_METRICS_ENABLED", "MODE", "OPENAI_MODEL",
        "llmAllowed", "postingAllowed", "analyticsAllowed", "summary",
    ]


def test_summary_line() -> None:
    s = flag_summary(flags_from_env({}))
    assert "MODE=shadow" in s and "POSTING=OFF(posting_disabled)" in s and "LLM=ON" in s


@pytest.mark.parametrize(
    "name,value",
    [("POSTING_DISABLED", "maybe"), ("LIVE_POSTS", "yes please"), ("MODE", "prod"),
     ("DAILY_OPENAI_LIMIT_USD", "ten"), ("DAILY_OPENAI_LIMIT_USD", "-1"), ("DUP_COSINE_THRESHOLD", "1.5"),
     ("MAX_POSTS_PER_HOUR", "1.5"), ("MIN_QUALITY_SCORE", "nan")],
)
def test_invalid_value_names_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as exc:
        load_env_flags({name: value})
    assert str(exc.value).startswith(name)
    with pytest.raises(ConfigError):
        load_settings(CommonSettings, {name: value})


def test_override_on_top_of_env_and_invalid_override_ignored() -> None:
    values, sources = load_env_flags({"POSTING_DISABLED": "true"})
    f = effective_flags(values, sources, {"POSTING_DISABLED": "false", "LIVE_POSTS": "bogus"})
    assert f.POSTING_DISABLED is False and f.sources["POSTING_DISABLED"] == "override"
    assert f.LIVE_POSTS is False and f.sources["LIVE_POSTS"] == "default"


def test_missing_setting_one_line() -> None:
    from shared.config import DatabaseSettings

    with pytest.raises(ConfigError) as exc:
        load_settings(DatabaseSettings, {})
    assert str(exc.value) == "DATABASE_URL is missing"
