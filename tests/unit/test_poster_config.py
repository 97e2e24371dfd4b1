"""Poster settings: defaults, one-line errors naming the variable, and what live posting needs at start."""

from __future__ import annotations

import pytest

from services.poster.bootstrap import check_settings, policy_of
from services.poster.config import PosterSettings
from shared.config import load_settings
from shared.errors import ConfigError
from shared.flags import Flags

pytestmark = pytest.mark.unit

POSTING_ON = Flags(MODE="live", POSTING_DISABLED=False, LIVE_POSTS=True)


def test_defaults_match_the_spec():
    s = load_settings(PosterSettings, {})
    assert (s.POSTING_INTERVAL_MINUTES, s.POSTING_BATCH, s.POSTING_MAX_ATTEMPTS) == (5.0, 5, 3)
    assert s.RECONCILE_GRACE_MINUTES == 10.0 and s.X_BASE_URL == "https://x.com"
    assert s.XBOT_TEST_CRASH_AT == ""
    p = policy_of(s)
    assert p.batch == 5 and p.max_attempts == 3 and p.crash_at == ""


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"XBOT_TEST_CRASH_AT": "sometimes"}, "XBOT_TEST_CRASH_AT"),
        ({"POSTING_BATCH": "0"}, "POSTING_BATCH"),
        ({"X_BASE_URL": "x.com"}, "X_BASE_URL"),
        ({"X_USERNAME": "not a handle"}, "X_USERNAME"),
        ({"POSTING_DISABLED": "maybe"}, "POSTING_DISABLED"),
    ],
)
def test_a_bad_setting_is_one_error_naming_it(env, name):
    with pytest.raises(ConfigError) as err:
        load_settings(PosterSettings, env)
    assert name in str(err.value) and "\n" not in str(err.value)


def test_live_posting_at_start_needs_an_account_and_a_session():
    with pytest.raises(ConfigError, match="X_USERNAME"):
        check_settings(load_settings(PosterSettings, {}), POSTING_ON)
    with pytest.raises(ConfigError, match="X_SESSION_FILE"):
        check_settings(load_settings(PosterSettings, {"X_USERNAME": "@alice"}), POSTING_ON)
    check_settings(
        load_settings(PosterSettings, {"X_USERNAME": "@alice", "X_SESSION_B64": "e30="}), POSTING_ON
    )
    # the seed's preparation env (live, posting disabled) and shadow mode need neither
    check_settings(load_settings(PosterSettings, {}), Flags(MODE="live"))
    check_settings(
        load_settings(PosterSettings, {}), Flags(MODE="shadow", POSTING_DISABLED=False, LIVE_POSTS=True)
    )
    assert load_settings(PosterSettings, {"X_USERNAME": "@alice"}).username() == "alice"
