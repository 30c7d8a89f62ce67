"""Teen accounts and guardians, over HTTP (issue 16): a minor's likeness refuses `everyone` and any use not granted
with the guardian's approval; the guardian approves a grant, is told of every use, takes a video down; unlinking
tells the guardian."""

from __future__ import annotations

from sqlmodel import select

from governance.accounts.models import Account
from governance.db import unit_of_work
from governance.guardians.models import GuardianApproval, Guardianship
from governance.likenesses.models import Grant
from governance.models import AuditEvent


def _family(api, faces_dir):
    admin = api.account("root", "admin")
    gina = api.account("gina")
    r = api.call("POST", "/v1/accounts", admin, json={"name": "tim", "role": "creator", "guardian": "gina"})
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["minor"] is True and r.get_json()["guardian"] == "gina"
    tim = r.get_json()["token"]
    lk = api.enroll_as_live(tim, faces_dir / "obama.jpg")
    return admin, gina, tim, lk


def test_a_minors_likeness_refuses_everyone_and_ungranted_use(api, faces_dir):
    admin, gina, tim, lk = _family(api, faces_dir)
    bob = api.account("bob")
    for mode in ("everyone", "mutuals"):
        r = api.call("PATCH", f"/v1/likenesses/{lk['id']}", tim, json={"mode": mode})
        assert r.status_code == 409 and r.get_json()["reason"] == "minor", r.get_json()
    assert api.call("GET", f"/v1/likenesses/{lk['id']}", tim).get_json()["mode"] == "approved"
    gen = api.generate(bob, "a walk on the beach", [lk["id"]])
    assert gen["state"] == "blocked" and "no consent is on record" in gen["reasons"][0]

    # the grant waits for the guardian: no grant exists, and the use is still refused
    r = api.call("PUT", f"/v1/likenesses/{lk['id']}/grants/bob", tim)
    assert r.status_code == 202 and r.get_json()["grant"] is None and r.get_json()["state"] == "pending"
    approval = r.get_json()["guardian_approval"]
    with unit_of_work(api.rt.engine) as s:
        assert s.exec(select(Grant).where(Grant.likeness_id == lk["id"])).all() == []
    assert api.generate(bob, "a walk on the beach", [lk["id"]])["state"] == "blocked"
    # nobody but the guardian answers it
    for token in (tim, bob, admin):
        r = api.call("POST", f"/v1/guardian/approvals/{approval}", token, json={"decision": "approve"})
        assert r.status_code == 404
    [pending] = api.call("GET", "/v1/guardian/approvals", gina).get_json()["approvals"]
    assert pending["minor"] == "tim" and pending["grantee"] == "bob"
    assert any(n["kind"] == "guardian:grant:requested" for n in api.notifications(gina))
    r = api.call("POST", f"/v1/guardian/approvals/{approval}", gina, json={"decision": "maybe"})
    assert r.status_code == 422
    r = api.call("POST", f"/v1/guardian/approvals/{approval}", gina, json={"decision": "approve"})
    assert r.status_code == 200 and r.get_json()["state"] == "approved" and r.get_json()["grant"]
    r = api.call("POST", f"/v1/guardian/approvals/{approval}", gina, json={"decision": "deny"})
    assert r.status_code == 409  # answered

    # now bob may: the guardian is told of the use and takes the video down
    gen = api.generate(bob, "a walk on the beach", [lk["id"]])
    done = api.wait(bob, gen["id"])
    assert done["state"] == "released", done["reasons"]
    assert any(n["kind"] == "guardian:likeness:use:released" and n["generation"] == gen["id"]
               for n in api.notifications(gina))
    assert api.call("GET", f"/v1/generations/{gen['id']}", gina).status_code == 200
    r = api.call("DELETE", f"/v1/generations/{gen['id']}", gina)
    assert r.status_code == 204
    r = api.call("GET", f"/v1/generations/{gen['id']}/video", bob)
    assert r.status_code == 410
    r.close()
    with unit_of_work(api.rt.engine) as s:
        tags = [e.tag for e in s.exec(select(AuditEvent)).all()]
    assert {"account:guardian:link", "likeness:grant:guardian", "generation:takedown"} <= set(tags)

    # someone else's guardian cannot take it down: a stranger sees no such generation
    carl = api.account("carl")
    assert api.call("DELETE", f"/v1/generations/{gen['id']}", carl).status_code == 404


def test_marking_and_unlinking_a_guardian(api, faces_dir):
    admin = api.account("root", "admin")
    gina, tim = api.account("gina"), api.account("tim")
    lk = api.enroll_as_live(tim, faces_dir / "obama.jpg")
    assert api.call("PATCH", f"/v1/likenesses/{lk['id']}", tim, json={"mode": "everyone"}).status_code == 200
    # marked a minor later: the likeness open to everyone is closed to approved at once
    for body, status in [({"guardian": "tim"}, 422), ({"guardian": "nobody"}, 404), ({}, 422),
                         ({"guardian": "gina", "x": 1}, 422)]:
        assert api.call("PUT", "/v1/accounts/tim/guardian", admin, json=body).status_code == status, body
    assert api.call("PUT", "/v1/accounts/tim/guardian", gina, json={"guardian": "gina"}).status_code == 403
    r = api.call("PUT", "/v1/accounts/tim/guardian", admin, json={"guardian": "gina"})
    assert r.status_code == 200 and r.get_json()["guardian"] == "gina"
    assert api.call("GET", f"/v1/likenesses/{lk['id']}", tim).get_json()["mode"] == "approved"
    # a minor cannot be a guardian, nor a guardian a minor
    api.account("kid")
    assert api.call("PUT", "/v1/accounts/kid/guardian", admin, json={"guardian": "tim"}).status_code == 422
    assert api.call("PUT", "/v1/accounts/gina/guardian", admin, json={"guardian": "kid"}).status_code == 422
    # a pending request is cancelled by the unlink; the guardian is told
    r = api.call("PUT", f"/v1/likenesses/{lk['id']}/grants/kid", tim)
    assert r.status_code == 202
    r = api.call("DELETE", "/v1/accounts/tim/guardian", admin)
    assert r.status_code == 200 and r.get_json()["guardian"] is None
    assert any(n["kind"] == "guardian:unlinked" for n in api.notifications(gina))
    with unit_of_work(api.rt.engine) as s:
        assert [a.state for a in s.exec(select(GuardianApproval)).all()] == ["cancelled"]
    assert api.call("GET", "/v1/guardian/approvals", gina).get_json()["approvals"] == []
    # without a guardian no grant can even be asked for; unlinking twice is 404
    r = api.call("PUT", f"/v1/likenesses/{lk['id']}/grants/kid", tim)
    assert r.status_code == 409 and r.get_json()["reason"] == "no_guardian"
    assert api.call("DELETE", "/v1/accounts/tim/guardian", admin).status_code == 404


def test_a_grant_made_before_the_link_waits_for_the_guardian(api, faces_dir):
    """t10: a grant the account made before it was marked a minor's is suspended by the link and becomes a request
    the guardian answers; until approved, the consent check does not use it."""
    admin, gina, bob = api.account("root", "admin"), api.account("gina"), api.account("bob")
    tim = api.account("tim")
    lk = api.enroll_as_live(tim, faces_dir / "obama.jpg")
    assert api.call("PUT", f"/v1/likenesses/{lk['id']}/grants/bob", tim).status_code in (200, 201)
    r = api.call("PUT", "/v1/accounts/tim/guardian", admin, json={"guardian": "gina"})
    assert r.status_code == 200, r.get_json()
    with unit_of_work(api.rt.engine) as s:
        assert s.exec(select(Grant).where(Grant.likeness_id == lk["id"], Grant.revoked_at == None)).all() == []  # noqa: E711
        tags = [(e.tag, e.data.get("why", "")) for e in s.exec(select(AuditEvent)).all()]
    assert any(t == "likeness:grant:revoke" and w.startswith("suspended") for t, w in tags)
    [pending] = api.call("GET", "/v1/guardian/approvals", gina).get_json()["approvals"]
    assert pending["grantee"] == "bob" and pending["minor"] == "tim"
    assert any(n["kind"] == "grant:suspended" for n in api.notifications(bob))
    assert any(n["kind"] == "guardian:grant:requested" for n in api.notifications(gina))
    gen = api.generate(bob, "a walk on the beach", [lk["id"]])
    assert gen["state"] == "blocked", gen
    # denied: still refused; asked again and approved: bob may
    r = api.call("POST", f"/v1/guardian/approvals/{pending['id']}", gina, json={"decision": "deny"})
    assert r.status_code == 200 and r.get_json()["state"] == "denied"
    assert api.generate(bob, "a walk on the beach", [lk["id"]])["state"] == "blocked"
    approval = api.call("PUT", f"/v1/likenesses/{lk['id']}/grants/bob", tim).get_json()["guardian_approval"]
    assert api.call("POST", f"/v1/guardian/approvals/{approval}", gina,
                    json={"decision": "approve"}).status_code == 200
    assert api.generate(bob, "a walk on the beach", [lk["id"]])["state"] != "blocked"
    # a new guardian did not approve it: relinking suspends it again
    assert api.call("PUT", "/v1/accounts/tim/guardian", admin, json={"guardian": "carl"}).status_code == 404
    carl = api.account("carl")
    assert api.call("PUT", "/v1/accounts/tim/guardian", admin, json={"guardian": "carl"}).status_code == 200
    [again] = api.call("GET", "/v1/guardian/approvals", carl).get_json()["approvals"]
    assert again["grantee"] == "bob"
    assert api.generate(bob, "a walk on the beach", [lk["id"]])["state"] == "blocked"


def test_only_creator_accounts_are_minors_or_guardians_and_nobody_links_their_own(api):
    """t6: a minor's account cannot be an admin, an admin or regulator cannot be marked a minor nor be a
    guardian, and no account links or unlinks its own guardian; each refusal writes nothing."""
    admin = api.account("root", "admin")
    api.account("root2", "admin")
    api.account("gina")
    api.account("reg", "regulator")

    def names():
        with unit_of_work(api.rt.engine) as s:
            return ({a.name for a in s.exec(select(Account)).all()},
                    len(s.exec(select(Guardianship)).all()), len(s.exec(select(AuditEvent)).all()))

    before = names()
    for body in ({"name": "kid3", "role": "admin", "guardian": "gina"},
                 {"name": "kid3", "role": "regulator", "guardian": "gina"},
                 {"name": "kid3", "role": "creator", "guardian": "reg"},
                 {"name": "kid3", "role": "creator", "guardian": "root2"}):
        r = api.call("POST", "/v1/accounts", admin, json=body)
        assert r.status_code == 422 and r.mimetype == "application/problem+json", (body, r.get_json())
    for minor, guardian in (("root2", "gina"), ("reg", "gina")):
        r = api.call("PUT", f"/v1/accounts/{minor}/guardian", admin, json={"guardian": guardian})
        assert r.status_code == 422 and "creator" in r.get_json()["detail"], r.get_json()
    assert names() == before
    # an admin acting on itself: refused, link or unlink
    r = api.call("PUT", "/v1/accounts/root/guardian", admin, json={"guardian": "gina"})
    assert r.status_code == 403 and "own guardian" in r.get_json()["detail"]
    assert api.call("DELETE", "/v1/accounts/root/guardian", admin).status_code == 403
    assert names() == before


def test_a_minor_comes_of_age(api, faces_dir):
    """An admin ends the minority (saying how the age was checked): pending approvals are cancelled, the approved
    grant stays, the holder alone decides from then on; refusals are named and change nothing."""
    admin, gina, tim, lk = _family(api, faces_dir)
    bob = api.account("bob")
    carl = api.account("carl")
    r = api.call("PUT", f"/v1/likenesses/{lk['id']}/grants/bob", tim)
    approval = r.get_json()["guardian_approval"]
    assert api.call("POST", f"/v1/guardian/approvals/{approval}", gina, json={"decision": "approve"}).status_code == 200
    assert api.call("PUT", f"/v1/likenesses/{lk['id']}/grants/carl", tim).status_code == 202  # waits for gina

    for who, body, status in [(gina, {"reason": "turned 18"}, 403), (tim, {"reason": "turned 18"}, 403),
                              (admin, {}, 422), (admin, {"reason": "  "}, 422), (admin, {"reason": 18}, 422),
                              (admin, {"reason": "x" * 501}, 422)]:
        assert api.call("POST", "/v1/accounts/tim/majority", who, json=body).status_code == status, (body, status)
    assert api.call("POST", "/v1/accounts/bob/majority", admin, json={"reason": "ok"}).status_code == 422
    assert api.call("POST", "/v1/accounts/bob/majority", admin, json={"reason": "id seen"}).status_code == 404
    assert api.call("POST", "/v1/accounts/nobody/majority", admin, json={"reason": "id seen"}).status_code == 404
    with unit_of_work(api.rt.engine) as s:  # nothing changed by the refusals
        assert s.get(Guardianship, s.exec(select(Account.id).where(Account.name == "tim")).one()) is not None

    r = api.call("POST", "/v1/accounts/tim/majority", admin, json={"reason": "passport checked: born 2008-11-02"})
    assert r.status_code == 200 and r.get_json() == {"account": r.get_json()["account"], "minor": False,
                                                     "guardian": None}
    assert api.call("POST", "/v1/accounts/tim/majority", admin, json={"reason": "again"}).status_code == 404
    with unit_of_work(api.rt.engine) as s:
        assert s.exec(select(Guardianship)).all() == []
        assert sorted(a.state for a in s.exec(select(GuardianApproval)).all()) == ["approved", "cancelled"]
        [event] = s.exec(select(AuditEvent).where(AuditEvent.tag == "account:minority:end")).all()
        assert event.data["reason"] == "passport checked: born 2008-11-02" and event.data["guardian"]
    assert any(n["kind"] == "guardian:ended" for n in api.notifications(gina))
    assert any(n["kind"] == "guardian:ended" for n in api.notifications(tim))
    assert api.call("GET", "/v1/guardian/approvals", gina).get_json()["approvals"] == []
    # the approved grant stays; tim now grants and opens the likeness himself, and gina has no say any more
    assert api.generate(bob, "a walk on the beach", [lk["id"]])["state"] != "blocked"
    r = api.call("PUT", f"/v1/likenesses/{lk['id']}/grants/carl", tim)
    assert r.status_code in (200, 201) and r.get_json()["grant"], r.get_json()
    assert api.call("PATCH", f"/v1/likenesses/{lk['id']}", tim, json={"mode": "everyone"}).status_code == 200
    gen = api.generate(carl, "a walk on the beach", [lk["id"]])
    assert api.call("DELETE", f"/v1/generations/{gen['id']}", gina).status_code == 404


def test_the_cli_creates_a_minors_account_and_ends_the_minority(tmp_path, capsys):
    import pytest

    from governance.cli import main
    from governance.config import Settings
    from governance.db import make_engine

    d = ["--data-dir", str(tmp_path / "var")]
    assert main([*d, "init"]) == 0
    assert main([*d, "accounts", "create", "gina", "--role", "creator"]) == 0
    assert main([*d, "accounts", "create", "tim", "--role", "creator", "--guardian", "gina"]) == 0
    out = capsys.readouterr().out
    assert "a minor's account whose guardian is gina" in out and out.splitlines()[-1].startswith("cg_")
    # refused, one line each, and nothing half-made: no account without its guardian
    assert main([*d, "accounts", "create", "kim", "--role", "creator", "--guardian", "nobody"]) == 1
    assert main([*d, "accounts", "create", "kim", "--role", "regulator", "--guardian", "gina"]) == 1
    assert main([*d, "accounts", "create", "kim", "--role", "creator", "--guardian", "tim"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == ["consentgate: no account 'nobody'",
                   "consentgate: only a creator account can be a minor's: 'guardian' cannot go with role 'regulator'",
                   "consentgate: 'tim' is a minor's account and cannot be a guardian"]
    with pytest.raises(SystemExit):
        main([*d, "accounts", "majority", "tim"])  # --reason is required
    capsys.readouterr()
    assert main([*d, "accounts", "majority", "gina", "--reason", "id seen"]) == 1
    assert capsys.readouterr().err == "consentgate: 'gina' is not a minor's account\n"
    assert main([*d, "accounts", "majority", "tim", "--reason", "passport checked"]) == 0
    assert "tim is no longer a minor's account" in capsys.readouterr().out
    engine = make_engine(Settings(data_dir=tmp_path / "var").db_url)
    try:
        with unit_of_work(engine) as s:
            assert [a.name for a in s.exec(select(Account)).all()] == ["gina", "tim"]
            assert s.exec(select(Guardianship)).all() == []
            tags = [(e.tag, e.actor_id) for e in s.exec(select(AuditEvent)).all() if e.tag.startswith("account:")]
            assert ("account:guardian:link", None) in tags and ("account:minority:end", None) in tags
    finally:
        engine.dispose()
