"""What each reader of a generation may learn (issue #9, oracles): regulators and admins see every id; the
requester the likenesses they named; a likeness owner in it only their own. Found in an adversarial review:
owners saw other people's likeness and grant ids, the requester saw the ids of faces found in the output,
naming an unknown likeness answered differently from naming someone else's, regulators got a 500 for an
unknown generation id, and a lone surrogate in JSON made a 500."""

from __future__ import annotations

import json
import secrets

import pytest

from governance.db import unit_of_work
from governance.generations.models import GenerationState
from governance.likenesses.models import Likeness
from tests import factories


def _ids(api, *names):
    return [api.call("GET", "/v1/me", t).get_json()["id"] for t in names]


def _likeness(api, owner_id: str) -> str:
    with unit_of_work(api.rt.engine) as s:  # live, a verified claim: its owner sees the uses of the face
        return factories.likeness(s, owner_id).id


def test_each_reader_sees_only_the_ids_they_may_know(api):
    bob, alice, carol = api.account("bob"), api.account("alice"), api.account("carol")
    reg = api.account("ruth", "regulator")
    bob_id, alice_id, carol_id = _ids(api, bob, alice, carol)
    alice_lk, carol_lk = _likeness(api, alice_id), _likeness(api, carol_id)
    grant = f"gr_{secrets.token_hex(8)}"
    with unit_of_work(api.rt.engine) as s:
        gen = factories.generation(
            s, bob_id, named=[alice_lk], found=[alice_lk, carol_lk], state=GenerationState.BLOCKED, prompt="a walk",
            decisions=[{"decision": "allow", "reason": f"grant {grant} on likeness {alice_lk}",
                        "rule": "likeness:approved"}],
            reasons=[f"the face of likeness {carol_lk} appears in the output without consent"],
            faces_found=[{"likeness": alice_lk, "distance": 0.3, "first_frame": 0, "last_frame": 9},
                         {"likeness": carol_lk, "distance": 0.4, "first_frame": 5, "last_frame": 9}])
    path = f"/v1/generations/{gen.id}"

    as_bob = json.dumps(api.call("GET", path, bob).get_json())  # the requester named alice's likeness only
    assert alice_lk in as_bob and carol_lk not in as_bob and "another enrolled person" in as_bob

    as_carol = api.call("GET", path, carol).get_json()  # an owner: her own likeness, nobody else's, no grants
    text = json.dumps(as_carol)
    assert carol_lk in text and alice_lk not in text and grant not in text
    assert [f["likeness"] for f in as_carol["faces_found"]] == [None, carol_lk]
    for listed in api.call("GET", f"/v1/likenesses/{carol_lk}/generations", carol).get_json()["generations"]:
        assert alice_lk not in json.dumps(listed) and grant not in json.dumps(listed)

    as_ruth = json.dumps(api.call("GET", path, reg).get_json())  # oversight sees everything
    assert alice_lk in as_ruth and carol_lk in as_ruth and grant in as_ruth


def test_naming_an_unknown_likeness_answers_like_naming_someone_elses(api):
    alice, bob = api.account("alice"), api.account("bob")
    [alice_id] = _ids(api, alice)
    lk = _likeness(api, alice_id)
    with unit_of_work(api.rt.engine) as s:
        s.get(Likeness, lk).mode = "only_me"
    unknown = f"lk_{secrets.token_hex(8)}"
    answers = []
    for lid in (lk, unknown):
        body = api.generate(bob, "a walk on the beach", [lid])
        assert body["state"] == "blocked"
        answers.append([r.replace(lid, "ID") for r in body["reasons"]])
    assert answers[0] == answers[1] and "only_me" not in json.dumps(answers)


@pytest.mark.parametrize("role", ["regulator", "admin"])
def test_oversight_asking_for_an_unknown_generation_gets_the_one_404(api, role):
    token = api.account("olga", role)
    missing = f"gen_{secrets.token_hex(8)}"
    for method, path in (("GET", f"/v1/generations/{missing}"), ("GET", f"/v1/generations/{missing}/video"),
                         ("GET", f"/v1/generations/{missing}/consent-record"),
                         ("DELETE", f"/v1/generations/{missing}?reason=court+order")):
        r = api.call(method, path, token)
        if method == "DELETE" and role == "regulator":
            assert r.status_code == 403  # regulators never take down; refused before any lookup
            continue
        assert r.status_code == 404 and r.get_json()["detail"] == f"no generation {missing!r}", (path, r.get_json())


@pytest.mark.parametrize("body", [
    '{"prompt": "a walk \\ud800 on the beach"}',
    '{"prompt": "a walk", "likenesses": ["lk_\\udfff"]}',
    '{"prompt": "a walk\\u0000 on the beach"}',
    '{"prompt": "a walk", "\\ud800": 1}',
])
def test_strings_no_database_can_hold_are_refused(api, body):
    bob = api.account("bob")
    r = api.call("POST", "/v1/generations", bob, data=body, content_type="application/json")
    assert r.status_code in (400, 422) and r.mimetype == "application/problem+json", r.get_json()
    rh = api.account("studio", "rights_holder")
    r = api.call("POST", "/v1/characters", rh, data='{"name": "Robo \\ud800 Pup", "rule": "deny"}',
                 content_type="application/json")
    assert r.status_code == 422, r.get_json()


def test_an_admin_cannot_act_as_an_account_through_its_token(api):
    admin, carol = api.account("root", "admin"), api.account("carol")
    r = api.call("POST", "/v1/accounts/carol/token", admin)
    assert r.status_code == 200 and r.get_json()["token"] is None
    assert api.call("GET", "/v1/me", carol).status_code == 401


def test_a_taken_down_video_verifies_as_taken_down(api):
    """Found in review: the report's summary still read "released ... each consented" after a takedown."""
    bob = api.account("bob")
    done = api.wait(bob, api.generate(bob, "snow in the forest")["id"])
    assert done["state"] == "released", done["reasons"]
    video = api.download(bob, done["id"])
    assert "TAKEN DOWN" not in api.verify(video).get_json()["summary"]
    assert api.call("DELETE", f"/v1/generations/{done['id']}", bob).status_code == 204
    report = api.verify(video).get_json()
    assert report["record"]["taken_down"] is True and "TAKEN DOWN" in report["summary"], report["summary"]
