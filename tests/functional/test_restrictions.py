"""Restrictions on how a face may be used, over HTTP (issue 16): the owner restricts categories and phrases; a
prompt that breaks one is blocked naming it; a prompt in the uncertain band is held before anything is generated
and goes on only with the owner's approval; bad input changes nothing."""

from __future__ import annotations

from sqlmodel import select

from governance.db import unit_of_work
from governance.models import AuditEvent
from governance.restrictions.models import LikenessRestriction, RestrictionApproval


def _setup(api, faces_dir):
    alice, bob = api.account("alice"), api.account("bob")
    lk = api.enroll_as_live(alice, faces_dir / "obama.jpg")
    r = api.call("PATCH", f"/v1/likenesses/{lk['id']}", alice, json={"mode": "everyone"})
    assert r.status_code == 200, r.get_json()
    r = api.call("PUT", f"/v1/likenesses/{lk['id']}/restrictions", alice,
                 json={"categories": ["violence", "political"], "phrases": ["I love crypto"],
                       "note": "no ads, please"})
    assert r.status_code == 200, r.get_json()
    assert r.get_json() == {"likeness": lk["id"], "categories": ["political", "violence"],
                            "phrases": ["I love crypto"], "note": "no ads, please", "draft_approval": False}
    return alice, bob, lk


def test_a_restricted_category_and_a_forbidden_phrase_block_naming_the_restriction(api, faces_dir):
    alice, bob, lk = _setup(api, faces_dir)
    gen = api.generate(bob, "he st4bs the guard in a dark alley", [lk["id"]])
    assert gen["state"] == "blocked"
    [reason] = gen["reasons"]
    assert lk["id"] in reason and "does not allow violence" in reason and "'st4bs the guard'" in reason
    assert "(the owner's note: 'no ads, please')" in reason
    body = api.call("GET", f"/v1/generations/{gen['id']}", bob).get_json()
    [d] = [d for d in body["decisions"] if d["decision"] == "deny"]
    assert d["rule"] == "restriction:violence" and d["disguises"] == ["leetspeak"]

    gen = api.generate(bob, "she smiles and says 'I l0ve crypt0' to the camera", [lk["id"]])
    assert gen["state"] == "blocked"
    assert "must not be shown saying ('I love crypto')" in gen["reasons"][0]
    # the owner is told of each blocked use; nothing was generated
    blocked = [n for n in api.notifications(alice) if "blocked" in n["message"]]
    assert len(blocked) == 2
    assert api.leftovers() == []


def test_an_uncertain_prompt_is_held_and_released_on_the_owners_approval(api, faces_dir):
    alice, bob, lk = _setup(api, faces_dir)
    gen = api.generate(bob, "a cowboy holds a gun at dusk", [lk["id"]])
    assert gen["state"] == "held"
    assert any("may be violence" in r and "held for its owner's approval" in r for r in gen["reasons"])
    r = api.call("GET", f"/v1/generations/{gen['id']}/video", bob)
    assert r.status_code == 409
    r.close()
    # alice is told, with the way to answer, and sees the question; bob sees none and cannot answer
    [n] = [n for n in api.notifications(alice) if n["generation"] == gen["id"]]
    assert f"POST /v1/generations/{gen['id']}/approval" in n["message"] and "'gun'" in n["message"]
    asked = api.call("GET", f"/v1/generations/{gen['id']}/approval", alice).get_json()
    [question] = asked["approvals"]
    assert question["likeness"] == lk["id"] and question["decision"] == "pending"
    assert question["rules"] == ["restriction:violence:uncertain"]
    assert api.call("GET", f"/v1/generations/{gen['id']}/approval", bob).get_json()["approvals"] == []
    r = api.call("POST", f"/v1/generations/{gen['id']}/approval", bob, json={"decision": "approve"})
    assert r.status_code == 409 and r.mimetype == "application/problem+json"
    r = api.call("POST", f"/v1/generations/{gen['id']}/approval", alice, json={"decision": "maybe"})
    assert r.status_code == 422
    assert api.call("GET", f"/v1/generations/{gen['id']}", bob).get_json()["state"] == "held"

    r = api.call("POST", f"/v1/generations/{gen['id']}/approval", alice, json={"decision": "approve"})
    assert r.status_code == 200 and r.get_json()["approvals"][0]["decision"] == "approved"
    done = api.wait(bob, gen["id"])
    assert done["state"] == "released", done["reasons"]
    assert api.download(bob, gen["id"])[:12]
    # answered once: a second answer is refused
    r = api.call("POST", f"/v1/generations/{gen['id']}/approval", alice, json={"decision": "deny"})
    assert r.status_code == 409
    with unit_of_work(api.rt.engine) as s:
        tags = [e.tag for e in s.exec(select(AuditEvent).where(AuditEvent.subject == gen["id"])).all()]
    assert "generation:hold" in tags and "generation:approval" in tags and "generation:release" in tags
    assert any(n["kind"] == "generation:approval:approved" for n in api.notifications(bob))


def test_a_denied_prompt_is_blocked_and_the_owners_own_use_is_not_screened(api, faces_dir):
    alice, bob, lk = _setup(api, faces_dir)
    gen = api.generate(bob, "a senator waves from the podium, then a rally", [lk["id"]])
    assert gen["state"] == "blocked"  # "senator": political, strong
    gen = api.generate(bob, "she joins a protest downtown", [lk["id"]])
    assert gen["state"] == "held"
    r = api.call("POST", f"/v1/generations/{gen['id']}/approval", alice, json={"decision": "deny"})
    assert r.status_code == 200
    body = api.call("GET", f"/v1/generations/{gen['id']}", bob).get_json()
    assert body["state"] == "blocked" and "did not approve this use" in body["reasons"][-1]
    assert any(n["kind"] == "generation:approval:denied" for n in api.notifications(bob))
    # the owner's own use of her face is hers: not screened against her own restrictions
    own = api.generate(alice, "a cowboy holds a gun at dusk", [lk["id"]])
    assert own["state"] == "prechecked"
    assert api.wait(alice, own["id"])["state"] == "released"


def test_restrictions_of_a_likeness_one_may_not_use_are_never_screened(api, faces_dir):
    alice, bob, lk = _setup(api, faces_dir)
    r = api.call("PATCH", f"/v1/likenesses/{lk['id']}", alice, json={"mode": "only_me"})
    assert r.status_code == 200
    gen = api.generate(bob, "a cowboy holds a gun at dusk", [lk["id"]])
    assert gen["state"] == "blocked"
    assert "no consent is on record" in gen["reasons"][0] and "violence" not in str(gen)


def test_bad_restrictions_are_refused_and_change_nothing(api, faces_dir):
    alice, bob, lk = _setup(api, faces_dir)
    path = f"/v1/likenesses/{lk['id']}/restrictions"
    for body, words in [({"categories": ["nudity"]}, "categories are"),
                        ({"categories": "violence"}, "list of category names"),
                        ({"phrases": "vote for"}, "list of words"),
                        ({"phrases": [""]}, "letter or digit"),
                        ({"phrases": ["x" * 81]}, "at most 80"),
                        ({"note": 5}, "note must be a string"),
                        ({"colour": "red"}, "unknown fields")]:
        r = api.call("PUT", path, alice, json=body)
        assert r.status_code == 422 and r.mimetype == "application/problem+json", (body, r.get_json())
        assert words in r.get_json()["detail"], (body, r.get_json())
    # someone else's likeness answers like an unknown one, and nothing moved
    assert api.call("PUT", path, bob, json={"categories": []}).status_code == 404
    assert api.call("GET", path, bob).status_code == 404
    assert api.call("GET", "/v1/likenesses/lk_0000000000000000/restrictions", alice).status_code == 404
    assert api.call("GET", path, alice).get_json()["categories"] == ["political", "violence"]
    with unit_of_work(api.rt.engine) as s:
        sets = s.exec(select(AuditEvent).where(AuditEvent.tag == "likeness:restrictions:set")).all()
    assert len(sets) == 1  # only the one that was accepted
    # clearing them leaves no row; deleting the likeness leaves none either
    assert api.call("PUT", path, alice, json={}).get_json()["categories"] == []
    with unit_of_work(api.rt.engine) as s:
        assert s.get(LikenessRestriction, lk["id"]) is None
    api.call("PUT", path, alice, json={"phrases": ["buy now"]})
    assert api.call("DELETE", f"/v1/likenesses/{lk['id']}", alice).status_code == 204
    with unit_of_work(api.rt.engine) as s:
        assert s.get(LikenessRestriction, lk["id"]) is None
        assert s.exec(select(RestrictionApproval)).all() == []


# -- draft approval --------------------------------------------------------------------------------------------
def _drafts_on(api, faces_dir):
    alice, bob = api.account("alice"), api.account("bob")
    lk = api.enroll_as_live(alice, faces_dir / "obama.jpg")
    assert api.call("PATCH", f"/v1/likenesses/{lk['id']}", alice, json={"mode": "everyone"}).status_code == 200
    r = api.call("PUT", f"/v1/likenesses/{lk['id']}/restrictions", alice, json={"draft_approval": True})
    assert r.status_code == 200 and r.get_json()["draft_approval"] is True
    return alice, bob, lk


def test_a_held_draft_is_released_only_after_the_owners_approval(api, faces_dir):
    from governance.restrictions.drafts import preview_path

    alice, bob, lk = _drafts_on(api, faces_dir)
    gen = api.generate(bob, "a walk on the beach", [lk["id"]])
    held = api.wait(bob, gen["id"])
    assert held["state"] == "held" and "approve the draft" in held["reasons"][-1]
    r = api.call("GET", f"/v1/generations/{gen['id']}/video", bob)
    assert r.status_code == 409  # not released while the draft waits
    r.close()
    with unit_of_work(api.rt.engine) as s:
        assert s.exec(select(AuditEvent).where(AuditEvent.tag == "generation:release",
                                               AuditEvent.subject == gen["id"])).first() is None
    # alice is told, and previews the sealed draft: it is marked, labelled and signed like a release
    assert any(n["kind"] == "likeness:use:draft" and n["generation"] == gen["id"] for n in api.notifications(alice))
    r = api.call("GET", f"/v1/generations/{gen['id']}/draft", alice)
    assert r.status_code == 200 and r.mimetype == "video/mp4"
    draft = bytes(r.data)
    r.close()
    report = api.verify(draft).get_json()
    assert report["c2pa"]["state"] in ("Trusted", "Valid") and report["watermark"]["found"] is True
    assert report["record"]["state"] == "held" and "log_entry" not in report["record"]  # not in the log
    # nobody else sees or answers it
    r = api.call("GET", f"/v1/generations/{gen['id']}/draft", bob)
    assert r.status_code == 409
    r.close()
    assert api.call("POST", f"/v1/generations/{gen['id']}/draft", bob, json={"decision": "approve"}).status_code == 409
    assert api.call("POST", f"/v1/generations/{gen['id']}/draft", alice, json={"decision": "ok"}).status_code == 422

    r = api.call("POST", f"/v1/generations/{gen['id']}/draft", alice, json={"decision": "approve"})
    assert r.status_code == 200 and r.get_json()["drafts"][0]["decision"] == "approved"
    done = api.wait(bob, gen["id"])
    assert done["state"] == "released", done["reasons"]
    assert api.download(bob, gen["id"])[:12]
    assert not preview_path(api.rt.settings.videos_dir, gen["id"]).exists()
    # the owner's own use is never held for herself
    own = api.wait(alice, api.generate(alice, "a walk on the beach", [lk["id"]])["id"])
    assert own["state"] == "released"


def test_a_rejected_or_expired_draft_is_blocked_and_its_preview_deleted(api, faces_dir):
    from datetime import timedelta

    from governance.columns import utcnow
    from governance.restrictions.drafts import preview_path
    from governance.restrictions.models import DraftApproval

    alice, bob, lk = _drafts_on(api, faces_dir)
    gen = api.generate(bob, "a walk on the beach", [lk["id"]])
    assert api.wait(bob, gen["id"])["state"] == "held"
    r = api.call("POST", f"/v1/generations/{gen['id']}/draft", alice, json={"decision": "reject"})
    assert r.status_code == 200
    body = api.call("GET", f"/v1/generations/{gen['id']}", bob).get_json()
    assert body["state"] == "blocked" and "rejected the draft" in body["reasons"][-1]
    assert not preview_path(api.rt.settings.videos_dir, gen["id"]).exists()

    gen = api.generate(bob, "a walk in the park", [lk["id"]])
    assert api.wait(bob, gen["id"])["state"] == "held"
    with unit_of_work(api.rt.engine) as s:
        s.get(DraftApproval, (gen["id"], lk["id"])).expires_at = utcnow() - timedelta(seconds=1)
    r = api.call("POST", f"/v1/generations/{gen['id']}/draft", alice, json={"decision": "approve"})
    assert r.status_code == 410 and r.mimetype == "application/problem+json"
    body = api.call("GET", f"/v1/generations/{gen['id']}", bob).get_json()
    assert body["state"] == "blocked" and "did not approve the draft before" in body["reasons"][-1]
    assert not preview_path(api.rt.settings.videos_dir, gen["id"]).exists()
    assert api.call("PUT", f"/v1/likenesses/{lk['id']}/restrictions", alice,
                    json={"draft_approval": "yes"}).status_code == 422


def test_an_unanswered_draft_is_blocked_by_the_workers_sweep_when_its_approval_runs_out(api, faces_dir):
    """Nobody reads or answers the approval: the workers' periodic sweep (Pipeline.expire_drafts) blocks it."""
    from datetime import timedelta

    from governance.columns import utcnow
    from governance.restrictions.drafts import preview_path
    from governance.restrictions.models import DraftApproval

    alice, bob, lk = _drafts_on(api, faces_dir)
    late = api.generate(bob, "a walk on the beach", [lk["id"]])
    fresh = api.generate(bob, "a walk in the park", [lk["id"]])
    for gen in (late, fresh):
        assert api.wait(bob, gen["id"])["state"] == "held"
    with unit_of_work(api.rt.engine) as s:
        s.get(DraftApproval, (late["id"], lk["id"])).expires_at = utcnow() - timedelta(seconds=1)

    assert api.rt.pipeline.expire_drafts() == [late["id"]]
    body = api.call("GET", f"/v1/generations/{late['id']}", bob).get_json()
    assert body["state"] == "blocked" and "did not approve the draft before" in body["reasons"][-1]
    assert not preview_path(api.rt.settings.videos_dir, late["id"]).exists()
    assert api.call("GET", f"/v1/generations/{fresh['id']}", bob).get_json()["state"] == "held"
    assert preview_path(api.rt.settings.videos_dir, fresh["id"]).exists()
    assert api.rt.pipeline.expire_drafts() == []  # once
    assert any("not approved in time" in n["message"] for n in api.notifications(bob))
