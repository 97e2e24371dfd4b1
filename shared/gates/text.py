"""X's text rules as pure functions: weighted length, fit, and the normalised content hash.

Counting follows twitter-text's v3 configuration (the one x.com uses):

* the text is NFC-normalised first;
* every URL (``http(s)://...`` or a bare domain such as ``example.com/path``) counts 23, whatever its length;
* every emoji counts 2 -- a whole emoji sequence (ZWJ family, skin tone, flag, keycap, tag sequence) is one emoji;
* every other code point weighs 1 when it lies in 0-4351, 8192-8205, 8208-8223 or 8242-8247 (Latin, Greek,
  Cyrillic, Hebrew, Arabic, Indic scripts, general punctuation...), and 2 otherwise (CJK, Hangul, most symbols).

Bare domains are recognised as twitter-text does, in a simplified form: a generic TLD (``.com``, ``.io``, ...)
always makes a URL, while a two-letter country TLD needs a path or a second-level label such as ``co.uk``, so
file names like ``setup.py`` or ``README.md`` are not taken for links.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable

TWEET_LIMIT = 280
URL_WEIGHT = 23
EMOJI_WEIGHT = 2

# (start, end) inclusive code point ranges of weight 1; everything else weighs 2 (twitter-text v3).
_LIGHT_RANGES: tuple[tuple[int, int], ...] = ((0, 4351), (8192, 8205), (8208, 8223), (8242, 8247))

_GENERIC_TLDS = frozenset(
    """
    com org net edu gov mil int info biz name pro mobi aero coop museum jobs travel tel asia cat post
    io ai co me tv ly gg fm sh to app dev xyz tech blog news online site store shop cloud page link live
    media social space website world today life email digital network solutions agency studio design
    wiki art club top vip fun one ink zone guru academy capital finance money market events global
    """.split()
)
_SECOND_LEVEL = frozenset({"co", "com", "org", "net", "gov", "edu", "ac", "or", "ne", "go"})

_TRAILING_URL_PUNCT = ".,;:!?'\"*"
_URL_RE = re.compile(
    r"""
    (?P<proto>https?://[^\s<>"]+)
    |
    (?<![\w@\-/#$])(?<!\w\.)
    (?P<host>(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+(?P<tld>[a-z]{2,24}))(?![\w-])
    (?P<port>:\d{1,5})?
    (?P<path>/[^\s<>"]*)?
    """,
    re.IGNORECASE | re.VERBOSE,
)


def _trim_url_end(text: str, start: int, end: int) -> int:
    """Drop trailing punctuation and unbalanced closing brackets, as twitter-text does."""
    while end > start:
        ch = text[end - 1]
        if ch in _TRAILING_URL_PUNCT:
            end -= 1
        elif ch == ")" and text.count("(", start, end) < text.count(")", start, end):
            end -= 1
        elif ch == "]" and text.count("[", start, end) < text.count("]", start, end):
            end -= 1
        else:
            break
    return end


#: what every match of ``_URL_RE`` contains: ``://`` or a dot before a letter (the TLD); text without either has
#: no URL, and most drafts have none, so the full expression is tried only where one may be
_URL_HINT_RE = re.compile(r"://|\.[a-z]", re.IGNORECASE)


def find_urls(text: str) -> list[tuple[int, int]]:
    """Spans ``(start, end)`` of the URLs X would link in ``text`` (already NFC-normalised or not)."""
    spans: list[tuple[int, int]] = []
    if _URL_HINT_RE.search(text) is None:
        return spans
    for m in _URL_RE.finditer(text):
        if m.group("proto") is None:
            tld = m.group("tld").lower()
            labels = m.group("host").lower().split(".")
            if tld not in _GENERIC_TLDS:
                if len(tld) != 2:
                    continue
                has_path = bool(m.group("path")) and len(m.group("path")) > 1
                second = labels[-2] if len(labels) >= 3 else ""
                if not has_path and second not in _SECOND_LEVEL:
                    continue
        end = _trim_url_end(text, m.start(), m.end())
        body = text[m.start() : end].split("://", 1)[-1]
        if "." in body or m.group("proto") is None and body:
            spans.append((m.start(), end))
    return spans


# --- emoji sequences -------------------------------------------------------------------------------------

_ZWJ = 0x200D
_VS15, _VS16 = 0xFE0E, 0xFE0F
_KEYCAP = 0x20E3
_TEXT_DEFAULT_EMOJI = frozenset({0x00A9, 0x00AE})  # (c) (R): emoji only with VS16
_KEYCAP_BASES = frozenset(ord(c) for c in "0123456789#*")
# Emoji outside the pictographic blocks (arrows, shapes, technical symbols that have emoji presentation).
_EXTRA_PICTOGRAPHS = frozenset(
    [0x203C, 0x2049, 0x2122, 0x2139, 0x24C2, 0x2934, 0x2935, 0x3030, 0x303D, 0x3297, 0x3299]
    + [*range(0x2194, 0x219A), 0x21A9, 0x21AA, 0x231A, 0x231B, 0x2328, 0x23CF, *range(0x23E9, 0x23F4)]
    + [0x23F8, 0x23F9, 0x23FA, 0x25AA, 0x25AB, 0x25B6, 0x25C0, 0x25FB, 0x25FC, 0x25FD, 0x25FE]
    + [0x2B05, 0x2B06, 0x2B07, 0x2B1B, 0x2B1C, 0x2B50, 0x2B55]
)


def _is_regional_indicator(cp: int) -> bool:
    return 0x1F1E6 <= cp <= 0x1F1FF


def _is_modifier(cp: int) -> bool:
    return 0x1F3FB <= cp <= 0x1F3FF


def _is_pictograph(cp: int) -> bool:
    return 0x1F000 <= cp <= 0x1FAFF or 0x2600 <= cp <= 0x27BF or cp in _EXTRA_PICTOGRAPHS


def _emoji_element(cps: list[int], i: int) -> int:
    """Length (in code points) of one emoji element starting at ``i``, 0 when none starts there."""
    n = len(cps)
    cp = cps[i]
    if _is_regional_indicator(cp):
        return 2 if i + 1 < n and _is_regional_indicator(cps[i + 1]) else 1
    if cp in _KEYCAP_BASES:
        j = i + 1
        if j < n and cps[j] == _VS16:
            j += 1
        return j + 1 - i if j < n and cps[j] == _KEYCAP else 0
    if cp in _TEXT_DEFAULT_EMOJI:
        return 2 if i + 1 < n and cps[i + 1] == _VS16 else 0
    if not _is_pictograph(cp):
        return 0
    j = i + 1
    if j < n and cps[j] in (_VS15, _VS16):
        j += 1
    if j < n and _is_modifier(cps[j]) and not _is_modifier(cp):
        j += 1
    if j < n and cps[j] == _KEYCAP:
        j += 1
    if j < n and 0xE0020 <= cps[j] <= 0xE007E:  # tag sequence (subdivision flags), closed by U+E007F
        k = j
        while k < n and 0xE0020 <= cps[k] <= 0xE007E:
            k += 1
        if k < n and cps[k] == 0xE007F:
            j = k + 1
    return j - i


def _emoji_sequence(cps: list[int], i: int) -> int:
    """Length of a whole emoji sequence (elements joined by ZWJ) starting at ``i``, 0 when none."""
    j = i + _emoji_element(cps, i)
    if j == i:
        return 0
    while j + 1 < len(cps) and cps[j] == _ZWJ:
        step = _emoji_element(cps, j + 1)
        if step == 0:
            break
        j += 1 + step
    return j - i


def count_emoji(text: str) -> int:
    """Number of emoji (whole sequences) in ``text``."""
    if text.isascii():  # every emoji holds a code point above 127 (a keycap's U+20E3 included)
        return 0
    cps = [ord(c) for c in unicodedata.normalize("NFC", text)]
    i = count = 0
    while i < len(cps):
        step = _emoji_sequence(cps, i)
        if step:
            count += 1
            i += step
        else:
            i += 1
    return count


def _char_weight(cp: int) -> int:
    for lo, hi in _LIGHT_RANGES:
        if lo <= cp <= hi:
            return 1
    return 2


def _plain_weight(segment: str) -> int:
    if segment.isascii():  # no emoji can start in it, and every code point below 128 weighs 1
        return len(segment)
    cps = [ord(c) for c in segment]
    i = total = 0
    while i < len(cps):
        step = _emoji_sequence(cps, i)
        if step:
            total += EMOJI_WEIGHT
            i += step
        else:
            total += _char_weight(cps[i])
            i += 1
    return total


def weighted_length(text: str) -> int:
    """X's weighted length of ``text`` (twitter-text v3): what must stay <= 280."""
    text = unicodedata.normalize("NFC", text)
    total = pos = 0
    for start, end in find_urls(text):
        total += _plain_weight(text[pos:start]) + URL_WEIGHT
        pos = end
    return total + _plain_weight(text[pos:])


def fits_tweet(text: str, limit: int = TWEET_LIMIT) -> bool:
    """True when ``text`` is postable as one tweet: not blank and weighted length <= ``limit``."""
    return bool(text.strip()) and weighted_length(text) <= limit


# --- content hash ----------------------------------------------------------------------------------------

_WS_RE = re.compile(r"\s+")


def normalize_for_hash(text: str) -> str:
    """Canonical form for duplicate detection: NFKC, casefolded, URLs, punctuation and extra space removed."""
    text = unicodedata.normalize("NFKC", text)
    text = unicodedata.normalize("NFKC", text.casefold())
    spans = find_urls(text)
    if spans:
        pieces, pos = [], 0
        for start, end in spans:
            pieces.append(text[pos:start])
            pieces.append(" ")
            pos = end
        pieces.append(text[pos:])
        text = "".join(pieces)
    text = "".join(" " if unicodedata.category(ch).startswith("P") else ch for ch in text)
    return _WS_RE.sub(" ", text).strip()


def content_hash(text_or_parts: str | Iterable[str]) -> str:
    """sha256 hex of the normalised text; a thread hashes its parts joined by a space."""
    text = text_or_parts if isinstance(text_or_parts, str) else " ".join(text_or_parts)
    return hashlib.sha256(normalize_for_hash(text).encode("utf-8")).hexdigest()
