"""Rights holders: simulate a rule on past requests before registering it, and read a character's usage.
Both show counts, never other people's prompts or names (licensees, the holder's partners, excepted)."""

from __future__ import annotations


def _problem(r, status: int) -> dict:
    assert r.status_code == status, (r.status_code, r.get_json())
    assert r.mimetype == "application/problem+json"
    return r.get_json()


def _backdate(api, days: int = 1) -> None:
    """Move every request so far back ``days`` days: simulations and usage count only requests made before
    the current UTC day."""
    from datetime import timedelta

    from sqlmodel import select

    from governance.db import unit_of_work
    from governance.generations.models import Generation

    with unit_of_work(api.rt.engine) as s:
        for g in s.exec(select(Generation)).all():
            g.created_at = g.created_at - timedelta(days=days)
            s.add(g)


def _release(api, ids) -> None:
    from governance.db import unit_of_work
    from governance.generations.models import Generation, GenerationState

    with unit_of_work(api.rt.engine) as s:
        for gid in ids:
            g = s.get(Generation, gid)
            g.state = GenerationState.RELEASED
            s.add(g)


def _crowd(api, n: int = 6, *, release: bool = True, tokens: list[str] | None = None) -> list[str]:
    """``n`` creators (or those of ``tokens``), each asking three times (twice for Robo Pup); the first two once
    more. With ``release``, the first Robo Pup request of each counts as released."""
    tokens = tokens or [api.account(f"creator{i}") for i in range(n)]
    fetch = [api.generate(t, "Robo Pup plays fetch")["id"] for t in tokens]
    for t in tokens:
        api.generate(t, "a quiet lake")
        api.generate(t, "the robo-pup at night")
    for t in tokens[:2]:
        api.generate(t, "the harbour at dawn")
    if release:
        _release(api, fetch)
    return tokens


def test_simulate_shows_only_counts_that_rest_on_five_people(make_api):
    api = make_api(worker="none", daily_quota=100)
    studio = api.account("studio", "rights_holder")
    _crowd(api)  # 20 requests from 6 people, 12 of them naming Robo Pup
    target = api.account("target")
    api.generate(target, "a surprise party for anna on friday")

    def sim(**body):
        r = api.call("POST", "/v1/characters/simulate", studio, json={"rule": "deny", **body})
        assert r.status_code == 200, r.get_json()
        return r.get_json()

    # today's requests are never screened: the sample is empty until tomorrow
    r = api.call("POST", "/v1/characters/simulate", studio, json={"name": "Robo Pup", "rule": "deny"})
    assert r.status_code == 409 and "k-anonymity" in r.get_json()["detail"]
    _backdate(api)

    rule = {"name": "Robo Pup", "aliases": ["robopup"], "rule": "licensees_only"}
    out = sim(**rule)
    assert out == {"requests_screened": 21, "before": out["before"], "k": 5, "named": 12, "would_deny": 12,
                   "would_allow": 0, "released_that_would_be_denied": 6, "withheld": []}
    assert api.call("GET", "/v1/characters", studio).get_json()["characters"] == []  # nothing was registered

    # the attack from issue #9: one guessed word at a time, narrowed to the newest request
    r = api.call("POST", "/v1/characters/simulate", studio, json={"name": "surprise", "rule": "deny", "last": 1})
    assert r.status_code == 422 and "from 20 to" in r.get_json()["detail"]
    guessed, unused = sim(name="surprise"), sim(name="zebra crossing")
    assert guessed == unused  # one person's word cannot be told from nobody's
    assert guessed["named"] is None and "fewer than 5 requesters" in guessed["withheld"][0]
    # ...or a guessed alias beside a common name, to be read off the difference
    with_alias = sim(name="Robo Pup", aliases=["anna"])
    assert with_alias["named"] is None and "'anna'" in with_alias["withheld"][0]
    # ...or licensees chosen to split the requests down to one person
    split = sim(**rule, licensees=["creator0"])
    assert split["named"] == 12 and split["would_deny"] is split["would_allow"] is None
    assert "licensees split" in split["withheld"][0]
    text = str([out, guessed, with_alias, split])
    assert "surprise party" not in text and "fetch" not in text and "named_as" not in text  # never prompts

    # a window of 20 requests or more, but from fewer than 5 requesters, is refused
    small = make_api(worker="none", daily_quota=100)
    small_studio = small.account("studio", "rights_holder")
    for t in _crowd(small, n=4):
        small.generate(t, "a city at night")
        small.generate(t, "snow in the forest")
    _backdate(small)
    r = small.call("POST", "/v1/characters/simulate", small_studio, json={"name": "Robo Pup", "rule": "deny"})
    assert r.status_code == 409 and r.get_json()["k"] == 5 and "at least 5 requesters" in r.get_json()["detail"]


def test_simulations_are_rate_limited_per_account(make_api):
    api = make_api(worker="none", simulate_per_minute=2)
    studio, rival = api.account("studio", "rights_holder"), api.account("rival", "rights_holder")
    body = {"name": "Robo Pup", "rule": "deny"}
    assert [api.call("POST", "/v1/characters/simulate", studio, json=body).status_code for _ in range(2)] == [409] * 2
    r = api.call("POST", "/v1/characters/simulate", studio, json=body)
    assert r.status_code == 429 and r.mimetype == "application/problem+json"
    assert int(r.headers["Retry-After"]) >= 1 and "simulations a minute" in r.get_json()["detail"]
    assert api.call("POST", "/v1/characters/simulate", rival, json=body).status_code == 409  # its own bucket


def test_usage_counts_others_only_when_they_are_five(make_api):
    api = make_api(worker="none", daily_quota=100)
    studio = api.account("studio", "rights_holder")
    creators = [api.account(f"creator{i}") for i in range(6)]
    ch = api.call("POST", "/v1/characters", studio, json={"name": "Robo Pup", "rule": "licensees_only",
                                                          "licensees": ["creator0"]}).get_json()
    # a rights holder who registers a guessed word to watch one person's requests
    anna = api.call("POST", "/v1/characters", studio, json={"name": "Anna", "rule": "allow"}).get_json()
    nobody = api.call("POST", "/v1/characters", studio, json={"name": "Zebra Crossing", "rule": "allow"}).get_json()
    _crowd(api, release=False, tokens=creators)
    target = api.account("target")
    api.generate(target, "a surprise party for anna on friday")

    def usage(c):
        r = api.call("GET", f"/v1/characters/{c['id']}/usage", studio)
        assert r.status_code == 200, r.get_json()
        return r.get_json()

    assert usage(ch)["requests"] == 0  # today's requests count from tomorrow: polling cannot time one
    _backdate(api)
    out = usage(ch)
    assert {k: out[k] for k in ("requests", "allowed_by_rule", "denied_by_rule", "released", "blocked")} == \
        {"requests": 12, "allowed_by_rule": 2, "denied_by_rule": 10, "released": 0, "blocked": 10}
    assert out["licensees"] == [{"account": "creator0", "requests": 2, "released": 0}]
    assert out["other_requesters"] == 5 and out["withheld"] == [] and out["k"] == 5
    assert out["first_request_day"] == out["last_request_day"] < out["before"][:10]  # days, never times
    guessed, unused = usage(anna), usage(nobody)
    assert guessed["other_requesters"] is None and guessed["requests"] == 0 and guessed["last_request_day"] is None
    assert "fewer than 5 requesters" in guessed["withheld"][0]
    assert {k: v for k, v in guessed.items() if k not in ("character", "name")} == \
        {k: v for k, v in unused.items() if k not in ("character", "name")}  # one person looks like nobody


def test_character_tools_refuse_others_and_bad_input(api):
    studio, rival = api.account("studio", "rights_holder"), api.account("rival", "rights_holder")
    bob = api.account("bob")
    ch = api.call("POST", "/v1/characters", studio, json={"name": "Captain Comet", "rule": "deny"}).get_json()
    # another rights holder's character answers as an unknown one would; a creator is refused by role
    theirs = _problem(api.call("GET", f"/v1/characters/{ch['id']}/usage", rival), 404)
    unknown = _problem(api.call("GET", "/v1/characters/ch_nope/usage", studio), 404)
    assert theirs["detail"].replace(ch["id"], "ch_nope") == unknown["detail"]
    _problem(api.call("GET", f"/v1/characters/{ch['id']}/usage", bob), 403)
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


def test_a_credit_the_label_cannot_draw_is_refused_when_registered_and_never_costs_a_release(api):
    """The label draws accented Latin, Greek and Cyrillic credits (the released video's manifest carries them); a
    credit with characters its font lacks is refused at registration, edit and simulation (422, naming them,
    nothing stored); a stored row with one (older than the check) blocks a request at the precheck with that
    reason, before anything is generated, never an internal error at sealing."""
    from governance.characters.models import Character
    from governance.db import unit_of_work

    studio, bob = api.account("studio", "rights_holder"), api.account("bob")
    r = api.call("POST", "/v1/characters", studio, json={"name": "Pingu Penguin", "rule": "attribution",
                                                         "attribution": "Estudio Ñandú · Κινούμενα · Студия"})
    assert r.status_code == 201, r.get_json()
    done = api.wait(bob, api.generate(bob, "Pingu Penguin waddles on the ice")["id"])
    assert done["state"] == "released", done["reasons"]
    report = api.verify(api.download(bob, done["id"])).get_json()
    assert report["c2pa"]["governance"]["attributions"][0]["credit"] == "Estudio Ñandú · Κινούμενα · Студия"

    before = api.call("GET", "/v1/characters", studio).get_json()["characters"]
    for method, path, body in [
        ("POST", "/v1/characters", {"name": "Robo Pup", "rule": "attribution", "attribution": "Studio 人工 ✿"}),
        ("POST", "/v1/characters/simulate", {"name": "Robo Pup", "rule": "attribution", "attribution": "Studio 人工"}),
    ]:
        problem = _problem(api.call(method, path, studio, json=body), 422)
        assert "cannot draw" in problem["detail"] and "人工" in problem["detail"], problem
        assert set(problem["undrawable"]) >= {"人", "工"}, problem
    assert api.call("GET", "/v1/characters", studio).get_json()["characters"] == before  # nothing stored

    with unit_of_work(api.rt.engine) as s:  # a row stored before the check existed
        s.get(Character, r.get_json()["id"]).attribution = "Studio 人工"
    r2 = api.call("POST", "/v1/generations", bob, json={"prompt": "Pingu Penguin on the ice again"})
    assert r2.status_code == 202, r2.get_json()
    blocked = r2.get_json()
    assert blocked["state"] == "blocked", blocked  # at the precheck: nothing generated
    assert any("cannot draw '人工'" in reason for reason in blocked["reasons"]), blocked["reasons"]
    assert not any("internal error" in reason for reason in blocked["reasons"]), blocked["reasons"]


def _png(rgb) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return buf.getvalue()


def test_a_character_shown_but_not_named_is_caught_by_its_reference_images(make_api, layout_encoder):
    """The visual check with an operator's image encoder (here a hand-set stand-in): the rights holder's
    reference still is a frame of the very scene the requester asks for, under another name."""
    from generator.backends import get_generator
    from generator.base import GenerationSpec

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
    from sqlmodel import select

    from governance.generations.models import GenerationCharacter

    with api.rt.session() as s:  # both sightings count towards its usage (read, k-anonymous, from tomorrow)
        rows = s.exec(select(GenerationCharacter).where(GenerationCharacter.character_id == ch["id"])).all()
    assert sorted(r.allowed for r in rows) == [False, True]
    _backdate(api)
    usage = api.call("GET", f"/v1/characters/{ch['id']}/usage", studio).get_json()
    assert usage["licensees"] == [{"account": "carol", "requests": 1, "released": 1}]
    assert usage["other_requesters"] is None and usage["requests"] == 1  # bob alone is not counted


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
    _problem(visual.multipart(path, rival, [("a.jpg", photo)]), 404)
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

    # usage counts requests made before today by at least 5 requesters (k-anonymity): four more try, a day ago
    for name in ("carl", "dina", "eve", "finn"):
        assert api.generate(api.account(name), "C\u0430ptain C\u043emet at dawn")["state"] == "blocked"
    _backdate(api)
    usage = api.call("GET", f"/v1/characters/{ch['id']}/usage", studio).get_json()
    assert (usage["requests"], usage["denied_by_rule"], usage["blocked"]) == (12, 12, 12)
    assert usage["disguised"] == {"requests": 12, "by_kind": {
        "compatibility": 1, "inflection": 1, "invisible": 1, "leetspeak": 1, "lookalike": 6, "spacing": 1, "typo": 1}}

    # a character registered later is screened at once; a deleted one no longer is
    pup = api.call("POST", "/v1/characters", studio, json={"name": "Robo Pup", "rule": "deny"}).get_json()
    assert api.generate(bob, "R0b0 Pup at the park")["state"] == "blocked"
    assert api.call("DELETE", f"/v1/characters/{pup['id']}", studio).status_code == 204
    assert api.wait(bob, api.generate(bob, "R0b0 Pup at the park")["id"])["state"] == "released"


def test_a_credit_changed_after_the_precheck_to_one_the_label_cannot_draw_blocks_at_sealing_with_its_reason(make_api):
    """A request passes the precheck; before the worker runs it, the stored credit becomes one the label cannot draw
    (a row written past the check, or a label font changed): the generation is blocked at the seal stage, before
    anything is sealed, saying why, never "internal error while sealing"."""
    from governance.characters.models import Character
    from governance.db import unit_of_work

    api = make_api(worker="none", duration_s=1.0, daily_quota=10)
    studio, bob = api.account("studio", "rights_holder"), api.account("bob")
    r = api.call("POST", "/v1/characters", studio, json={"name": "Pingu Penguin", "rule": "attribution",
                                                         "attribution": "Estudio Ñandú"})
    assert r.status_code == 201, r.get_json()
    gen = api.call("POST", "/v1/generations", bob, json={"prompt": "Pingu Penguin waddles", "seed": 3}).get_json()
    assert gen["state"] == "prechecked", gen
    with unit_of_work(api.rt.engine) as s:
        s.get(Character, r.get_json()["id"]).attribution = "Estudio 南島"
    api.rt.pipeline.process(gen["id"])
    done = api.call("GET", f"/v1/generations/{gen['id']}", bob).get_json()
    assert done["state"] == "blocked", done
    assert any("cannot draw '南島'" in reason for reason in done["reasons"]), done["reasons"]
    assert not any("internal error" in reason for reason in done["reasons"]), done["reasons"]
    assert not (api.rt.settings.videos_dir / f"{gen['id']}.mp4").exists()
