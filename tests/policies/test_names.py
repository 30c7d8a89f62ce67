"""Names in prompts, plain and disguised: the field report, the labelled set's rates, the rules at their edges."""

from __future__ import annotations

import doctest
import importlib
import importlib.util
import json
import re
from collections import Counter
from pathlib import Path

import pytest

from policies.characters import CharacterMatcher, CharacterPolicy, CharacterRule, mentions, screen_prompt
from policies.decisions import Deny
from policies.names import Disguise, NameMatcher, fold, words

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
LABELLED = HERE / "data" / "disguised-names.json"
FIELD_REPORT = ROOT.parent / "shared" / "testdata" / "field-reports" / "disguised-names.json"
MAX_FALSE_BLOCKS = 0.01  # issue #11: false blocks under 1 % on the benign set


def _field_report() -> dict:
    if not FIELD_REPORT.exists():
        pytest.fail(f"test data not found at {FIELD_REPORT}: the shared/ folder must sit beside the checkout")
    return json.loads(FIELD_REPORT.read_text())


def _labelled() -> dict:
    return json.loads(LABELLED.read_text())


def _matcher(data: dict) -> CharacterMatcher:
    return CharacterMatcher.build(CharacterPolicy(f"ch{i}", c["name"], tuple(c["aliases"]), CharacterRule(c["rule"]))
                                  for i, c in enumerate(data["characters"]))


def _rates(data: dict) -> tuple[Counter[str], Counter[str], list[str]]:
    """(prompts per kind, blocked per kind, benign prompts blocked)."""
    matcher = _matcher(data)
    kinds: Counter[str] = Counter()
    blocked: Counter[str] = Counter()
    for row in data["must_block"]:
        kinds[row["kind"]] += 1
        named = {m.character.name for m in matcher.mentions(row["prompt"])}
        blocked[row["kind"]] += row["character"] in named
    false = [row["prompt"] for row in data["must_pass"] if matcher.mentions(row["prompt"])]
    return kinds, blocked, false


def test_every_field_report_prompt_gets_its_stated_answer():
    report = _field_report()
    ch = report["character"]
    matcher = CharacterMatcher.build([CharacterPolicy("ch_comet", ch["name"], tuple(ch["aliases"]),
                                                      CharacterRule(ch["rule"]))])
    for kind, prompt in report["must_block"].items():
        [d] = matcher.screen(prompt, requester="bob")
        assert isinstance(d, Deny) and d.rule == "character:ch_comet:deny", (kind, d)
        assert d.reason.startswith(f"the prompt names 'Captain Comet' as {d.matched!r}"), (kind, d.reason)
        assert d.matched in prompt and d.matched.split()[0][0] in "CＣ", (kind, d.matched)
    for kind, prompt in report["must_pass"].items():
        assert matcher.screen(prompt, requester="bob") == [], kind


def test_the_labelled_set_holds_the_field_report_and_is_what_its_script_makes():
    report, data = _field_report(), _labelled()
    prompts = {r["prompt"] for r in data["must_block"]}
    assert set(report["must_block"].values()) <= prompts
    assert set(report["must_pass"].values()) <= {r["prompt"] for r in data["must_pass"]}
    spec = importlib.util.spec_from_file_location("make_disguised_names", HERE / "data" / "make_disguised_names.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.build() == data, "run tests/policies/data/make_disguised_names.py"
    assert len(data["must_pass"]) >= 300 and len(data["must_block"]) >= 300
    names_per_kind = {k: {r["character"] for r in data["must_block"] if r["kind"] == k}
                      for k in ("cyrillic_lookalikes", "greek_lookalikes", "leetspeak", "transposition", "plural",
                                "spaced", "zero_width", "soft_hyphen", "fullwidth", "tag_characters",
                                "combining_marks")}
    assert all(len(names) >= 8 for names in names_per_kind.values()), names_per_kind


def test_labelled_set_every_disguise_is_blocked_and_false_blocks_stay_under_one_percent():
    data = _labelled()
    kinds, blocked, false = _rates(data)
    missed = {k: f"{blocked[k]}/{n}" for k, n in kinds.items() if blocked[k] != n}
    assert not missed, missed
    assert len(false) / len(data["must_pass"]) < MAX_FALSE_BLOCKS, false
    # docs/characters.md states these numbers; keep them true
    docs = (ROOT / "docs" / "characters.md").read_text()
    stated = f"{sum(blocked.values())} of {sum(kinds.values())} disguised prompts blocked, " \
             f"{len(false)} of {len(data['must_pass'])} benign prompts blocked"
    assert stated in docs, stated


def test_misspellings_left_alone_by_design_are_not_blocked():
    data = _labelled()
    matcher = _matcher(data)
    caught = [r["prompt"] for r in data["not_blocked_by_design"] if matcher.mentions(r["prompt"])]
    assert caught == [], "caught now: move them to must_block and update docs/characters.md"


@pytest.mark.parametrize("prompt,form,disguises", [
    ("Cаptain Cоmet flies", "Cаptain Cоmet", {Disguise.LOOKALIKE}),
    ("Ϲαptαin Ϲomet flies", "Ϲαptαin Ϲomet", {Disguise.LOOKALIKE, Disguise.COMPATIBILITY}),  # Ϲ: NFKD Σ
    ("C4pt41n C0m3t flies", "C4pt41n C0m3t", {Disguise.LEETSPEAK}),
    ("C@pt@in Comet flies", "C@pt@in Comet", {Disguise.LEETSPEAK}),
    ("Captian Comet flies", "Captian Comet", {Disguise.TYPO}),
    ("Captain Comets fly", "Captain Comets", {Disguise.INFLECTION}),
    ("Captian Comets fly", "Captian Comets", {Disguise.TYPO, Disguise.INFLECTION}),
    ("C a p t a i n C o m e t", "C a p t a i n C o m e t", {Disguise.SPACING}),
    ("Capt\u200bain Comet", "Capt\u200bain Comet", {Disguise.INVISIBLE}),
    ("Capt\u00adain Comet", "Capt\u00adain Comet", {Disguise.INVISIBLE}),
    ("Capt\U000e0061ain Comet", "Capt\U000e0061ain Comet", {Disguise.INVISIBLE}),
    ("C\u0336aptain Comet", "C\u0336aptain Comet", {Disguise.MARKS}),
    ("Ｃａｐｔａｉｎ Ｃｏｍｅｔ", "Ｃａｐｔａｉｎ Ｃｏｍｅｔ", {Disguise.COMPATIBILITY}),
    ("the CAPTAIN-COMET show", "CAPTAIN-COMET", set()),
])
def test_the_form_as_written_and_its_disguises(prompt, form, disguises):
    [found] = NameMatcher.build(["Captain Comet"]).find(prompt)
    assert (found.form, set(found.disguises)) == (form, disguises)
    assert prompt[found.start:found.end] == form


def test_lookalike_and_invisible_characters_are_named():
    [found] = NameMatcher.build(["Captain Comet"]).find("Cаptain Com\u200bet")
    assert found.lookalikes == ("U+0430 CYRILLIC SMALL LETTER A",)
    assert found.invisible == ("U+200B ZERO WIDTH SPACE",)
    [d] = screen_prompt("Cаptain Com\u200bet", [CharacterPolicy("c1", "Captain Comet")], "bob")
    assert "(invisible characters U+200B ZERO WIDTH SPACE; look-alike letters U+0430 CYRILLIC SMALL LETTER A)" \
        in d.reason
    assert d.to_dict() == {"decision": "deny", "reason": d.reason, "rule": "character:c1:deny",
                           "matched": "Cаptain Com\u200bet", "disguises": ["invisible", "lookalike"]}


@pytest.mark.parametrize("prompt", [
    "the captain comes home",  # one letter from "comet", but a 5-letter word may only have letters swapped
    "captain comte",  # ...which this is, so see the next test
    "a glimmering lake",  # one added letter from a one-word name: one-word names allow swaps only
    "the captain, comet in view",  # a comma ends the phrase
    "thunder; squirrel",
    "360 degree view",  # a number is not leetspeak for "ego"
    "a 3d render",  # nor "3d" for "ed": leetspeak needs 3 letters
    "captlan comet",  # a written "l" is not the name's "i" (only "1" and "|" stand for both)
    "robo pupil", "steamboat mouser", "professorial paradox",  # a name inside a longer word
])
def test_near_misses_pass(prompt):
    matcher = NameMatcher.build(["Captain Comet", "Glimmerwing", "Thunder Squirrel", "Ego", "Ed", "Robo Pup",
                                 "Steamboat Mouse", "Professor Paradox"])
    found = matcher.find(prompt)
    assert found == [] or prompt == "captain comte", found


def test_a_swap_in_a_five_letter_word_of_a_longer_name_is_caught():
    assert [f.form for f in NameMatcher.build(["Captain Comet"]).find("captain comte")] == ["captain comte"]


@pytest.mark.parametrize("name,prompt", [
    ("Spider-Man", "two Spider-Men"), ("Pixy Dust", "Pixy Dusts"), ("Steamboat Mouse", "Steamboat Mice"),
    ("Elf King", "Elf Kings"), ("Wolf", "wolves"), ("Robo Pup", "robo pups'"), ("Foxy Box", "Foxy Boxes"),
])
def test_plurals(name, prompt):
    [found] = NameMatcher.build([name]).find(prompt)
    assert Disguise.INFLECTION in found.disguises


@pytest.mark.parametrize("prompt,caught", [
    ("Glimmerwnig", True), ("Glimmerwng", False), ("Lady Nightshde", True), ("Lady Nightshadr", True),
    ("Lady Nightshadeee", False), ("Ldy Nightshade", False), ("Spdierman", True), ("Spidermna", True),
    ("Spdier Man", True), ("Spider Nam", False),
])
def test_misspelling_rules(prompt, caught):
    matcher = NameMatcher.build(["Glimmerwing", "Lady Nightshade", "Spider-Man"])
    assert bool(matcher.find(prompt)) is caught


def test_a_name_with_punctuation_of_its_own_still_matches_it():
    matcher = NameMatcher.build(["Smith, Jr.", "Mr. Whiskers"])
    assert [f.index for f in matcher.find("Smith, Jr. and Mr. Whiskers and Mr Whiskers")] == [0, 1]


def test_one_decision_per_character_plainest_writing_first():
    comet = CharacterPolicy("c1", "Captain Comet", ("the comet kid",), CharacterRule.LICENSEES_ONLY,
                            frozenset({"lic"}))
    pup = CharacterPolicy("c2", "Robo Pup", rule=CharacterRule.ALLOW)
    matcher = CharacterMatcher.build([comet, pup])
    assert len(matcher) == 2
    ds = matcher.screen("C4pt41n C0m3t, then Captain Comet, then the comet kid and r0b0 pup", "bob")
    assert [(d.rule, d.matched, d.disguises) for d in ds] == [
        ("character:c1:licensees_only", "Captain Comet", ()),
        ("character:c2:allow", "r0b0 pup", ("leetspeak",))]
    [d] = matcher.screen("th3 c0m3t k1d", "bob")
    assert d.reason.startswith("the prompt names 'Captain Comet' (alias 'the comet kid') as 'th3 c0m3t k1d'")
    assert matcher.screen("th3 c0m3t k1d", "lic")[0].allowed
    assert mentions("the robo-pup at night", pup) == "robo pup"
    assert mentions("a quiet lake", pup) is None


def test_folding():
    assert fold("Cаptain") == "captain" and fold("ΗΕΛΛΟ") == "heλλo" and fold("Ｃｏｍｅｔ") == "comet"
    assert fold("ⓒⓞⓜⓔⓣ") == "comet" and fold("C\u200bo\u0336met") == "comet" and fold("Straße") == "strasse"
    assert words("Cаptain  COMET!") == ("captain", "comet")
    assert words("C@ptain") == ("c", "ptain")  # symbols are read as letters only while matching
    assert NameMatcher.build([]).find("anything") == [] and NameMatcher.build(["!!!"]).find("!!!") == []


@pytest.mark.parametrize("bad", ["\u3164", "\u200b\u200b", "⁉"])
def test_names_that_fold_to_nothing_are_refused(bad):
    from policies.characters import PolicyError

    with pytest.raises(PolicyError):
        CharacterPolicy("c", bad)


@pytest.mark.parametrize("module", ["policies.names", "policies.characters"])
def test_docstring_examples(module):
    result = doctest.testmod(importlib.import_module(module))
    assert result.attempted > 0 and result.failed == 0


def test_rules_cite_their_numbers():
    """Each threshold's comment says where it comes from (the labelled set or a reason)."""
    source = (ROOT / "policies" / "names.py").read_text()
    for constant in ("FUZZY_MIN_LETTERS", "FUZZY_MIN_LETTERS_ALONE", "ANY_EDIT_FROM_LETTERS", "LEET_MIN_LETTERS"):
        assert re.search(rf"#: .*\n(?:#: .*\n)*{constant} = ", source), constant


@pytest.mark.parametrize("prompt", [
    '"Captain" "Comet" waves', "Captain,Comet waves",
    "(Captain) (Comet) waves", "Captain—Comet waves", "Captain–Comet waves", 'Captain "Comet" waves',
    "«Captain Comet» waves", "[Captain] [Comet] waves", "Captain…Comet waves", "Captain~Comet waves",
    "Lady, Night, Shade", "Lady... Night... Shade", "Lady: Night: Shade", "Lady—Night—Shade",
    '"Lady" "Night" "Shade"',
])
def test_any_punctuation_between_a_names_words_is_a_separator(prompt):
    """Quotes, brackets, dashes, ellipses and commas between a name's words hide nothing (the tester's '"my"
    "secret" "slogan"' and 'I, love, crypto' writings of restricted phrases, here for character names)."""
    matcher = NameMatcher.build(["Captain Comet", "Lady Night Shade"])
    assert matcher.find(prompt), prompt


@pytest.mark.parametrize("prompt", [
    "the old captain, comet trails above him", "a captain. Comets fall", "the captain: comet watcher",
    "lady, night shade is a plant",
])
def test_a_phrase_break_between_two_words_still_parts_them(prompt):
    """A comma, full stop or colon followed by a space between two words (and not between every word of a
    name of three or more) ends a phrase: a two-word name is not named across it."""
    matcher = NameMatcher.build(["Captain Comet", "Lady Night Shade"])
    assert matcher.find(prompt) == [], prompt
