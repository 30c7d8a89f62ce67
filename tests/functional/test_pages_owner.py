"""The pages a person protecting their face acts on, through Flask's test client: restrictions on My face, the
held generations awaiting their answer (a prompt to approve, a draft to watch, a face to recognize), and a
guardian's wards' requests. Each page shows what the API shows this account and answers as the API does: the
service's refusal on the page with nothing written, 404 for what is not yours, 409 once answered, and a form
without its CSRF token refused."""

from __future__ import annotations

import re
from typing import Any

from sqlmodel import select

from governance.db import unit_of_work
from governance.models import AuditEvent

from .test_pages import csrf, sign_in

VIOLENCE = {"categories": ["violence", "political"], "phrases": ["I love crypto"], "note": "no ads, please"}


def _browser(api, token: str) -> tuple[Any, str]:
    """A fresh browser signed in with ``token``, and its CSRF token."""
    client = api.app.test_client()
    assert sign_in(client, token).status_code == 303
    return client, csrf(client, "/me/face")


def _restricted(api, faces_dir, owner: str = "alice", photo: str = "obama.jpg") -> tuple[str, dict[str, Any]]:
    token = api.account(owner)
    lk = api.enroll_as_live(token, faces_dir / photo)
    assert api.call("PATCH", f"/v1/likenesses/{lk['id']}", token, json={"mode": "everyone"}).status_code == 200
    assert api.call("PUT", f"/v1/likenesses/{lk['id']}/restrictions", token, json=VIOLENCE).status_code == 200
    return token, lk


def _audits(api, tag: str) -> int:
    with unit_of_work(api.rt.engine) as s:
        return len(s.exec(select(AuditEvent).where(AuditEvent.tag == tag)).all())


def _waiting(html: str) -> int:
    m = re.search(r'data-count="(\d+)"', html)
    return int(m.group(1)) if m else 0


# -- restrictions ----------------------------------------------------------------------------------------------
def test_an_owner_sets_restrictions_on_my_face_as_the_api_reads_them(api, faces_dir) -> None:
    alice = api.account("alice")
    lk = api.enroll_as_live(alice, faces_dir / "obama.jpg")
    client, tok = _browser(api, alice)
    r = client.post(f"/me/face/{lk['id']}/restrictions",
                    data={"categories": ["violence", "alcohol_drugs"], "phrases": "I love crypto\n\n  buy now  \n",
                          "note": " no ads, please ", "draft_approval": "on", "csrf_token": tok})
    assert r.status_code == 303 and "done=restricted" in r.headers["Location"]
    assert api.call("GET", f"/v1/likenesses/{lk['id']}/restrictions", alice).get_json() == {
        "likeness": lk["id"], "categories": ["alcohol_drugs", "violence"], "phrases": ["I love crypto", "buy now"],
        "note": "no ads, please", "draft_approval": True}
    html = client.get(r.headers["Location"]).get_data(as_text=True)
    assert "Done: restrictions saved." in html
    assert re.search(rf'id="cat-{lk["id"]}-violence" name="categories" value="violence" checked', html)
    assert not re.search(rf'id="cat-{lk["id"]}-political" name="categories" value="political" checked', html)
    assert "I love crypto\nbuy now</textarea>" in html and 'value="no ads, please"' in html
    assert re.search(rf'id="draft-{lk["id"]}" name="draft_approval" checked', html)
    # an empty form clears them all, as the API's empty body does
    r = client.post(f"/me/face/{lk['id']}/restrictions", data={"csrf_token": tok})
    assert r.status_code == 303
    assert api.call("GET", f"/v1/likenesses/{lk['id']}/restrictions", alice).get_json() == {
        "likeness": lk["id"], "categories": [], "phrases": [], "note": "", "draft_approval": False}
    assert _audits(api, "likeness:restrictions:set") == 2


def test_bad_restrictions_show_the_services_error_and_change_nothing(api, faces_dir) -> None:
    alice, lk = _restricted(api, faces_dir)
    before = api.call("GET", f"/v1/likenesses/{lk['id']}/restrictions", alice).get_json()
    client, tok = _browser(api, alice)
    path = f"/me/face/{lk['id']}/restrictions"
    for form, words in [({"categories": ["nudity"]}, "categories are"),
                        ({"phrases": "x" * 81}, "at most 80"),
                        ({"phrases": "!!!"}, "letter or digit")]:
        r = client.post(path, data={**form, "csrf_token": tok})
        html = r.get_data(as_text=True)
        assert r.status_code == 422 and 'role="alert"' in html and words in html, (form, html[-1500:])
    # no token: refused before anything runs
    r = client.post(path, data={"categories": []})
    assert r.status_code == 400 and "security token" in r.get_data(as_text=True)
    # someone else's likeness answers like an unknown one
    bob, _ = _browser(api, api.account("bob"))
    r = bob.post(path, data={"csrf_token": csrf(bob, "/me/face")})
    assert r.status_code == 404 and 'role="alert"' in r.get_data(as_text=True)
    assert client.post("/me/face/lk_0000000000000000/restrictions", data={"csrf_token": tok}).status_code == 404
    assert api.call("GET", f"/v1/likenesses/{lk['id']}/restrictions", alice).get_json() == before
    assert _audits(api, "likeness:restrictions:set") == 1  # only the API's, in the setup


# -- a prompt held for the owner's approval ---------------------------------------------------------------------
def test_a_held_prompt_awaits_the_owner_who_approves_it_from_the_page(api, faces_dir) -> None:
    alice, lk = _restricted(api, faces_dir)
    bob = api.account("bob")
    gen = api.generate(bob, "a cowboy holds a gun at dusk", [lk["id"]])
    assert gen["state"] == "held"
    client, tok = _browser(api, alice)
    face = client.get("/me/face").get_data(as_text=True)
    assert _waiting(face) == 1 and 'id="nav-awaiting"' in face  # the nav counts it, and so do the notifications
    assert re.search(r'id="awaiting-note"><a href="/me/requests">1 question about the use of a face awaits', face)
    html = client.get("/me/requests").get_data(as_text=True)
    assert f'data-approval="{gen["id"]}"' in html and "a cowboy holds a gun at dusk" in html
    assert "may be violence" in html and lk["id"] in html
    assert 'id="no-drafts"' in html and 'id="no-reviews"' in html
    # the requester has no question on his page, and answering is refused as the API refuses it (409)
    bobs, bob_tok = _browser(api, bob)
    assert f'data-approval="{gen["id"]}"' not in bobs.get("/me/requests").get_data(as_text=True)
    assert _waiting(bobs.get("/me/requests").get_data(as_text=True)) == 0
    r = bobs.post(f"/me/requests/{gen['id']}/approval", data={"decision": "approve", "csrf_token": bob_tok})
    assert r.status_code == 409 and 'role="alert"' in r.get_data(as_text=True)
    # a stranger, and an unknown generation: 404, as the API
    carols, carol_tok = _browser(api, api.account("carol"))
    assert carols.post(f"/me/requests/{gen['id']}/approval",
                       data={"decision": "approve", "csrf_token": carol_tok}).status_code == 404
    assert client.post("/me/requests/gen_0000000000000000/approval",
                       data={"decision": "approve", "csrf_token": tok}).status_code == 404
    # a decision that is neither, or no token: refused, still held
    r = client.post(f"/me/requests/{gen['id']}/approval", data={"decision": "maybe", "csrf_token": tok})
    assert r.status_code == 422 and "decision must be one of approve, deny" in r.get_data(as_text=True)
    assert client.post(f"/me/requests/{gen['id']}/approval", data={"decision": "approve"}).status_code == 400
    assert api.call("GET", f"/v1/generations/{gen['id']}", bob).get_json()["state"] == "held"
    assert _audits(api, "generation:approval") == 0

    r = client.post(f"/me/requests/{gen['id']}/approval", data={"decision": "approve", "csrf_token": tok})
    assert r.status_code == 303
    html = client.get(r.headers["Location"]).get_data(as_text=True)
    assert "Done: you approved the use of your face." in html and f'data-approval="{gen["id"]}"' not in html
    assert _waiting(html) == 0 and 'id="awaiting-note"' not in client.get("/me/face").get_data(as_text=True)
    assert api.wait(bob, gen["id"])["state"] == "released"
    # answered once: a second answer is refused
    r = client.post(f"/me/requests/{gen['id']}/approval", data={"decision": "deny", "csrf_token": tok})
    assert r.status_code == 409
    assert _audits(api, "generation:approval") == 1


def test_a_denied_prompt_is_blocked_and_the_page_names_only_the_owners_likeness(api, faces_dir) -> None:
    """A prompt held for two owners: each sees their own likeness and the prompt, never the other's likeness."""
    alice, lk = _restricted(api, faces_dir)
    dana, other = _restricted(api, faces_dir, "dana", "biden.jpg")
    bob = api.account("bob")
    gen = api.generate(bob, "a cowboy holds a gun at dusk", [lk["id"], other["id"]])
    assert gen["state"] == "held"
    client, tok = _browser(api, alice)
    html = client.get("/me/requests").get_data(as_text=True)
    assert f'data-approval="{gen["id"]}"' in html and lk["id"] in html and other["id"] not in html
    danas, _ = _browser(api, dana)
    theirs = danas.get("/me/requests").get_data(as_text=True)
    assert other["id"] in theirs and lk["id"] not in theirs
    r = client.post(f"/me/requests/{gen['id']}/approval", data={"decision": "deny", "csrf_token": tok})
    assert r.status_code == 303 and "done=denied" in r.headers["Location"]
    body = api.call("GET", f"/v1/generations/{gen['id']}", bob).get_json()
    assert body["state"] == "blocked" and "did not approve this use" in body["reasons"][-1]
    # blocked: nothing waits for dana any more, and her count says so
    theirs = danas.get("/me/requests").get_data(as_text=True)
    assert f'data-approval="{gen["id"]}"' not in theirs and _waiting(theirs) == 0


# -- a draft held for the owner ---------------------------------------------------------------------------------
def test_a_held_draft_is_watched_and_approved_from_the_page(api, faces_dir) -> None:
    alice = api.account("alice")
    lk = api.enroll_as_live(alice, faces_dir / "obama.jpg")
    assert api.call("PATCH", f"/v1/likenesses/{lk['id']}", alice, json={"mode": "everyone"}).status_code == 200
    client, tok = _browser(api, alice)
    client.post(f"/me/face/{lk['id']}/restrictions", data={"draft_approval": "on", "csrf_token": tok})
    bob = api.account("bob")
    gen = api.generate(bob, "a walk on the beach", [lk["id"]])
    assert api.wait(bob, gen["id"])["state"] == "held"
    html = client.get("/me/requests").get_data(as_text=True)
    assert f'data-draft="{gen["id"]}"' in html and "a walk on the beach" in html
    draft = client.get(f"/me/requests/{gen['id']}/draft.mp4")
    try:
        assert draft.status_code == 200 and draft.mimetype == "video/mp4"
        api_draft = api.call("GET", f"/v1/generations/{gen['id']}/draft", alice)
        assert draft.data == api_draft.data
        api_draft.close()
    finally:
        draft.close()
    bobs, bob_tok = _browser(api, bob)
    assert bobs.get(f"/me/requests/{gen['id']}/draft.mp4").status_code == 409  # the API's answer to him
    assert bobs.post(f"/me/requests/{gen['id']}/draft",
                     data={"decision": "approve", "csrf_token": bob_tok}).status_code == 409
    r = client.post(f"/me/requests/{gen['id']}/draft", data={"decision": "ok", "csrf_token": tok})
    assert r.status_code == 422 and "approve, reject" in r.get_data(as_text=True)
    r = client.post(f"/me/requests/{gen['id']}/draft", data={"decision": "approve", "csrf_token": tok})
    assert r.status_code == 303 and "done=draft-approved" in r.headers["Location"]
    assert api.wait(bob, gen["id"])["state"] == "released"
    assert client.post(f"/me/requests/{gen['id']}/draft",
                       data={"decision": "reject", "csrf_token": tok}).status_code == 409


# -- a face held for its owner's review -------------------------------------------------------------------------
def test_a_face_held_for_review_shows_its_frames_and_the_owner_answers_from_the_page(api, faces_dir) -> None:
    """Alex Lacamoire's two photos are in each other's uncertain band (tests/functional/test_held.py)."""
    alice, mallory = api.account("alice"), api.account("mallory")
    alices = api.enroll_as_live(alice, faces_dir / "alex-lacamoire.png")
    mallorys = api.enroll_as_live(mallory, faces_dir / "alex_lacamoire2.jpg")
    gen = api.generate(mallory, "a quiet ocean morning", [mallorys["id"]])
    assert api.wait(mallory, gen["id"])["state"] == "held"
    client, tok = _browser(api, alice)
    html = client.get("/me/requests").get_data(as_text=True)
    assert f'data-review="{gen["id"]}"' in html and alices["id"] in html
    assert mallorys["id"] not in html  # the requester's likeness is not the owner's to know
    frames = re.findall(r'src="data:image/jpeg;base64,([^"]+)"', html)
    [question] = api.call("GET", f"/v1/generations/{gen['id']}/review", alice).get_json()["reviews"]
    assert frames == [f["jpeg"] for f in question["frames"]] and frames
    malls, mall_tok = _browser(api, mallory)
    assert f'data-review="{gen["id"]}"' not in malls.get("/me/requests").get_data(as_text=True)
    assert malls.post(f"/me/requests/{gen['id']}/review",
                      data={"decision": "dismiss", "csrf_token": mall_tok}).status_code == 409
    r = client.post(f"/me/requests/{gen['id']}/review", data={"decision": "maybe", "csrf_token": tok})
    assert r.status_code == 422
    r = client.post(f"/me/requests/{gen['id']}/review", data={"decision": "confirm", "csrf_token": tok})
    assert r.status_code == 303 and "done=confirmed" in r.headers["Location"]
    assert api.call("GET", f"/v1/generations/{gen['id']}", mallory).get_json()["state"] == "blocked"
    assert client.post(f"/me/requests/{gen['id']}/review",
                       data={"decision": "dismiss", "csrf_token": tok}).status_code == 409


# -- a guardian's wards' requests -------------------------------------------------------------------------------
def test_a_guardian_answers_a_wards_grant_request_from_the_page(api, faces_dir) -> None:
    admin = api.account("root", "admin")
    gina = api.account("gina")
    r = api.call("POST", "/v1/accounts", admin, json={"name": "tim", "role": "creator", "guardian": "gina"})
    tim = r.get_json()["token"]
    lk = api.enroll_as_live(tim, faces_dir / "obama.jpg")
    api.account("bob")
    r = api.call("PUT", f"/v1/likenesses/{lk['id']}/grants/bob", tim)
    assert r.status_code == 202
    approval = r.get_json()["guardian_approval"]
    client, tok = _browser(api, gina)
    assert _waiting(client.get("/me/face").get_data(as_text=True)) == 1
    assert 'id="wards"' in client.get("/me/requests").get_data(as_text=True)
    html = client.get("/me/guardian").get_data(as_text=True)
    assert f'data-approval="{approval}"' in html and "tim" in html and "bob" in html
    # nobody but the guardian sees or answers it (404, as the API)
    tims, tim_tok = _browser(api, tim)
    assert f'data-approval="{approval}"' not in tims.get("/me/guardian").get_data(as_text=True)
    assert tims.post(f"/me/guardian/approvals/{approval}",
                     data={"decision": "approve", "csrf_token": tim_tok}).status_code == 404
    r = client.post(f"/me/guardian/approvals/{approval}", data={"decision": "maybe", "csrf_token": tok})
    assert r.status_code == 422 and 'role="alert"' in r.get_data(as_text=True)
    assert client.post(f"/me/guardian/approvals/{approval}", data={"decision": "approve"}).status_code == 400
    assert api.call("GET", f"/v1/likenesses/{lk['id']}", tim).get_json()["grants"] == []
    r = client.post(f"/me/guardian/approvals/{approval}", data={"decision": "approve", "csrf_token": tok})
    assert r.status_code == 303 and "done=ward-approved" in r.headers["Location"]
    html = client.get(r.headers["Location"]).get_data(as_text=True)
    assert "Done: approved: the grant is made." in html and 'id="none"' in html
    assert len(api.call("GET", f"/v1/likenesses/{lk['id']}", tim).get_json()["grants"]) == 1
    assert client.post(f"/me/guardian/approvals/{approval}",
                       data={"decision": "deny", "csrf_token": tok}).status_code == 409


def test_the_pages_awaiting_you_send_the_anonymous_to_sign_in(api) -> None:
    for path in ("/me/requests", "/me/guardian"):
        r = api.client.get(path)
        assert r.status_code == 302 and r.headers["Location"].startswith(f"/sign-in?next={path}")
    r = api.client.post("/me/requests/gen_0000000000000000/approval", data={"decision": "approve"})
    assert r.status_code == 400  # no token, no session: refused before anything runs


# -- an admin links guardians ------------------------------------------------------------------------------------
def test_an_admin_links_unlinks_and_ends_a_minority_from_the_page(api, faces_dir) -> None:
    admin, gina, tim = api.account("root", "admin"), api.account("gina"), api.account("tim")
    lk = api.enroll_as_live(tim, faces_dir / "obama.jpg")
    assert api.call("PATCH", f"/v1/likenesses/{lk['id']}", tim, json={"mode": "everyone"}).status_code == 200
    client, tok = _browser(api, admin)
    assert 'href="/admin/guardians"' in client.get("/").get_data(as_text=True)  # in an admin's nav
    # the service's refusals, on the page, and nothing written
    for form, status, words in [({"account": "tim", "guardian": "nobody"}, 404, "nobody"),
                                ({"account": "tim", "guardian": "tim"}, 422, "its own guardian"),
                                ({"account": "tim", "guardian": ""}, 422, "account name (or id)")]:
        r = client.post("/admin/guardians/link", data={**form, "csrf_token": tok})
        assert r.status_code == status and words in r.get_data(as_text=True), (form, r.get_data(as_text=True)[-800:])
    assert client.post("/admin/guardians/link", data={"account": "tim", "guardian": "gina"}).status_code == 400
    assert api.call("GET", f"/v1/likenesses/{lk['id']}", tim).get_json()["mode"] == "everyone"
    assert _audits(api, "account:guardian:link") == 0

    r = client.post("/admin/guardians/link", data={"account": "tim", "guardian": "gina", "csrf_token": tok})
    assert r.status_code == 303 and "done=linked" in r.headers["Location"]
    assert "Done: the account is a minor" in client.get(r.headers["Location"]).get_data(as_text=True)
    assert api.call("GET", f"/v1/likenesses/{lk['id']}", tim).get_json()["mode"] == "approved"
    assert any(n["kind"].startswith("guardian:") for n in api.notifications(gina))
    r = client.post("/admin/guardians/majority", data={"account": "tim", "reason": "", "csrf_token": tok})
    assert r.status_code == 422
    r = client.post("/admin/guardians/unlink", data={"account": "tim", "csrf_token": tok})
    assert r.status_code == 303 and "done=unlinked" in r.headers["Location"]
    assert client.post("/admin/guardians/unlink", data={"account": "tim", "csrf_token": tok}).status_code == 404
    r = client.post("/admin/guardians/majority", data={"account": "tim", "reason": "passport seen by staff",
                                                       "csrf_token": tok})
    assert r.status_code == 303 and "done=majority" in r.headers["Location"]
    assert client.post("/admin/guardians/majority", data={"account": "tim", "reason": "again, twice",
                                                          "csrf_token": tok}).status_code == 404
    assert _audits(api, "account:guardian:link") == 1 and _audits(api, "account:minority:end") == 1
    # not an admin's: refused like the API (403), the link missing from the nav
    ginas, gina_tok = _browser(api, gina)
    assert 'href="/admin/guardians"' not in ginas.get("/").get_data(as_text=True)
    assert ginas.get("/admin/guardians").status_code == 403
    r = ginas.post("/admin/guardians/link", data={"account": "tim", "guardian": "gina", "csrf_token": gina_tok})
    assert r.status_code == 403
