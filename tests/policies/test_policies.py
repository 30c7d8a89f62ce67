import pytest

from policies.characters import (
    CharacterPolicy,
    CharacterRule,
    PolicyError,
    mentions,
    names_used,
    normalize,
    screen_prompt,
)
from policies.consent import ConsentFacts, LikenessMode, likeness_permits
from policies.decisions import Allow, Deny, all_of

SPIDEY = CharacterPolicy("c1", "Spider-Man", ("Peter Parker",), CharacterRule.DENY)


@pytest.mark.parametrize(
    "prompt",
    ["spider-man swings", "SPIDERMAN at night", "a Spider   Man cameo", "spïder man", "peter.parker eats",
     "“Spider_Man”"],
)
def test_names_match_whatever_the_spelling(prompt):
    assert mentions(prompt, SPIDEY) is not None


@pytest.mark.parametrize("prompt", ["a spider on a man", "spidermanly things", "a man", "superman flies", ""])
def test_non_mentions(prompt):
    assert mentions(prompt, SPIDEY) is None


def test_substrings_inside_words_do_not_match():
    cars = CharacterPolicy("c2", "Cars", (), CharacterRule.DENY)
    assert mentions("the Oscars ceremony", cars) is None
    assert mentions("two cars race", cars) == "cars"


def test_rules():
    lic = CharacterPolicy("c3", "Space Ranger", (), CharacterRule.LICENSEES_ONLY, frozenset({"acc-lic"}))
    ok = CharacterPolicy("c4", "Friendly Ghost", (), CharacterRule.ALLOW)
    chars = [SPIDEY, lic, ok]
    assert screen_prompt("a cat in a hat", chars, "anyone") == []
    [d] = screen_prompt("space ranger flies", chars, "acc-other")
    assert isinstance(d, Deny) and d.rule == "character:c3:licensees_only"
    [d] = screen_prompt("space ranger flies", chars, "acc-lic")
    assert isinstance(d, Allow)
    [d] = screen_prompt("the friendly-ghost waves", chars, "x")
    assert d.allowed
    decisions = screen_prompt("spiderman meets the friendly ghost", chars, "x")
    assert not all_of(decisions).allowed and len(all_of(decisions).denials) == 1


@pytest.mark.parametrize("bad", ["", "  ", "!!!", "x" * 201])
def test_bad_character_names_rejected(bad):
    with pytest.raises(PolicyError):
        CharacterPolicy("c", bad)


def test_normalize():
    assert normalize("Élan-Vital  2") == ("elan", "vital", "2")


@pytest.mark.parametrize(
    "mode,grant,mutual,allowed",
    [
        (LikenessMode.ONLY_ME, "g1", True, False),
        (LikenessMode.APPROVED, None, True, False),
        (LikenessMode.APPROVED, "g1", False, True),
        (LikenessMode.MUTUALS, None, False, False),
        (LikenessMode.MUTUALS, None, True, True),
        (LikenessMode.MUTUALS, "g1", False, True),
        (LikenessMode.EVERYONE, None, False, True),
    ],
)
def test_consent_modes(mode, grant, mutual, allowed):
    facts = ConsentFacts("lk", "owner", mode, grant_id=grant, mutual_contact=mutual)
    d = likeness_permits(facts, "someone")
    assert d.allowed is allowed
    assert d.rule == f"likeness:{mode.value}"
    # the owner may always use their own likeness
    assert likeness_permits(facts, "owner").allowed


def test_empty_rule_set_fails_closed():
    assert not all_of([]).allowed
    assert all_of([Allow("a")]).allowed


def test_attribution_rule_allows_anyone_and_needs_one_printable_credit():
    comet = CharacterPolicy("c1", "Captain Comet", rule=CharacterRule.ATTRIBUTION,
                            attribution="Captain Comet (c) Studio")
    [d] = screen_prompt("captain comet flies", [comet], requester="anyone")
    assert d.allowed and "Captain Comet (c) Studio" in d.reason and d.rule == "character:c1:attribution"
    from policies.characters import character_of

    assert character_of(d.rule) == "c1" and character_of("likeness:approved") is None
    for bad, words in [("", "needs the credit"), ("a\nb", "needs the credit"), ("x" * 61, "at most 60")]:
        with pytest.raises(PolicyError, match=words):
            CharacterPolicy("c1", "Comet", rule=CharacterRule.ATTRIBUTION, attribution=bad)
    with pytest.raises(PolicyError, match="goes with the 'attribution' rule"):
        CharacterPolicy("c1", "Comet", rule=CharacterRule.DENY, attribution="(c) Studio")


def test_names_used_lists_every_name_the_prompt_uses_never_its_words():
    ch = CharacterPolicy("c", "Robo Pup", ("Pup Bot", "the kid"))
    assert names_used("Robo-Pup and PUPBOT meet robopup", ch) == {"robopup", "pupbot"}
    assert names_used("a quiet lake", ch) == frozenset()
    assert names_used("oscars night", CharacterPolicy("c", "Cars")) == frozenset()  # whole words only
    for prompt in ("the kid and robo pup", "pup bot", "nothing"):  # the same verdict as mentions()
        assert bool(names_used(prompt, ch)) == (mentions(prompt, ch) is not None)
