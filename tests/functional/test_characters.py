"""Rights holders: simulate a rule on past requests before registering it, and read a character's usage.
Both show counts, never other people's prompts or names (licensees, the holder's partners, excepted)."""

from __future__ import annotations


def _problem(r, status: int) -> dict:
    assert r.status_code == status, (r.status_code, r.get_json())
    assert r.mimetype == "application/problem+json"
    return r.get_json()


def test_simulate_a_rule_on_past_requests_then_read_its_usage(api):
    studio = api.account("studio", "rights_holder")
    bob, carol = api.account("bob"), api.account("carol")
    # before any rule: bob and carol use the character freely
    earlier = [api.generate(bob, "Robo Pup plays fetch"), api.generate(carol, "the robo-pup at night"),
               api.generate(bob, "a quiet lake")]
    for g, who in zip(earlier, (bob, carol, bob), strict=True):
        assert api.wait(who, g["id"])["state"] == "released"

    rule = {"name": "Robo Pup", "aliases": ["robopup"], "rule": "licensees_only", "licensees": ["carol"]}
    sim = api.call("POST", "/v1/characters/simulate", studio, json=rule).get_json()
    assert sim == {"requests_screened": 3, "named": 2, "would_deny": 1, "would_allow": 1,
                   "released_that_would_be_denied": 1,
                   "named_as": [{"phrase": "robo pup", "requests": 2}]}
    assert "Robo Pup plays" not in str(sim) and "bob" not in str(sim)  # counts only
    assert api.call("POST", "/v1/characters/simulate", studio, json={**rule, "last": 1}).get_json()["named"] == 0
    assert api.call("GET", "/v1/characters", studio).get_json()["characters"] == []  # nothing was registered

    ch = api.call("POST", "/v1/characters", studio, json=rule).get_json()
    assert api.generate(bob, "ROBO PUP again")["state"] == "blocked"
    done = api.wait(carol, api.generate(carol, "robopup in space")["id"])
    assert done["state"] == "released"
    api.generate(bob, "a quiet lake")  # names nothing: not counted

    usage = api.call("GET", f"/v1/characters/{ch['id']}/usage", studio).get_json()
    assert {k: usage[k] for k in ("requests", "allowed_by_rule", "denied_by_rule", "released", "blocked")} == \
        {"requests": 2, "allowed_by_rule": 1, "denied_by_rule": 1, "released": 1, "blocked": 1}
    assert usage["licensees"] == [{"account": "carol", "requests": 1, "released": 1}]
    assert usage["other_requesters"] == 1 and usage["first_request_at"] <= usage["last_request_at"]


def test_character_tools_refuse_others_and_bad_input(api):
    studio, rival = api.account("studio", "rights_holder"), api.account("rival", "rights_holder")
    bob = api.account("bob")
    ch = api.call("POST", "/v1/characters", studio, json={"name": "Captain Comet", "rule": "deny"}).get_json()
    assert "only the rights holder" in _problem(api.call("GET", f"/v1/characters/{ch['id']}/usage", rival),
                                                403)["detail"]
    _problem(api.call("GET", f"/v1/characters/{ch['id']}/usage", bob), 403)
    _problem(api.call("GET", "/v1/characters/ch_nope/usage", studio), 404)
    _problem(api.call("POST", "/v1/characters/simulate", bob, json={"name": "X", "rule": "deny"}), 403)
    for body, words in [
        ({"name": "Comet", "rule": "maybe"}, "rule must be one of"),
        ({"name": "!!!", "rule": "deny"}, "need a letter or digit"),
        ({"name": "Comet", "rule": "deny", "last": 0}, "last must be a whole number"),
        ({"name": "Comet", "rule": "deny", "last": "all"}, "last must be a whole number"),
        ({"name": "Comet", "rule": "licensees_only", "licensees": ["nobody"]}, "unknown licensee"),
        ({"name": "Comet", "rule": "deny", "since": "2026"}, "unknown fields"),
    ]:
        assert words in _problem(api.call("POST", "/v1/characters/simulate", studio, json=body), 422)["detail"], body


def test_attribution_rule_credits_the_rights_holder_in_label_and_manifest(api):
    studio, bob = api.account("studio", "rights_holder"), api.account("bob")
    r = api.call("POST", "/v1/characters", studio,
                 json={"name": "Captain Comet", "rule": "attribution", "attribution": "Captain Comet (c) Studio"})
    assert r.status_code == 201 and r.get_json()["attribution"] == "Captain Comet (c) Studio"
    done = api.wait(bob, api.generate(bob, "captain comet over the sea")["id"])
    assert done["state"] == "released", done
    report = api.verify(api.download(bob, done["id"])).get_json()
    assert report["c2pa"]["governance"]["attributions"] == [
        {"character": r.get_json()["id"], "name": "Captain Comet", "credit": "Captain Comet (c) Studio"}]
    plain = api.wait(bob, api.generate(bob, "a quiet sea")["id"])
    assert api.verify(api.download(bob, plain["id"])).get_json()["c2pa"]["governance"]["attributions"] == []

    for body, words in [
        ({"name": "Robo Pup", "rule": "attribution"}, "needs the credit"),
        ({"name": "Robo Pup", "rule": "attribution", "attribution": "x" * 61}, "at most 60"),
        ({"name": "Robo Pup", "rule": "deny", "attribution": "(c) Studio"}, "goes with the 'attribution' rule"),
        ({"name": "Robo Pup", "rule": "attribution", "attribution": 7}, "attribution must be a string"),
    ]:
        assert words in _problem(api.call("POST", "/v1/characters", studio, json=body), 422)["detail"], body


def _png(rgb) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return buf.getvalue()


def test_a_character_shown_but_not_named_is_caught_by_its_reference_images(make_api, layout_encoder):
    """The visual check with an operator's image encoder (here a hand-set stand-in): the rights holder's
    reference still is a frame of the very scene the requester asks for, under another name."""
    from generator.base import GenerationSpec, get_generator

    api = make_api(character_model_dir=str(layout_encoder), character_threshold=0.95)
    studio, bob, carol = api.account("studio", "rights_holder"), api.account("bob"), api.account("carol")
    ch = api.call("POST", "/v1/characters", studio,
                  json={"name": "Frost Giant", "rule": "licensees_only", "licensees": ["carol"]}).get_json()
    still = get_generator("procedural").generate(GenerationSpec(prompt="snow in the forest", seed=7)).frames[0]
    r = api.multipart(f"/v1/characters/{ch['id']}/references", studio, [("frost.png", _png(still))])
    assert r.status_code == 201 and r.get_json() == {"character": ch["id"], "references": 1}

    gen = api.generate(bob, "snow in the forest", seed=7)
    assert gen["state"] == "prechecked"  # the prompt does not name it
    done = api.wait(bob, gen["id"])
    assert done["state"] == "blocked"
    assert any("the output shows 'Frost Giant'" in r and "licensed to named licensees only" in r
               for r in done["reasons"]), done["reasons"]
    licensed = api.wait(carol, api.generate(carol, "snow in the forest", seed=7)["id"])
    assert licensed["state"] == "released"
    manifest = api.verify(api.download(carol, licensed["id"])).get_json()["c2pa"]["governance"]
    assert any(d["reason"].startswith("the output shows 'Frost Giant'") for d in manifest["decisions"])
    assert api.wait(bob, api.generate(bob, "a city at night", seed=7)["id"])["state"] == "released"
    usage = api.call("GET", f"/v1/characters/{ch['id']}/usage", studio).get_json()
    assert (usage["requests"], usage["denied_by_rule"], usage["allowed_by_rule"]) == (2, 1, 1)


def test_reference_images_are_refused_when_they_cannot_be_used(make_api, api, faces_dir, layout_encoder):
    import pytest

    from governance.config import ConfigError

    studio, rival = api.account("studio", "rights_holder"), api.account("rival", "rights_holder")
    ch = api.call("POST", "/v1/characters", studio, json={"name": "Frost Giant", "rule": "deny"}).get_json()
    photo = (faces_dir / "biden2.jpg").read_bytes()
    path = f"/v1/characters/{ch['id']}/references"
    assert "no image encoder" in _problem(api.multipart(path, studio, [("a.jpg", photo)]), 409)["detail"]
    visual = make_api(character_model_dir=str(layout_encoder), character_threshold=0.95)
    studio, rival = visual.account("studio", "rights_holder"), visual.account("rival", "rights_holder")
    ch = visual.call("POST", "/v1/characters", studio, json={"name": "Frost Giant", "rule": "deny"}).get_json()
    path = f"/v1/characters/{ch['id']}/references"
    _problem(visual.multipart(path, rival, [("a.jpg", photo)]), 403)
    clip = (faces_dir / "short_hamilton_clip.mp4").read_bytes()
    assert "not videos" in _problem(visual.multipart(path, studio, [("a.mp4", clip)]), 422)["detail"]
    assert "at most 8" in _problem(visual.multipart(path, studio, [("a.jpg", photo)] * 9), 422)["detail"]
    _problem(visual.multipart("/v1/characters/ch_nope/references", studio, [("a.jpg", photo)]), 404)
    assert visual.multipart(path, studio, [("a.jpg", photo)] * 2).get_json()["references"] == 2
    assert visual.call("DELETE", f"/v1/characters/{ch['id']}", studio).status_code == 204  # references go too
    with pytest.raises(ConfigError, match="needs character_threshold"):
        make_api(character_model_dir=str(layout_encoder))


def test_a_disguised_name_is_blocked_at_precheck_shown_as_written_and_counted_in_usage(api):
    """issue #11: look-alike letters, leetspeak, a swap and a plural no longer release a `deny` character; the
    field report's prompts get their stated answers over HTTP; the matcher follows registrations and deletions."""
    import json

    from tests.conftest import TESTDATA

    report = json.loads((TESTDATA / "field-reports" / "disguised-names.json").read_text())
    studio, bob = api.account("studio", "rights_holder"), api.account("bob")
    ch = api.call("POST", "/v1/characters", studio, json=report["character"]).get_json()

    gen = api.generate(bob, "C\u0430ptain C\u043emet flying over a city")
    assert gen["state"] == "blocked", gen
    [reason] = gen["reasons"]
    assert reason.startswith("the prompt names 'Captain Comet' as 'C\u0430ptain C\u043emet' (look-alike letters "
                             "U+0430 CYRILLIC SMALL LETTER A, U+043E CYRILLIC SMALL LETTER O)"), reason
    [decision] = api.call("GET", f"/v1/generations/{gen['id']}", bob).get_json()["decisions"]
    assert decision == {"decision": "deny", "reason": reason, "rule": f"character:{ch['id']}:deny",
                        "matched": "C\u0430ptain C\u043emet", "disguises": ["lookalike"]}

    for kind, prompt in report["must_block"].items():
        blocked = api.generate(bob, prompt)
        assert blocked["state"] == "blocked" and "the prompt names 'Captain Comet'" in blocked["reasons"][0], kind
    for kind, prompt in report["must_pass"].items():
        done = api.wait(bob, api.generate(bob, prompt)["id"])
        assert done["state"] == "released" and not any("Captain Comet" in r for r in done["reasons"]), (kind, done)

    usage = api.call("GET", f"/v1/characters/{ch['id']}/usage", studio).get_json()
    assert (usage["requests"], usage["denied_by_rule"], usage["blocked"]) == (8, 8, 8)
    assert usage["disguised"] == {"requests": 8, "by_kind": {
        "compatibility": 1, "inflection": 1, "invisible": 1, "leetspeak": 1, "lookalike": 2, "spacing": 1, "typo": 1}}

    # a character registered later is screened at once; a deleted one no longer is
    pup = api.call("POST", "/v1/characters", studio, json={"name": "Robo Pup", "rule": "deny"}).get_json()
    assert api.generate(bob, "R0b0 Pup at the park")["state"] == "blocked"
    assert api.call("DELETE", f"/v1/characters/{pup['id']}", studio).status_code == 204
    assert api.wait(bob, api.generate(bob, "R0b0 Pup at the park")["id"])["state"] == "released"
