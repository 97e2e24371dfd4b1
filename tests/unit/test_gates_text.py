"""X's weighted length (twitter-text v3), tweet fit and the normalised content hash."""

from __future__ import annotations

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.gates.text import (
    content_hash,
    count_emoji,
    find_urls,
    fits_tweet,
    normalize_for_hash,
    weighted_length,
)

pytestmark = pytest.mark.unit

FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466"  # man-woman-girl-boy, 7 code points


def test_ascii_280_fits_and_281_does_not():
    assert weighted_length("a" * 280) == 280
    assert fits_tweet("a" * 280)
    assert weighted_length("a" * 281) == 281
    assert not fits_tweet("a" * 281)


def test_blank_text_does_not_fit_and_limit_is_a_parameter():
    assert not fits_tweet("")
    assert not fits_tweet("   \n")
    assert fits_tweet("hello", limit=5)
    assert not fits_tweet("hello!", limit=5)


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com",
        "http://example.com/a/very/long/path/that/goes/on/and/on?with=query&and=more#frag",
        "example.com",
        "github.com/owner/repo/blob/main/some/file.py",
        "x.ai",
        "bbc.co.uk",
        "example.de/path",
    ],
)
def test_every_url_counts_23(url):
    assert weighted_length(url) == 23
    assert weighted_length(f"see {url} now") == 4 + 23 + 4


def test_url_trailing_punctuation_is_not_part_of_the_url():
    # "Read " 5 + url 23 + "." 1
    assert weighted_length("Read example.com.") == 29
    assert find_urls("(see https://en.wikipedia.org/wiki/Foo_(bar))") == [(5, 44)]


@pytest.mark.parametrize("text", ["setup.py", "README.md", "node.js", "e.g. this", "3.14", "me@example.com"])
def test_file_names_decimals_and_emails_are_not_urls(text):
    assert find_urls(text) == []
    assert weighted_length(text) == len(text)


def test_cjk_counts_two_per_character():
    assert weighted_length("日本語") == 6
    assert weighted_length("한국어") == 6
    assert fits_tweet("字" * 140)
    assert not fits_tweet("字" * 141)


@pytest.mark.parametrize(
    "emoji",
    [
        "\U0001f600",  # grinning face
        FAMILY,  # ZWJ sequence
        "\U0001f44d\U0001f3fd",  # thumbs up + skin tone
        "\U0001f1fa\U0001f1f8",  # flag US (two regional indicators)
        "1\ufe0f\u20e3",  # keycap 1
        "\u2764\ufe0f",  # red heart with VS16
        "\U0001f3f4\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f",  # England tag sequence
        "\U0001f469\U0001f3fd\u200d\U0001f4bb",  # woman technologist, medium skin tone
    ],
)
def test_each_emoji_sequence_counts_two(emoji):
    assert weighted_length(emoji) == 2
    assert count_emoji(emoji) == 1
    assert weighted_length(f"hi {emoji}!") == 3 + 2 + 1


def test_zwj_family_is_two_not_its_code_points():
    assert len(FAMILY) == 7
    assert weighted_length(FAMILY) == 2
    assert weighted_length(FAMILY * 140) == 280
    assert not fits_tweet(FAMILY * 141)


def test_weight_range_boundaries():
    assert weighted_length(chr(4351)) == 1
    assert weighted_length(chr(4352)) == 2
    assert weighted_length("\u2014") == 1  # em dash, 8212
    assert weighted_length("\u2032") == 1  # prime, 8242
    assert weighted_length("\u20ac") == 2  # euro sign, 8364
    assert weighted_length("\u00a9") == 1  # (c) alone is text
    assert weighted_length("\u00a9\ufe0f") == 2  # (c) with VS16 is an emoji


def test_text_is_nfc_normalised_first():
    decomposed = "e\u0301"  # e + combining acute -> é
    assert weighted_length(decomposed) == 1
    assert weighted_length("caf" + decomposed) == weighted_length("café") == 4


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=string.ascii_letters + " ", max_size=400))
def test_plain_ascii_weighs_its_length(text):
    assert weighted_length(text) == len(text)
    assert fits_tweet(text) == (bool(text.strip()) and len(text) <= 280)


@settings(max_examples=40, deadline=None)
@given(st.text(alphabet="日本語中文字漢", max_size=200))
def test_cjk_weighs_twice_its_length(text):
    assert weighted_length(text) == 2 * len(text)


def test_normalize_for_hash_folds_case_width_urls_punctuation_and_space():
    assert normalize_for_hash("Hello,   WORLD!  ") == "hello world"
    assert normalize_for_hash("Ｈｅｌｌｏ world") == "hello world"  # NFKC: full-width letters
    assert normalize_for_hash("STRASSE") == normalize_for_hash("straße")  # casefold
    assert normalize_for_hash("Read this: https://example.com/x?utm=1 — now!") == "read this now"
    assert normalize_for_hash("Read this: example.com/other now") == "read this now"


def test_content_hash_equal_for_cosmetic_variants_and_different_otherwise():
    base = content_hash("Ship small, ship often.")
    assert base == content_hash("ship small ship often")
    assert base == content_hash("  SHIP small —  ship OFTEN!!! https://t.co/abc ")
    assert base != content_hash("Ship big, ship rarely.")
    assert len(base) == 64 and int(base, 16) >= 0


def test_thread_hashes_its_joined_parts():
    parts = ["1/ Ship small.", "2/ Ship often."]
    assert content_hash(parts) == content_hash("1/ Ship small. 2/ Ship often.")
    assert content_hash(parts) == content_hash(tuple(parts))
    assert content_hash(parts) != content_hash(parts[:1])


_URLISH = st.text(alphabet=string.ascii_letters + string.digits + " ./:-()[]?!,'\"@#$_\u0130\u0131\u017f\u212a", max_size=60)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(["https://", "http://x", "example.com", "a.co.uk", "setup.py", "x.io/p", ". ", ".",
                                 "word", "..", "://", "e.g.", "EXAMPLE.COM", "Site.Io/x", "KA.\u212a", "\u0130.\u017fh"]) | _URLISH,
                max_size=8))
def test_the_url_hint_never_hides_a_url(pieces):
    # find_urls skips the full expression when the cheap hint finds nothing: the same spans as trying it always
    import re

    import shared.gates.text as text_mod

    text = " ".join(pieces)
    fast = find_urls(text)
    hint = text_mod._URL_HINT_RE
    text_mod._URL_HINT_RE = re.compile("")  # matches everywhere: the full expression always runs
    try:
        assert find_urls(text) == fast
    finally:
        text_mod._URL_HINT_RE = hint
