"""Claims gate: first-person results, statistics, money, multipliers, counts and named employers or customers are
found in every supported language, and pass only when the account's facts hold them."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import numpy as np
import pytest

from shared.gates import (
    ClaimPolicy,
    RotationWindow,
    UniquenessIndex,
    claims_gate,
    flagged_claims,
    run_gate_chain,
)
from shared.gates.claims import (
    FLAGGED,
    LANGUAGES,
    REASON,
    number_values,
    parse_facts,
    parse_languages,
    sentences,
)

pytestmark = pytest.mark.unit

ALL = ClaimPolicy(languages=LANGUAGES)

#: (language, text, the kind of claim it makes)
CLAIMS: list[tuple[str, str, str]] = [
    ("en", "We cut p95 latency by 42% last quarter.", "percentage"),
    ("en", "I shipped 30 apps this year.", "first_person"),
    ("en", "My team grew revenue after we fixed onboarding.", "first_person"),
    ("en", "73% of developers use AI tools daily.", "percentage"),
    ("en", "Only 12 percent of teams run evals.", "percentage"),
    ("en", "The new pipeline runs 3x faster.", "multiplier"),
    ("en", "Small models are 10 times cheaper to run.", "multiplier"),
    ("en", "We raised $2.5M from angels.", "money"),
    ("en", "That script saves 5k dollars a month.", "money"),
    ("en", "The plan costs USD 500 a seat.", "money"),
    ("en", "It costs £40 a month.", "money"),
    ("en", "We now have 10,000 paying customers.", "count"),
    ("en", "The tool reached 1M downloads.", "count"),
    ("en", "9 out of 10 teams skip this step.", "count"),
    ("en", "I work at Stripe and love the tooling.", "employer"),
    ("en", "During my time at Google, design docs came first.", "employer"),
    ("en", "At Google, we never shipped without a review.", "employer"),
    ("en", "Our client Acme saw the difference within a week.", "customer"),
    ("en", "We helped Shopify move their checkout to the edge.", "customer"),
    ("es", "Redujimos la latencia un 42 % en tres meses.", "percentage"),
    ("es", "Lanzamos la app y conseguimos 500 clientes.", "count"),
    ("es", "Ahorramos 1.000 € al mes con un script.", "money"),
    ("es", "El 73 por ciento de los equipos no mide nada.", "percentage"),
    ("es", "Hemos mejorado el tiempo de respuesta.", "first_person"),
    ("es", "Nuestro equipo lanzó la versión nueva.", "first_person"),
    ("es", "Trabajo en Google desde hace años.", "employer"),
    ("es", "Nuestro cliente Telefónica está encantado.", "customer"),
    ("es", "Facturamos 2 millones de dólares el año pasado.", "money"),
    ("de", "Wir haben die Kosten um 3,5 Mio. € gesenkt.", "money"),
    ("de", "Wir haben die Latenz um 42 % reduziert.", "percentage"),
    ("de", "Ich habe 30 Apps veröffentlicht.", "first_person"),
    ("de", "Unser Team hat die Conversion verdoppelt.", "first_person"),
    ("de", "Das Tool ist dreimal schneller.", "multiplier"),
    ("de", "Die Plattform hat 2.000 Kunden.", "count"),
    ("de", "Ich arbeite bei SAP im Plattform-Team.", "employer"),
    ("de", "Unser Kunde Siemens spart jetzt Zeit.", "customer"),
    ("de", "Das spart 1.000 Euro pro Monat.", "money"),
    ("fr", "Nous avons réduit la latence de 42 %.", "percentage"),
    ("fr", "J'ai lancé 3 produits cette année.", "first_person"),
    ("fr", "On a doublé le nombre d'inscriptions.", "first_person"),
    ("fr", "Le service coûte 1 000 € par mois.", "money"),
    ("fr", "Nous avons 300 abonnés payants.", "count"),
    ("fr", "Je travaille chez Airbus depuis longtemps.", "employer"),
    ("fr", "Notre client Decathlon a tout migré.", "customer"),
    ("fr", "C'est 3 fois plus rapide qu'avant.", "multiplier"),
]

#: (language, text): advice, opinions, questions, third-person remarks -- no claim about the account
CLEAN: list[tuple[str, str]] = [
    ("en", "Write evals before you touch the prompt. Start small."),
    ("en", "How to plan tomorrow before you close the laptop:"),
    ("en", "Here are 3 steps to keep pull requests small."),
    ("en", "Cap meetings at 25 minutes and protect your mornings."),
    ("en", "I think small teams ship faster than big ones."),
    ("en", "Unpopular opinion: code assistants are overrated."),
    ("en", "Engineers at Google write design docs first."),
    ("en", "What is the one habit you would never give up?"),
    ("en", "p95 latency matters more than the average. GPT-4 will not fix a slow database."),
    ("es", "Escribe las pruebas antes de cambiar el prompt."),
    ("es", "¿Cuál es el hábito que nunca dejarías?"),
    ("es", "Tres pasos para revisar código sin perder la tarde."),
    ("es", "Los equipos pequeños suelen decidir mejor."),
    ("de", "Schreib zuerst die Tests, dann den Code."),
    ("de", "Welche Gewohnheit würdest du nie aufgeben?"),
    ("de", "Kleine Pull Requests sind leichter zu prüfen."),
    ("de", "Drei Schritte für bessere Reviews."),
    ("fr", "Écrivez les tests avant le code."),
    ("fr", "Quelle habitude ne lâcheriez-vous jamais ?"),
    ("fr", "Les petites équipes livrent souvent plus vite."),
    ("fr", "Trois étapes pour des revues de code plus simples."),
]


@pytest.mark.parametrize(("lang", "text", "kind"), CLAIMS)
def test_a_claim_is_found_in_its_language_and_blocks_without_facts(lang: str, text: str, kind: str) -> None:
    policy = ClaimPolicy(languages=(lang,))
    [claim] = policy.find([text])
    assert kind in claim.kinds, claim
    assert claim.span == text
    result = claims_gate([text], policy)
    assert not result.passed and result.reason == REASON and result.gate == "claims"
    assert result.details["unsupported"] == [text]
    assert result.score == 0.0


@pytest.mark.parametrize(("lang", "text"), CLEAN)
def test_a_draft_without_claims_passes_in_its_language_and_in_all(lang: str, text: str) -> None:
    for policy in (ClaimPolicy(languages=(lang,)), ALL):
        assert policy.find([text]) == []
        result = claims_gate([text], policy)
        assert result.passed and result.reason == "ok" and result.score == 1.0


#: (facts, text): a claim each fact supports, however the number is written
SUPPORTED: list[tuple[str, str]] = [
    ("We cut p95 latency by 42% at Acme in 2023", "We cut p95 latency by 42 % last year."),
    ("I shipped 30 apps in 2024", "I shipped 30 apps this year."),
    ("I work at Stripe as a staff engineer", "I work at Stripe."),
    ("Our client Acme renewed for a third year", "Our client Acme loved the new reports."),
    ("We raised $2.5 million in our seed round", "We raised 2.5M dollars in our seed round."),
    ("Ahorramos 1.000 € al mes en la nube", "Ahorramos 1000 € al mes en la nube."),
    ("Wir haben die Cloud-Kosten 2023 um 3,5 Mio. Euro gesenkt", "Die Cloud-Kosten haben wir um 3.500.000 € gesenkt."),
    ("Nous avons réduit la latence de 42 %", "Nous avons réduit la latence de 42 pour cent."),
    ("I launched the onboarding flow redesign", "We launched the onboarding redesign."),
    ("Je travaille chez Airbus", "Je travaille chez Airbus depuis longtemps."),
]


@pytest.mark.parametrize(("fact", "text"), SUPPORTED)
def test_a_claim_the_facts_hold_passes(fact: str, text: str) -> None:
    policy = ClaimPolicy(facts=(fact, "I have two cats"), languages=LANGUAGES)
    assert policy.find([text]), "the text should make a claim"
    result = claims_gate([text], policy)
    assert result.passed and result.reason == "supported", result.details


#: (facts, text): close to a fact but not held by it
UNSUPPORTED: list[tuple[str, str]] = [
    ("We cut p95 latency by 42% at Acme", "We cut p95 latency by 40%."),
    ("I shipped 30 apps in 2024", "I shipped 31 apps this year."),
    ("I work at Stripe", "I work at Google."),
    ("Our client Acme renewed", "Our client Globex renewed."),
    ("I launched the onboarding flow redesign", "We launched a podcast."),
    ("I have 2 kids", "I shipped 2 apps."),  # the number is in a fact, but a fact about something else
    ("Ahorramos 1.000 € al mes", "Ahorramos 2.000 € al mes."),
]


@pytest.mark.parametrize(("fact", "text"), UNSUPPORTED)
def test_a_claim_the_facts_do_not_hold_blocks(fact: str, text: str) -> None:
    result = claims_gate([text], ClaimPolicy(facts=(fact,), languages=LANGUAGES))
    assert not result.passed and result.reason == REASON and result.details["unsupported"] == [text]


def test_only_the_unsupported_sentence_is_reported_and_scored() -> None:
    policy = ClaimPolicy(facts=("I shipped 30 apps in 2024",))
    parts = ["I shipped 30 apps this year. Most of them were tiny.", "2/ Then we cut costs by 60%. Try it."]
    result = claims_gate(parts, policy)
    assert not result.passed
    assert result.details["unsupported"] == ["Then we cut costs by 60%."]  # thread numbering is not content
    assert result.score == 0.5
    assert [c["supported"] for c in result.details["claims"]] == [True, False]


def test_flag_only_passes_and_lists_the_claims() -> None:
    text = "We cut churn by a third and grew MRR 40%."
    result = claims_gate([text], ClaimPolicy(), flag_only=True)
    assert result.passed and result.reason == FLAGGED and flagged_claims(result) == [text]
    assert flagged_claims(claims_gate(["Write tests first."], ClaimPolicy(), flag_only=True)) == []


def test_languages_limit_the_first_person_cues_but_never_the_numbers() -> None:
    german = "Unser Team hat die Conversion verdoppelt."
    assert ClaimPolicy(languages=("en",)).find([german]) == []
    assert ClaimPolicy(languages=("de",)).find([german])
    assert ClaimPolicy(languages=("en",)).find(["Wir sparen 1.000 € im Monat."])  # money is money


def test_number_formats_have_the_same_value() -> None:
    assert 1000.0 in number_values("1.000 €") & number_values("€1,000") & number_values("1 000 €")
    assert number_values("3,5 Mio.") == number_values("3.5M") == {3_500_000.0}
    assert number_values("$5k") == number_values("5 thousand") == number_values("5000")
    assert number_values("42 %") == number_values("42%") == {42.0}
    assert number_values("p95 GPT-4 v2.0") == set()


def test_sentences_do_not_end_at_abbreviations() -> None:
    assert sentences("Wir haben 3,5 Mio. Euro gespart. Toll!") == ["Wir haben 3,5 Mio. Euro gespart.", "Toll!"]
    assert sentences("One.\n\nTwo? Three!") == ["One.", "Two?", "Three!"]


def test_settings_parsing_names_what_is_wrong() -> None:
    assert parse_facts("") == ()
    assert parse_facts('["I run a 3-person agency", " I write Rust "]') == ("I run a 3-person agency", "I write Rust")
    for bad in ("not json", '{"a": 1}', "[1, 2]", '["ok", ""]'):
        with pytest.raises(ValueError):
            parse_facts(bad)
    assert parse_languages("en, ES,de") == ("en", "es", "de")
    for bad in ("", "en,it", "klingon"):
        with pytest.raises(ValueError):
            parse_languages(bad)
    policy = ClaimPolicy.from_settings('["I shipped 30 apps"]', "fr,en")
    assert policy.facts == ("I shipped 30 apps",) and policy.languages == ("fr", "en")
    with pytest.raises(ValueError):
        ClaimPolicy(languages=("xx",))


def test_a_fact_sentence_is_always_supported_by_itself() -> None:
    """Property: whatever claim sentence we take, a policy whose facts hold that very sentence lets it pass;
    and adding unrelated facts never turns a supported claim into an unsupported one."""
    rng = random.Random(15)
    texts = [t for _, t, _ in CLAIMS]
    for _ in range(60):
        text = rng.choice(texts)
        noise = tuple(rng.sample([t for _, t in CLEAN], 3))
        assert claims_gate([text], ClaimPolicy(facts=(text,), languages=LANGUAGES)).passed, text
        assert claims_gate([text], ClaimPolicy(facts=(*noise, text), languages=LANGUAGES)).passed, text


def test_the_chain_runs_claims_after_quality_only_when_given_a_policy() -> None:
    now = datetime(2025, 10, 1, 12, 0, tzinfo=UTC)
    text = "Why do most side projects die? We cut our churn by 42% once we talked to 10 users every week."
    kw = dict(parts=[text], decision_type="single", embedding=np.ones(8, dtype=np.float32), topic="startups",
              angle="story", index=UniquenessIndex(window_days=30), window=RotationWindow(), now=now, live=True)
    plain = run_gate_chain(**kw)  # type: ignore[arg-type]
    assert plain.passed and [r.gate for r in plain.results] == ["quality", "uniqueness", "rotation"]
    blocked = run_gate_chain(**kw, claims=ClaimPolicy())  # type: ignore[arg-type]
    assert not blocked.passed and blocked.blocked_by is not None
    assert blocked.blocked_by.gate == "claims" and blocked.blocked_by.reason == REASON
    assert [r.gate for r in blocked.results] == ["quality", "claims"]
    flagged = run_gate_chain(**kw, claims=ClaimPolicy(), flag_claims=True)  # type: ignore[arg-type]
    assert flagged.passed and flagged_claims(flagged.result("claims")) == [
        "We cut our churn by 42% once we talked to 10 users every week."
    ]


def test_a_quotation_is_someone_elses_claim_not_ours() -> None:
    quoted = 'On "we cut costs by 40% with one script": the part people miss is ownership.'
    assert ALL.find([quoted]) == []
    for text in ('“We grew to 10k users” is a story I hear a lot.', "«Nous avons réduit la latence de 42 %» : bien."):
        assert ALL.find([text]) == []
    [claim] = ALL.find(['On "agents": we cut review time by 40%.'])
    assert claim.span == 'On "…": we cut review time by 40%.' and claim.numbers == ("40",)
    assert ALL.find(["Join #100DaysOfCode with @dev2024 today."]) == []
