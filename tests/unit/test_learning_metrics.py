"""The one engagement-rate formula."""

from __future__ import annotations

import math

import msgspec
import pytest

from shared.learning.metrics import engagement_rate

pytestmark = pytest.mark.unit


def test_engagement_rate_sums_the_five_engagements_over_impressions():
    m = {"impressions": 1000, "likes": 20, "retweets": 5, "replies": 3, "bookmarks": 1, "quotes": 1}
    assert engagement_rate(m) == pytest.approx(0.03)


def test_engagement_rate_is_none_without_impressions():
    assert engagement_rate({"impressions": 0, "likes": 3}) is None
    assert engagement_rate({"likes": 3}) is None


def test_engagement_rate_reads_attributes_and_treats_missing_counts_as_zero():
    class Row(msgspec.Struct):
        impressions: int
        likes: int
        retweets: int

    assert engagement_rate(Row(impressions=200, likes=4, retweets=2)) == pytest.approx(0.03)
    assert engagement_rate({"impressions": 50, "likes": None}) == 0.0


@pytest.mark.parametrize("bad", [-1, math.nan, math.inf, "10", True])
def test_engagement_rate_refuses_nonsense_counts(bad):
    with pytest.raises(ValueError):
        engagement_rate({"impressions": 100, "likes": bad})
