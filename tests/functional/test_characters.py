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
