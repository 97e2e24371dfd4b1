"""Claims gate: a live draft asserts nothing about the account that the account's facts do not hold.

Promise 3 of DESIGN.md: no invented statistics, results or experiences on a real person's account. The gate
reads a draft sentence by sentence and finds **claims**:

* ``first_person``  -- a first-person result or experience: a first-person marker (I, we, my team; yo,
  nosotros, mi equipo, first-person verb forms; ich, wir, unser; je, nous, notre) with a result verb (cut,
  shipped, grew; redujimos, lanzamos; gesenkt, verdoppelt; réduit, lancé) or with any number ("I shipped 30
  apps");
* ``percentage``    -- ``42%``, ``42 %``, ``3,5 %``, ``42 percent``, ``42 por ciento``, ``42 Prozent``,
  ``42 pour cent``;
* ``money``         -- ``$5``, ``$2.5M``, ``€1.000``, ``1.000 €``, ``£3k``, ``USD 500``, ``5k dollars``,
  ``3,5 Mio. €``, ``2 millones de dólares``;
* ``multiplier``    -- ``3x``, ``10×``, ``3 times faster``, ``twice as``, ``3 veces más``, ``dreimal``,
  ``5-fach``, ``3 fois plus``;
* ``count``         -- a count of people or adoption (``10,000 users``, ``500 clientes``, ``2.000 Kunden``,
  ``300 abonnés``), a magnitude (``10k``, ``1M``, ``3,5 Mio.``, ``2 millions``), or a ratio (``9 out of 10``,
  ``9 de cada 10``, ``9 von 10``, ``9 sur 10``);
* ``employer`` / ``customer`` -- a named employer or customer: ``I work at Stripe``, ``my time at Google``,
  ``our client Acme``, ``customers like Acme``, ``arbeite bei SAP``, ``chez Airbus``, ``nuestro cliente Acme``.

Quotations (``"..."``, ``“...”``, ``«...»``, ``„...“``: someone else's words, such as the tweet a reply quotes)
are left out and shown as ``"…"`` in the span. Numbers and money formats are recognised whatever the language (a digit is a digit, and ``1.000`` is read both
as 1000 and as 1.0); the first-person markers, result verbs and employer phrases are those of the languages
in ``ClaimPolicy.languages`` (``en``, ``es``, ``de``, ``fr``).

A claim is **supported** when the account's facts hold it: every number of the claim (its value, whatever the
format: ``42 %`` = ``42%``, ``$5k`` = ``5000 dollars``, ``1.000 €`` = ``€1,000``) appears in a fact that shares
a key word with the claim's sentence; every name appears in a fact; and a first-person result without numbers
or names shares at least two key words (one when it has only one) with a single fact. Anything else is
unsupported: the gate blocks with reason ``unsupported_claim`` and lists each unsupported sentence in
``details.unsupported``, or, with ``flag_only`` (REQUIRE_APPROVAL=true), passes with reason
``flagged_for_approval`` and the same list, so the draft is queued for a person with its claims highlighted.

``ClaimPolicy`` is the value the gate needs (facts and languages). Today it is built from the
``ACCOUNT_FACTS`` / ``ACCOUNT_LANGUAGES`` settings (``ClaimPolicy.from_settings``); an account profile can
build the same value from its own facts list.

The gate runs on drafts written by the real LLM (``generation_source=real``, live mode) only; shadow mode's
synthetic writer is a template engine whose "results" never reach X, and checking them would only thin out
the simulation (see ``shared.drafting.judge``).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import msgspec

from .result import GateResult

GATE = "claims"
REASON = "unsupported_claim"
FLAGGED = "flagged_for_approval"
LANGUAGES: tuple[str, ...] = ("en", "es", "de", "fr")
MAX_SPAN = 280

# ---------------------------------------------------------------------------------------------- numbers

#: a number as written: 1,000 / 1.000 / 1 000 / 3.5 / 3,5 / 42 (never inside a word: p95, GPT-4, v2.0, 9am)
_NUM_BARE = r"(?:\d{1,3}(?:[.,\u00a0\u202f ]\d{3})+(?:[.,]\d+)?|\d+(?:[.,]\d+)?)"
_NUM = r"(?<![\w.,/#@-])" + _NUM_BARE
_MAG_WORDS = {
    "k": 1e3, "thousand": 1e3, "tsd": 1e3, "tausend": 1e3, "mil": 1e3, "mille": 1e3,
    "m": 1e6, "mm": 1e6, "mn": 1e6, "mio": 1e6, "million": 1e6, "millions": 1e6, "millionen": 1e6,
    "millón": 1e6, "millon": 1e6, "millones": 1e6,
    "b": 1e9, "bn": 1e9, "billion": 1e9, "billions": 1e9, "mrd": 1e9, "milliarde": 1e9, "milliarden": 1e9,
    "milliard": 1e9, "milliards": 1e9,
}
_MAG = (
    r"(?:\s?(?:[kKmMbB]|bn|mn|mm|Mio\.?|Mrd\.?|Tsd\.?)(?![\w])"
    r"|\s(?i:thousand|millions?|billions?|millones|mill[oó]n|mil|Millionen|Million|Milliarden?|Tausend|"
    r"milliards?|mille)(?![\w]))"
)
_NUMBER_RE = re.compile(f"(?P<n>{_NUM})(?P<mag>{_MAG})?")
_CURRENCY_SYM = r"[$€£¥₹]"
_CURRENCY_WORD = (
    r"(?i:usd|eur|gbp|chf|dollars?|bucks|euros?|pounds?|d[oó]lares|libras|pfund|livres|francs?)(?![\w])"
)
_PERCENT_WORD = r"(?:%|\s?(?i:percent|per\s?cent|por\s?ciento|prozent\w*|pour\s?cent|pourcent|pct)(?![\w]))"
_RANGE = rf"{_NUM}(?:\s?[-–]\s?\d+(?:[.,]\d+)?)?"

_PERCENT_RE = re.compile(rf"{_RANGE}\s?{_PERCENT_WORD}")
_MONEY_RE = re.compile(
    rf"(?:{_CURRENCY_SYM}|(?i:usd|eur|gbp)\s?)\s?{_NUM}(?:{_MAG})?"
    rf"|{_NUM}(?:{_MAG})?\s?(?:{_CURRENCY_SYM}|(?:de\s)?{_CURRENCY_WORD})"
)
_NUMBER_WORDS = (
    r"two|three|four|five|six|seven|eight|nine|ten|dos|tres|cuatro|cinco|diez|zwei|drei|vier|fünf|zehn|"
    r"deux|trois|quatre|cinq|dix"
)
_MULTIPLIER_RE = re.compile(
    rf"{_NUM}\s?[x×X](?![\w])|(?<![\w])[x×]{_NUM_BARE}(?![\w.,])"
    rf"|(?i:(?:{_NUM}|{_NUMBER_WORDS})\s+(?:times|veces|fois)\s+(?:more|faster|cheaper|better|bigger|higher|"
    rf"lower|less|fewer|quicker|smaller|as|m[aá]s|menos|plus|moins))"
    rf"|(?i:\btwice\s+as\b|\bel\s+doble\b|\bdoppelt\s+so\b|\bdeux\s+fois\s+plus\b)"
    rf"|(?i:{_NUM}\s?-?\s?(?:fach|mal)(?![\w])|\b(?:zwei|drei|vier|fünf|zehn)(?:mal|fach)\b)"
    rf"|(?i:{_NUM}-fold\b)"
)
_COUNT_NOUNS = (
    r"users?|customers?|clients?|subscribers?|followers?|downloads?|installs?|sign-?ups?|members?|readers?|"
    r"visitors?|buyers?|students?|companies|paying|stars|views|impressions|leads|deals|MAU|DAU|ARR|MRR|"
    r"usuari[oa]s?|clientes?|suscriptor(?:es|as)?|seguidor(?:es|as)?|descargas|instalaciones|registros|"
    r"miembros|lector(?:es|as)|visitantes|empresas|alumnos|"
    r"Nutzer(?:innen)?|Kund(?:en|innen|in)|Abonnent(?:en|innen)|Follower|Downloads|Installationen|Mitglieder|"
    r"Leser(?:innen)?|Besucher(?:innen)?|Unternehmen|Firmen|"
    r"utilisat(?:eurs?|rices?)|abonn[ée]e?s|t[ée]l[ée]chargements|inscrits|membres|lecteurs|visiteurs|entreprises"
)
_COUNT_RE = re.compile(
    rf"{_NUM}(?:{_MAG})?\s+(?:[\w-]+\s+){{0,2}}?(?i:{_COUNT_NOUNS})(?![\w])"
    rf"|{_NUM}(?:\s?(?:[kKmMbB]|bn|mn|Mio\.?|Mrd\.?)(?![\w])|\s(?i:millions?|billions?|millones|Millionen|"
    rf"Milliarden?|milliards?)(?![\w]))"
    rf"|{_NUM}\s+(?i:out\s+of|in|of\s+every|de\s+cada|von|sur)\s+{_NUM}(?![\w])"
)
#: numbers that are thread numbering, not content: "1/", "2/7", "3." at the start of a part
_NUMBERING_RE = re.compile(r"^\s*(?:\d+\s*/\s*(?:\d+)?|\d+[.)])\s+")
#: a quotation (someone else's words, e.g. the tweet a reply quotes) asserts nothing about the account
_QUOTE_RE = re.compile(r'"[^"\n]{1,400}"|“[^”\n]{1,400}”|«[^»\n]{1,400}»|„[^“”\n]{1,400}[“”]')
QUOTE_MARK = '"…"'


def unquoted(text: str) -> str:
    """``text`` with every quotation replaced by ``"…"``."""
    return _QUOTE_RE.sub(QUOTE_MARK, text) if any(q in text for q in '"“«„') else text


def number_values(text: str) -> set[float]:
    """Every value a written number may mean (both decimal conventions), magnitude applied."""
    out: set[float] = set()
    for m in _NUMBER_RE.finditer(text):
        out |= _values(m.group("n"), m.group("mag"))
    return out


def _values(raw: str, mag: str | None) -> set[float]:
    raw = raw.replace("\u00a0", " ").replace("\u202f", " ")
    scale = 1.0
    if mag:
        word = mag.strip().rstrip(".").casefold()
        scale = _MAG_WORDS.get(word, 1.0)
    readings: set[float] = set()
    digits = re.sub(r"[.,\s]", "", raw)
    seps = re.findall(r"[.,\s]", raw)
    if not seps:
        readings.add(float(digits))
    else:
        groups = re.split(r"[.,\s]", raw)
        if all(len(g) == 3 for g in groups[1:]):
            readings.add(float(digits))  # all separators are thousands separators
        last = max(raw.rfind("."), raw.rfind(","))
        if raw[last] in ".,":  # the last separator is the decimal mark, the others thousands
            whole = re.sub(r"[.,\s]", "", raw[:last])
            readings.add(float(f"{whole or '0'}.{raw[last + 1:]}"))
    return {_key(v * scale) for v in readings}


def _key(v: float) -> float:
    return float(f"{v:.6g}") if math.isfinite(v) else v


# --------------------------------------------------------------------------------------- language cues


def _words(*alternatives: str) -> str:
    return r"(?<![\w'’])(?:" + "|".join(alternatives) + r")(?![\w'’])"


_EN_SUBJECT = (
    r"(?<![\w'’])(?:I|i|[Ww]e|[Mm]y\s+(?:team|company|startup|agency|clients?|customers?)|[Oo]ur\s+(?:team|"
    r"company|startup|agency|product|app|clients?|customers?|revenue|users?))(?:['’](?:ve|d|m|re))?"
)
_EN_RESULT = (
    r"cut|cuts|reduced|grew|grown|increased|doubled|tripled|quadrupled|halved|shipped|built|launched|saved|"
    r"raised|earned|sold|hired|scaled|migrated|closed|landed|won|hit|reached|achieved|boosted|improved|dropped|"
    r"slashed|delivered|founded|generated|gained|cleared|replaced|automated|tracked|measured|rewrote|published|"
    r"onboarded|signed|acquired|bootstrapped|lost|stopped|finished|made|went\s+from|turned|helped|tested|tried|"
    r"switched|moved|deployed|released|wrote|answered|merged|removed|got|became|learned|learnt|spent|ran"
)
_EN_FIRST_PERSON_RE = re.compile(
    r"(?<![\w'’])(?:I|i|[Ww]e|[Mm]e|[Mm]y|[Oo]ur|[Uu]s|[Mm]ine|[Oo]urs)(?:['’](?:ve|d|m|re|ll))?(?![\w'’])"
)
_EN_RESULT_RE = re.compile(
    _EN_SUBJECT
    + r"(?:\s+(?:have|had|has|just|finally|recently|also|actually|then|all|once|already|really|literally|"
    r"quickly|eventually|somehow|never|ever|been|to))*\s+(?i:" + _EN_RESULT + r")(?![\w])"
)
_ES_FIRST_PERSON_RE = re.compile(
    r"(?i:" + _words("yo", "nosotr[oa]s", "mis?", "nuestr[oa]s?", "me", "conmigo", "he", "hemos") + ")"
)
_ES_STEMS = (
    "reduj", "reduc", "recort", "baj", "aument", "duplic", "dupliqu", "triplic", "tripliqu", "crec", "lanc",
    "lanz", "constru", "ahorr", "gan", "vend", "logr", "consegu", "mejor", "migr", "contrat", "factur", "public",
    "publiqu", "alcanz", "alcanc", "fund", "entreg", "entregu", "escal", "cerr", "automatic", "automatiqu",
    "despleg", "desplegu", "sac", "pas", "lleg", "hic", "prob", "cre",
)
_ES_RESULT_RE = re.compile(
    r"(?i:(?<![\w])(?:" + "|".join(_ES_STEMS) + r")\w*?(?:é|í|amos|imos|iste|aste)(?![\w])"
    r"|(?<![\w])(?:he|hemos|habíamos|había)\s+\w+(?:ado|ido|cho|sto|ierto)(?![\w])"
    r"|(?<![\w])(?:mi|nuestr[oa])\s+(?:equipo|empresa|startup|producto|app)\s+(?:\w+\s+){0,2}?(?:"
    + "|".join(_ES_STEMS) + r")\w*(?:ó|io|o)(?![\w]))"
)
_DE_FIRST_PERSON_RE = re.compile(
    r"(?i:" + _words("ich", "wir", "mein(?:e|en|em|er|es)?", "unser(?:e|en|em|er|es)?", "uns", "mir", "mich")
    + ")"
)
_DE_RESULT_RE = re.compile(
    r"(?i:" + _words(
        "gesenkt", "senkten?", "reduziert(?:en)?", "verdoppelt(?:en)?", "verdreifacht(?:en)?", "halbiert(?:en)?",
        "gesteigert", "steigerten?", "erhöht(?:en)?", "gebaut", "baute[n]?", "aufgebaut", "entwickelt(?:en)?",
        "veröffentlicht(?:en)?", "gelauncht", "gestartet", "gewonnen", "gewannen?", "verkauft(?:en)?",
        "gespart", "eingespart", "sparten?", "erreicht(?:en)?", "geschafft", "schafften?", "verbessert(?:en)?",
        "migriert(?:en)?", "eingestellt", "gegründet", "gründeten?", "verdient(?:en)?", "ausgeliefert",
        "geliefert", "lieferten?", "gewachsen", "wuchsen?", "abgeschlossen", "umgesetzt", "automatisiert(?:en)?",
        "geshippt", "gekürzt", "kürzten?", "gemessen", "getestet", "ersetzt(?:en)?", "gewechselt",
    ) + ")"
)
_FR_FIRST_PERSON_RE = re.compile(
    r"(?i:(?<![\w])j['’]|" + _words("je", "nous", "mon", "ma", "mes", "notre", "nos", "moi", r"on\s+a") + ")"
)
_FR_RESULT_RE = re.compile(
    r"(?i:" + _words(
        r"r[ée]duite?s?", r"augment[ée]e?s?", r"doubl[ée]e?s?", r"tripl[ée]e?s?", r"divis[ée]e?s?",
        r"lanc[ée]e?s?", "construite?s?", r"cr[ée][ée]e?s?", r"livr[ée]e?s?", r"[ée]conomis[ée]e?s?",
        r"gagn[ée]e?s?", "vendue?s?", "atteinte?s?", r"am[ée]lior[ée]e?s?", r"migr[ée]e?s?",
        r"embauch[ée]e?s?", r"recrut[ée]e?s?", r"fond[ée]e?s?", r"publi[ée]e?s?", r"d[ée]velopp[ée]e?s?",
        r"baiss[ée]e?s?", r"diminu[ée]e?s?", r"automatis[ée]e?s?", r"lev[ée]e?s?", r"sign[ée]e?s?",
        "conclue?s?", r"multipli[ée]e?s?", r"d[ée]ploy[ée]e?s?", r"test[ée]e?s?", r"remplac[ée]e?s?",
        r"mesur[ée]e?s?", r"pass[ée]s?\s+de",
    ) + ")"
)

_NAME = r"(?P<name>[A-Z][\w&.\-]*(?:\s+(?:&\s+)?[A-Z][\w&.\-]*){0,2})"
_EMPLOYER: dict[str, list[re.Pattern[str]]] = {
    "en": [
        re.compile(
            r"(?i:\b(?:work|works|worked|working|was|were|been|am|are|interned|consulted|freelanced|job|role|"
            r"time|years|months|days|team|engineer|developer|manager|lead|founder|intern|designer|cto|ceo|vp|"
            r"pm|staff|tenure|stint)\s+(?:\w+\s+)?(?:at|for)\s+)" + _NAME
        ),
        re.compile(r"(?i:\b(?:joined|left|quit)\s+)" + _NAME),
        re.compile(r"(?:^|[.!?]\s+)(?i:at\s+)" + _NAME + r"(?=\s*,?\s+(?:[Ii]|[Ww]e|[Mm]y|[Oo]ur)\b)"),
    ],
    "es": [
        re.compile(
            r"(?i:\b(?:trabajado|estaba|empleo|puesto|años|equipo)\s+(?:\w+\s+)?(?:en|para|con|a)\s+)" + _NAME
        ),
        re.compile(r"(?:^|[.!?]\s+)(?i:en\s+)" + _NAME + r"(?=\s*,)"),
    ],
    "de": [
        re.compile(
            r"(?i:\b(?:arbeite|arbeitete|arbeiten|arbeiteten|gearbeitet|war|waren|bin|sind|angestellt|tätig|"
            r"job|stelle|jahre|team)\s+(?:\w+\s+){0,2}(?:bei|für)\s+)" + _NAME
        ),
        re.compile(r"(?:^|[.!?]\s+)(?i:bei\s+)" + _NAME + r"(?=\s*,?\s+(?:\w+\s+)?(?i:wir|ich)\b)"),
    ],
    "fr": [
        re.compile(
            r"(?i:\b(?:travaille|travaillais|travaillé|travaillons|bosse|bossais|bossé|étais|suis|stage|poste|"
            r"années|équipe)\s+(?:\w+\s+)?(?:chez|pour)\s+)" + _NAME
        ),
        re.compile(r"(?i:\bchez\s+)" + _NAME),
    ],
}
_CUSTOMER: dict[str, list[re.Pattern[str]]] = {
    "en": [
        re.compile(
            r"(?i:\b(?:our|my)\s+(?:biggest\s+|largest\s+|first\s+|new\s+)?(?:clients?|customers?|partners?|"
            r"employer|company|startup|boss|agency)\s*,?\s+(?:(?:like|such\s+as|including|at)\s+)?)" + _NAME
        ),
        re.compile(
            r"(?i:\b(?:clients|customers|companies|brands|teams)\s+(?:like|such\s+as|including)\s+)" + _NAME
        ),
        re.compile(
            r"(?i:\b(?:I|we)\s+(?:\w+\s+)?(?:helped|help|serve|served|advised|advise|onboarded|signed|landed|"
            r"(?:work|worked|partnered|partner)\s+with|(?:built|build|consult|consulted)\s+for)\s+)" + _NAME
        ),
    ],
    "es": [
        re.compile(
            r"(?i:\b(?:mis?|nuestr[oa]s?)\s+(?:primer\s+|mayor\s+)?(?:clientes?|empresa|empleador|jefe|socios?)"
            r"\s*,?\s+(?:como\s+)?)" + _NAME
        ),
        re.compile(r"(?i:\b(?:clientes|empresas|marcas)\s+como\s+)" + _NAME),
        re.compile(r"(?i:\b(?:ayudé|ayudamos|asesoré|asesoramos|firmamos|conseguimos)\s+a\s+)" + _NAME),
    ],
    "de": [
        re.compile(
            r"(?i:\b(?:unser(?:e|en|em|er)?|mein(?:e|en|em|er)?)\s+(?:größte[nr]?\s+|erste[nr]?\s+)?(?:Kunde|Kunden|"
            r"Kundin|Auftraggeber|Arbeitgeber|Partner|Firma|Unternehmen|Chef)\s*,?\s+(?:wie\s+)?)" + _NAME
        ),
        re.compile(r"(?i:\b(?:Kunden|Firmen|Unternehmen|Marken)\s+wie\s+)" + _NAME),
    ],
    "fr": [
        re.compile(
            r"(?i:\b(?:notre|nos|mon|ma|mes)\s+(?:premier\s+|plus\s+gros\s+)?(?:clients?|clientes?|employeur|"
            r"entreprise|boîte|partenaires?|patron)\s*,?\s+(?:comme\s+)?)" + _NAME
        ),
        re.compile(r"(?i:\b(?:clients|entreprises|marques)\s+comme\s+)" + _NAME),
    ],
}
#: employer phrases whose verb is itself first person (Spanish and French drop or fold the pronoun): no other
#: first-person marker is needed in the sentence
_EMPLOYER_FIRST_PERSON: dict[str, list[re.Pattern[str]]] = {
    "en": [],
    "es": [re.compile(
        r"(?i:\b(?:trabajo|trabajé|trabajaba|trabajamos|trabajábamos|estuve|estuvimos|entré|entramos|uní|unimos|"
        r"colaboro|colaboré|colaboramos)\s+(?:\w+\s+)?(?:en|para|con|a)\s+)" + _NAME
    )],
    "de": [],
    "fr": [re.compile(r"(?i:\b(?:j['’]ai\s+travaillé|je\s+(?:travaille|travaillais|bosse|bossais|suis|étais))\s+"
                      r"(?:\w+\s+)?(?:chez|pour)\s+)" + _NAME)],
}
_FIRST_PERSON = {"en": _EN_FIRST_PERSON_RE, "es": _ES_FIRST_PERSON_RE, "de": _DE_FIRST_PERSON_RE,
                 "fr": _FR_FIRST_PERSON_RE}
_RESULT = {"en": _EN_RESULT_RE, "es": _ES_RESULT_RE, "de": _DE_RESULT_RE, "fr": _FR_RESULT_RE}

#: capitalised words that are not names (sentence starts, days, months, pronouns)
_NOT_NAMES = frozenset(
    """
    i a an the this that it we my our you your he she they his her their me us them
    monday tuesday wednesday thursday friday saturday sunday january february march april may june july august
    september october november december
    el la los las un una mi nuestro nuestra der die das ein eine mein unser le les une mon notre
    """.split()
)

# ---------------------------------------------------------------------------------------------- key words

_STOP = frozenset(
    """
    a an the and or but of to in on at for by with from as is are was were be been being have has had do does did
    i we you he she they it my our your their me us them this that these those what which who how why when where
    so than then just also very really not no yes all any some more most less much many one two three by up down
    out over about into after before again still even ever never always only own same too can will would should
    could may might must let lets here there its it's i'm i've we're we've
    el la los las un una unos unas y o pero de del al en con por para como que es son fue era ser mi mis nuestro
    nuestra nuestros nuestras yo nosotros se lo le les su sus muy más menos ya este esta esto he hemos
    der die das ein eine einer eines und oder aber von zu im in am an auf mit für als ist sind war waren sein
    ich wir mein meine unser unsere uns es sich nicht auch noch nur sehr mehr haben hat hatten habe
    le la les un une des et ou mais de du au aux en dans avec pour par comme que qui est sont était être je nous
    mon ma mes notre nos on a ai avons plus très ne pas
    """.split()
)
_WORD_RE = re.compile(r"[^\W\d_](?:[\w'’-]*\w)?")


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in text if not unicodedata.combining(ch)).replace("’", "'")


def _stem(word: str) -> str:
    w = _fold(word)
    if len(w) > 5:
        return w[:5]
    return w[:-1] if len(w) > 3 and w.endswith("s") else w


def key_words(text: str) -> frozenset[str]:
    """The content words of ``text``, folded (case, accents) and crudely stemmed (a 5-letter prefix)."""
    return frozenset(_stem(w) for w in _WORD_RE.findall(text) if _fold(w) not in _STOP and len(w) > 1)


# ---------------------------------------------------------------------------------------------- sentences

_ABBREVIATIONS = ("mio.", "mrd.", "tsd.", "e.g.", "i.e.", "etc.", "vs.", "dr.", "mr.", "ms.", "approx.",
                  "ca.", "bzw.", "usw.", "z.b.", "p.ej.", "env.", "no.", "nr.")
_SPLIT_RE = re.compile(r"(?<=[.!?…])\s+|\n+")


def sentences(text: str) -> list[str]:
    """``text`` cut into sentences (abbreviations like ``Mio.`` or ``e.g.`` do not end one)."""
    out: list[str] = []
    for piece in _SPLIT_RE.split(text):
        piece = piece.strip()
        if not piece:
            continue
        if out and out[-1].casefold().endswith(_ABBREVIATIONS):
            out[-1] = f"{out[-1]} {piece}"
        else:
            out.append(piece)
    return out


# ---------------------------------------------------------------------------------------------- the policy


class Claim(msgspec.Struct, frozen=True, kw_only=True):
    """One sentence that asserts something about the account (or a statistic): what it says and why."""

    part: int
    span: str
    kinds: tuple[str, ...]
    triggers: tuple[str, ...]
    numbers: tuple[str, ...] = ()
    names: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Fact:
    text: str
    folded: str
    values: frozenset[float]
    keys: frozenset[str]


def parse_languages(value: str | Iterable[str]) -> tuple[str, ...]:
    """``"en,es"`` (or a list) -> ``("en", "es")``; ``ValueError`` naming any code not in ``LANGUAGES``."""
    items = value.split(",") if isinstance(value, str) else list(value)
    codes = tuple(dict.fromkeys(c.strip().lower() for c in items if c.strip()))
    if not codes:
        raise ValueError(f"needs at least one language of {', '.join(LANGUAGES)}")
    unknown = [c for c in codes if c not in LANGUAGES]
    if unknown:
        raise ValueError(f"unknown language {', '.join(unknown)} (known: {', '.join(LANGUAGES)})")
    return codes


def parse_facts(value: str) -> tuple[str, ...]:
    """``ACCOUNT_FACTS``: a JSON list of strings (empty = no facts). ``ValueError`` naming what is wrong."""
    if not value.strip():
        return ()
    try:
        items = msgspec.json.decode(value.strip().encode(), type=list[str])
    except msgspec.DecodeError as exc:
        raise ValueError(f"must be a JSON list of strings ({exc})") from None
    facts = tuple(f.strip() for f in items)
    if any(not f for f in facts):
        raise ValueError("a fact is empty")
    return facts


@dataclass(frozen=True)
class ClaimPolicy:
    """What an account may assert about itself: its ``facts`` and the ``languages`` it writes in."""

    facts: tuple[str, ...] = ()
    languages: tuple[str, ...] = ("en",)

    def __post_init__(self) -> None:
        object.__setattr__(self, "facts", tuple(self.facts))
        object.__setattr__(self, "languages", parse_languages(self.languages))

    @classmethod
    def from_settings(cls, facts: str, languages: str) -> ClaimPolicy:
        """From ``ACCOUNT_FACTS`` (JSON list of strings) and ``ACCOUNT_LANGUAGES`` (comma-separated codes)."""
        return cls(facts=parse_facts(facts), languages=parse_languages(languages))

    @cached_property
    def _facts(self) -> tuple[_Fact, ...]:
        return tuple(_Fact(f, _fold(f), frozenset(number_values(f)), key_words(f)) for f in self.facts)

    # -------------------------------------------------------------------------------------- finding

    def find(self, parts: Sequence[str]) -> list[Claim]:
        """Every sentence of ``parts`` that makes a claim, in order."""
        return [c for i, part in enumerate(parts) for s in sentences(unquoted(_NUMBERING_RE.sub("", part, count=1)))
                if (c := self._claim(i, s)) is not None]

    def _claim(self, part: int, sentence: str) -> Claim | None:
        kinds: list[str] = []
        triggers: list[str] = []
        numbers: list[str] = []

        def hit(kind: str, m: re.Match[str]) -> None:
            if kind not in kinds:
                kinds.append(kind)
            triggers.append(m.group(0).strip())

        for kind, rx in (("percentage", _PERCENT_RE), ("money", _MONEY_RE), ("multiplier", _MULTIPLIER_RE),
                         ("count", _COUNT_RE)):
            for m in rx.finditer(sentence):
                hit(kind, m)
                numbers += [n.group(0) for n in _NUMBER_RE.finditer(m.group(0))]
        first_person = any(_FIRST_PERSON[lang].search(sentence) for lang in self.languages)
        for lang in self.languages:
            result = _RESULT[lang].search(sentence)
            if result is not None and (lang != "de" and lang != "fr" or first_person):
                hit("first_person", result)
                first_person = True
                break
        all_numbers = [m.group(0) for m in _NUMBER_RE.finditer(sentence)]
        if first_person and all_numbers:
            if "first_person" not in kinds:
                kinds.append("first_person")
                triggers.append(all_numbers[0].strip())
            numbers = all_numbers
        names: list[str] = []
        for kind, table, needs_first_person in (("employer", _EMPLOYER, True),
                                                ("employer", _EMPLOYER_FIRST_PERSON, False),
                                                ("customer", _CUSTOMER, False)):
            if needs_first_person and not first_person:
                continue
            for lang in self.languages:
                for rx in table[lang]:
                    for m in rx.finditer(sentence):
                        name = _clean_name(m.group("name"))
                        if name and name not in names:
                            hit(kind, m)
                            names.append(name)
        if not kinds:
            return None
        return Claim(part=part, span=sentence[:MAX_SPAN], kinds=tuple(kinds), triggers=tuple(triggers),
                     numbers=tuple(dict.fromkeys(n.strip() for n in numbers)), names=tuple(dict.fromkeys(names)))

    # -------------------------------------------------------------------------------------- support

    def supported(self, claim: Claim) -> bool:
        """The facts hold the claim (see the module docstring)."""
        facts = self._facts
        if not facts:
            return False
        keys = key_words(claim.span) - {_stem(n) for n in claim.names for n in n.split()}
        for raw in claim.numbers:
            values = number_values(raw)
            if not any(values & f.values and (not keys or keys & f.keys) for f in facts):
                return False
        for name in claim.names:
            folded = _fold(name)
            if not any(re.search(rf"(?<!\w){re.escape(folded)}(?!\w)", f.folded) for f in facts):
                return False
        if not claim.numbers and not claim.names:
            need = min(2, len(keys)) or 1
            return any(len(keys & f.keys) >= need for f in facts)
        return True

    def check(self, parts: Sequence[str]) -> tuple[list[Claim], list[Claim]]:
        """(every claim, the unsupported ones)."""
        found = self.find(parts)
        return found, [c for c in found if not self.supported(c)]


def _clean_name(name: str) -> str:
    words = name.rstrip(".,;:!?-").split()
    while words and _fold(words[-1]) in _NOT_NAMES:
        words.pop()
    if not words or _fold(words[0]) in _NOT_NAMES:
        return ""
    return " ".join(words)


def claims_gate(parts: Sequence[str], policy: ClaimPolicy, *, flag_only: bool = False) -> GateResult:
    """Block a draft whose claims the facts do not hold (``unsupported_claim``), or with ``flag_only`` pass it
    as ``flagged_for_approval``; ``details.unsupported`` lists the offending sentences either way."""
    found, unsupported = policy.check(parts)
    details: dict[str, Any] = {
        "languages": list(policy.languages),
        "facts": len(policy.facts),
        "claims": [
            {"part": c.part, "span": c.span, "kinds": list(c.kinds), "triggers": list(c.triggers),
             "supported": c not in unsupported}
            for c in found
        ],
    }
    score = 1.0 if not found else round((len(found) - len(unsupported)) / len(found), 6)
    if not unsupported:
        return GateResult(GATE, True, "supported" if found else "ok", score, details)
    details["unsupported"] = [c.span for c in unsupported]
    if flag_only:
        details["flagged"] = True
        return GateResult(GATE, True, FLAGGED, score, details)
    return GateResult(GATE, False, REASON, score, details)


def flagged_claims(result: GateResult | None) -> list[str]:
    """The sentences a claims result flagged (empty for no result or no unsupported claim)."""
    if result is None or result.gate != GATE:
        return []
    return list((result.details or {}).get("unsupported", []))
