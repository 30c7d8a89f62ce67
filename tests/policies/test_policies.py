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
from policies.consent import (
    ConsentFacts,
    LikenessMode,
    LikenessStatus,
    Verification,
    can_consent,
    likeness_permits,
    public_figure_permits,
    seen_face_permits,
)
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
    facts = ConsentFacts("lk", "owner", mode, grant_id=grant, mutual_contact=mutual, verification=Verification.LIVE)
    d = likeness_permits(facts, "someone")
    assert d.allowed is allowed
    assert d.rule == f"likeness:{mode.value}"
    # the owner may always use their own likeness
    assert likeness_permits(facts, "owner").allowed


LIVE = Verification.LIVE


@pytest.mark.parametrize(
    "verification,status,rule,words",
    [
        (Verification.PHOTO, LikenessStatus.ACTIVE, "likeness:photo", "POST /v1/likenesses/lk/verification"),
        (LIVE, LikenessStatus.DISPUTED, "likeness:disputed", "another account enrolled first"),
        (LIVE, LikenessStatus.PENDING_REVIEW, "likeness:pending_review", "admin's review"),
        (Verification.PHOTO, LikenessStatus.DISPUTED, "likeness:disputed", "until an admin resolves"),
    ],
)
def test_a_likeness_that_is_not_live_and_active_only_protects(verification, status, rule, words):
    """Whatever its mode or grants, it consents to nobody, its owner included, and says why."""
    for mode in LikenessMode:
        facts = ConsentFacts("lk", "owner", mode, grant_id="g1", mutual_contact=True, verification=verification,
                             status=status)
        for requester in ("owner", "someone"):
            d = likeness_permits(facts, requester)
            assert not d.allowed and d.rule == rule and words in d.reason and "protects" in d.reason
        assert can_consent(facts) == likeness_permits(facts, "owner")


def test_facts_that_say_nothing_about_verification_cannot_consent():
    assert not likeness_permits(ConsentFacts("lk", "owner", LikenessMode.EVERYONE), "owner").allowed
    assert can_consent(ConsentFacts("lk", "owner", LikenessMode.EVERYONE, verification=LIVE)).allowed


def test_a_disputed_face_defers_to_the_earlier_claim_it_matched():
    later = ConsentFacts("lk_b", "bob", LikenessMode.APPROVED, verification=LIVE, status=LikenessStatus.DISPUTED,
                         disputes=("lk_a",))
    yes, no = Allow("grant g1 on likeness lk_a", "likeness:approved"), Deny("needs a grant", "likeness:approved")
    d = seen_face_permits(later, "carol", {"lk_a": yes})
    assert d.allowed and d.rule == "likeness:disputed:deferred" and "lk_a" in d.reason and "g1" in d.reason
    # the earlier claim says no, was not seen on the same face, or is not the one disputed: the later one blocks
    assert seen_face_permits(later, "carol", {"lk_a": no}).rule == "likeness:disputed"
    assert not seen_face_permits(later, "carol", {}).allowed
    assert not seen_face_permits(later, "carol", {"lk_z": yes}).allowed
    # a photo likeness that disputes nothing is not helped by anything seen with it
    photo = ConsentFacts("lk_c", "carl", LikenessMode.EVERYONE)
    assert seen_face_permits(photo, "carol", {"lk_a": yes}).rule == "likeness:photo"


def test_a_public_figure_needs_an_approved_likeness_that_consents():
    d = public_figure_permits("fig_1", "Barack Obama", "the prompt names 'Barack Obama'", [])
    assert not d.allowed and d.rule == "figure:fig_1" and "protected public figure" in d.reason
    d = public_figure_permits("fig_1", "Barack Obama", "s", [Deny("no grant"), Allow("grant g2 on lk_o")])
    assert d.allowed and "g2" in d.reason


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
