"""A face is yours only if you prove it live: photo likenesses protect, live ones consent, second claims are
disputed, protected public figures need an approved likeness. Over HTTP, with the real live check."""

from __future__ import annotations

import sys
import types
from datetime import timedelta

import numpy as np
import pytest
from sqlmodel import select

from governance.columns import utcnow
from governance.db import unit_of_work
from governance.likenesses.models import Challenge, Dispute, Likeness
from governance.models import AuditEvent
from media.video import load_image


def _problem(r, status, reason=None):
    assert r.status_code == status, (r.status_code, r.get_json())
    assert r.mimetype == "application/problem+json"
    body = r.get_json()
    if reason is not None:
        assert body.get("reason") == reason, body
    return body


def _counts(api):
    with api.rt.session() as s:
        return len(s.exec(select(Likeness)).all()), len(s.exec(select(Dispute)).all())


def _tags(api, tag):
    with api.rt.session() as s:
        return [e.data for e in s.exec(select(AuditEvent).where(AuditEvent.tag == tag)).all()]


def test_a_photo_likeness_only_protects_until_verified_live(api, faces_dir):
    alice = api.account("alice")
    lk = api.enroll(alice, faces_dir / "obama.jpg")
    assert (lk["verification"], lk["status"], lk["can_consent"]) == ("photo", "active", False)
    assert f"/v1/likenesses/{lk['id']}/verification" in lk["how_to_verify"]

    # it blocks its own owner's generation, saying how to verify
    gen = api.generate(alice, "a walk on the beach", [lk["id"]])
    assert gen["state"] == "blocked"
    assert any("not verified live" in r and "/v1/likenesses/challenges" in r for r in gen["reasons"])
    # it can be neither granted nor opened (409, with the way out); closing it further is fine
    body = _problem(api.call("PUT", f"/v1/likenesses/{lk['id']}/grants/alice", alice), 422)  # bad input first
    body = _problem(api.call("PUT", f"/v1/likenesses/{lk['id']}/grants/nobody", alice), 404)
    api.account("bob")
    body = _problem(api.call("PUT", f"/v1/likenesses/{lk['id']}/grants/bob", alice), 409, "photo")
    assert body["verification"] == "photo" and "challenges" in body["how_to_verify"]
    for mode in ("approved", "mutuals", "everyone"):
        _problem(api.call("PATCH", f"/v1/likenesses/{lk['id']}", alice, json={"mode": mode}), 409, "photo")
    assert api.call("PATCH", f"/v1/likenesses/{lk['id']}", alice, json={"mode": "only_me"}).status_code == 200

    # verifying live with someone else's face is refused, and spends the challenge
    before = _counts(api)
    body = api.verify_live(alice, lk["id"], faces_dir / "biden2.jpg", expect=422)
    assert body["reason"] == "face_mismatch" and body["challenge_spent"] is True
    assert _counts(api) == before
    with api.rt.session() as s:
        assert s.get(Challenge, body["challenge"]).outcome == "face_mismatch"

    # verifying live upgrades it: it can be used, opened and granted
    up = api.verify_live(alice, lk["id"], faces_dir / "obama.jpg")
    assert (up["id"], up["verification"], up["status"], up["can_consent"]) == (lk["id"], "live", "active", True)
    assert up["verified_at"] and up["identity"]["outcome"] == "not_checked"
    assert api.verify_live(alice, lk["id"], faces_dir / "obama.jpg", expect=409)["reason"] == "already_live"
    assert api.call("PATCH", f"/v1/likenesses/{lk['id']}", alice, json={"mode": "approved"}).status_code == 200
    assert api.call("PUT", f"/v1/likenesses/{lk['id']}/grants/bob", alice).status_code == 201
    done = api.wait(alice, api.generate(alice, "a walk on the beach", [lk["id"]])["id"])
    assert done["state"] == "released", done["reasons"]
    [verified] = _tags(api, "likeness:verify")
    assert verified["upgrade"] is True and verified["live_check"]["poses"]


def test_a_second_claim_on_an_enrolled_face_is_disputed(api, faces_dir):
    alice, bob, admin = api.account("alice"), api.account("bob"), api.account("root", "admin")
    carol = api.account("carol")
    mine = api.enroll_live(alice, faces_dir / "obama.jpg")
    assert (mine["verification"], mine["status"], mine["can_consent"]) == ("live", "active", True)
    api.call("PUT", f"/v1/likenesses/{mine['id']}/grants/carol", alice)

    # bob enrolls the same face from another photo: disputed, protective only; both owners are told
    theirs = api.enroll(bob, faces_dir / "obama2.jpg")
    assert (theirs["status"], theirs["can_consent"]) == ("disputed", False)
    [dispute] = theirs["disputes"]
    assert dispute["kind"] == "double_claim" and "holder" not in dispute
    [told_alice] = [n for n in api.notifications(alice) if n["kind"] == "dispute:open"]
    [told_bob] = [n for n in api.notifications(bob) if n["kind"] == "dispute:open"]
    assert dispute["id"] in told_alice["message"] and "not affected" in told_alice["message"]
    assert dispute["id"] in told_bob["message"] and "bob" not in told_alice["message"]
    assert "alice" not in told_bob["message"]
    gen = api.generate(bob, "a walk", [theirs["id"]])
    assert gen["state"] == "blocked" and any("another account enrolled first" in r for r in gen["reasons"])

    # alice's and her grantee's generations are unaffected: bob's claim defers to hers on the same face
    done = api.wait(carol, api.generate(carol, "a walk by the sea", [mine["id"]])["id"])
    assert done["state"] == "released", done["reasons"]
    assert [f["likeness"] for f in done["faces_found"]] == [mine["id"]]  # the face, under its nearest likeness
    [deferred] = [d for d in done["decisions"] if d["rule"] == "likeness:disputed:deferred"]
    assert (deferred["likeness"], deferred["defers_to"]) == (theirs["id"], mine["id"])
    report = api.verify(api.download(carol, done["id"])).get_json()
    [person] = report["c2pa"]["governance"]["likenesses"]  # commitments: the record names nobody
    assert (person["verification"], person["status"], person["basis"]) == ("live", "active", "grant")
    assert not any(d["rule"].startswith("likeness:") for d in report["c2pa"]["governance"]["decisions"])
    # ...and bob learns nothing about them
    assert api.call("GET", f"/v1/generations/{done['id']}", bob).status_code == 404
    assert api.call("GET", f"/v1/generations/{done['id']}/video", bob).status_code == 404
    uses = api.call("GET", f"/v1/likenesses/{theirs['id']}/generations", bob).get_json()["generations"]
    assert [u["id"] for u in uses] == [gen["id"]]  # only his own request
    assert not any(n["generation"] == done["id"] for n in api.notifications(bob))
    assert any(n["generation"] == done["id"] for n in api.notifications(alice))

    # an admin resolves it, with a reason; a photo claim never displaces a live one
    _problem(api.call("GET", "/v1/disputes", bob), 403)
    [open_] = api.call("GET", "/v1/disputes", admin).get_json()["disputes"]
    assert (open_["claimant"]["name"], open_["holder"]["name"], open_["holder_likeness"]) == ("bob", "alice",
                                                                                              mine["id"])
    assert open_["outcomes"] == ["holder", "claimant", "distinct"] and open_["distance"] < 0.5
    path = f"/v1/disputes/{open_['id']}/resolve"
    _problem(api.call("POST", path, admin, json={"outcome": "claimant", "reason": "bob says so"}), 409,
             "photo_cannot_displace_live")
    _problem(api.call("POST", path, admin, json={"outcome": "holder"}), 422)
    _problem(api.call("POST", path, admin, json={"outcome": "approve", "reason": "x"}), 422)
    _problem(api.call("POST", path, bob, json={"outcome": "distinct", "reason": "x"}), 403)
    with unit_of_work(api.rt.engine) as s:  # an admin who is a party must leave it to another admin
        from governance.accounts.models import Account, Role

        s.exec(select(Account).where(Account.name == "alice")).one().role = Role.ADMIN
    _problem(api.call("POST", path, alice, json={"outcome": "holder", "reason": "mine"}), 403)
    with unit_of_work(api.rt.engine) as s:
        s.exec(select(Account).where(Account.name == "alice")).one().role = Role.CREATOR
    r = api.call("POST", path, admin, json={"outcome": "holder", "reason": "alice proved the face live first"})
    assert r.status_code == 200 and r.get_json()["state"] == "resolved"
    _problem(api.call("POST", path, admin, json={"outcome": "holder", "reason": "again"}), 409)
    assert api.call("GET", f"/v1/likenesses/{theirs['id']}", bob).status_code == 404
    assert any("was deleted" in n["message"] for n in api.notifications(bob))
    [resolved] = _tags(api, "dispute:resolve")
    assert resolved["outcome"] == "holder" and resolved["reason"] == "alice proved the face live first"
    assert api.call("GET", "/v1/disputes", admin).get_json()["disputes"] == []
    assert len(api.call("GET", "/v1/disputes?state=all", admin).get_json()["disputes"]) == 1
    with api.rt.session() as s:
        assert theirs["id"] not in api.rt.sync_index(s)


def test_the_person_proving_a_face_live_wins_over_an_earlier_photo_squatter(api, faces_dir):
    squatter, person, admin = api.account("squatter"), api.account("person"), api.account("root", "admin")
    squat = api.enroll(squatter, faces_dir / "biden.jpg")
    real = api.enroll_live(person, faces_dir / "biden2.jpg")
    assert (real["verification"], real["status"]) == ("live", "disputed")
    gen = api.generate(person, "a speech", [real["id"]])  # until an admin decides, the claim only protects
    assert gen["state"] == "blocked"
    [d] = api.call("GET", "/v1/disputes", admin).get_json()["disputes"]
    r = api.call("POST", f"/v1/disputes/{d['id']}/resolve", admin,
                 json={"outcome": "claimant", "reason": "verified live; the earlier claim was photos only"})
    assert r.status_code == 200, r.get_json()
    assert api.call("GET", f"/v1/likenesses/{squat['id']}", squatter).status_code == 404
    now = api.call("GET", f"/v1/likenesses/{real['id']}", person).get_json()
    assert (now["status"], now["can_consent"], now["disputes"]) == ("active", True, [])


def test_upgrading_an_old_photo_likeness_disputes_the_later_claim_not_itself(api, faces_dir):
    """Likenesses enrolled before disputes existed (migrated ones) may hold the same face undisputed. When the
    earlier one is verified live, the later one becomes the claimant, so it cannot block the earlier one."""
    from policies.consent import LikenessStatus

    alice, bob = api.account("alice"), api.account("bob")
    first = api.enroll(alice, faces_dir / "obama.jpg")
    later = api.enroll(bob, faces_dir / "obama2.jpg")
    with unit_of_work(api.rt.engine) as s:  # as migration 0007 leaves two such likenesses: no dispute
        for d in s.exec(select(Dispute)).all():
            s.delete(d)
        s.get(Likeness, later["id"]).status = LikenessStatus.ACTIVE
    up = api.verify_live(alice, first["id"], faces_dir / "obama.jpg")
    assert (up["verification"], up["status"], up["disputes"]) == ("live", "active", [])
    now = api.call("GET", f"/v1/likenesses/{later['id']}", bob).get_json()
    assert now["status"] == "disputed" and [d["kind"] for d in now["disputes"]] == ["double_claim"]
    done = api.wait(alice, api.generate(alice, "a walk", [first["id"]])["id"])
    assert done["state"] == "released", done["reasons"]


@pytest.fixture
def figure_cli(api):
    from governance.cli import main

    def run(*argv: str) -> int:
        return main(["--data-dir", str(api.rt.settings.data_dir), "figures", *argv])

    return run


def test_a_protected_public_figure(api, faces_dir, figure_cli, capsys):
    alice, bob, admin = api.account("alice"), api.account("bob"), api.account("root", "admin")
    # enrolled before the figure joined the gallery
    lk = api.enroll_live(alice, faces_dir / "biden2.jpg")
    assert lk["status"] == "active"
    # a display name blocks nothing any more (anyone could squat a famous name)
    named = api.enroll(bob, faces_dir / "lin-manuel-miranda.png", display_name="Lin-Manuel Miranda")
    assert named["display_name"] == "Lin-Manuel Miranda"
    assert api.generate(alice, "lin manuel miranda sings")["state"] == "prechecked"

    # the operator adds the figure: alice's likeness of that face now needs review
    assert figure_cli("add", "Joe Biden", str(faces_dir / "biden.jpg"), "--alias", "the president") == 0
    out = capsys.readouterr().out
    assert "added protected figure Joe Biden" in out and f"likeness {lk['id']} shows this face" in out
    with pytest.raises(SystemExit, match="no such file"):
        figure_cli("add", "Nobody", str(faces_dir / "missing.jpg"))
    [fig] = api.call("GET", "/v1/figures", admin).get_json()["figures"]
    assert (fig["name"], fig["aliases"]) == ("Joe Biden", ["the president"])
    _problem(api.call("GET", "/v1/figures", alice), 403)
    now = api.call("GET", f"/v1/likenesses/{lk['id']}", alice).get_json()
    assert (now["status"], now["can_consent"]) == ("pending_review", False)

    # prompts naming the figure, however disguised, are blocked; so is alice's own likeness, for now
    for prompt in ("JOE-BIDEN on a beach", "the   President waves", "J0E B1DEN waves"):
        gen = api.generate(bob, prompt)
        assert gen["state"] == "blocked" and any("protected public figure" in r for r in gen["reasons"]), gen
    assert api.generate(alice, "a speech", [lk["id"]])["state"] == "blocked"
    # claiming the face again goes to review too (and disputes alice's claim)
    other = api.enroll(bob, faces_dir / "biden.jpg")
    assert other["status"] == "pending_review"
    assert sorted(d["kind"] for d in other["disputes"]) == ["double_claim", "public_figure"]

    # an admin approves alice's likeness as the figure: it consents for them
    reviews = [d for d in api.call("GET", "/v1/disputes", admin).get_json()["disputes"]
               if d["likeness"] == lk["id"]]
    [review] = reviews
    assert review["kind"] == "public_figure" and review["figure"] == {"id": fig["id"], "name": "Joe Biden"}
    r = api.call("POST", f"/v1/disputes/{review['id']}/resolve", admin,
                 json={"outcome": "approve", "reason": "checked the person's identity documents"})
    assert r.status_code == 200
    now = api.call("GET", f"/v1/likenesses/{lk['id']}", alice).get_json()
    assert (now["status"], now["figure"], now["can_consent"]) == ("active", fig["id"], True)
    done = api.wait(alice, api.generate(alice, "joe biden gives a speech", [lk["id"]])["id"])
    assert done["state"] == "released", done["reasons"]
    figure_decisions = [d for d in done["decisions"] if d["rule"] == f"figure:{fig['id']}"]
    assert figure_decisions and all(d["decision"] == "allow" for d in figure_decisions)
    # others need the figure's consent, through that likeness
    assert api.generate(bob, "joe biden on a beach")["state"] == "blocked"
    api.call("PUT", f"/v1/likenesses/{lk['id']}/grants/bob", alice)
    assert api.generate(bob, "joe biden on a beach")["state"] == "prechecked"
    api.rt.pipeline.wait_idle()

    # removed from the gallery, the name is free again and its open reviews are withdrawn
    assert figure_cli("list") == 0 and fig["id"] in capsys.readouterr().out
    assert api.call("DELETE", f"/v1/figures/{fig['id']}", admin).status_code == 204
    still = api.call("GET", f"/v1/likenesses/{other['id']}", bob).get_json()
    assert (still["status"], [d["kind"] for d in still["disputes"]]) == ("disputed", ["double_claim"])
    assert api.call("DELETE", f"/v1/figures/{fig['id']}", admin).status_code == 404
    api.call("DELETE", f"/v1/likenesses/{lk['id']}/grants/bob", alice)
    assert api.generate(bob, "joe biden on a beach")["state"] == "prechecked"
    api.rt.pipeline.wait_idle()
    assert [e["name"] for e in _tags(api, "figure:remove")] == ["Joe Biden"]


def test_an_output_showing_a_figure_is_blocked_at_the_scan(api, faces_dir):
    """The scan checks every output's faces against the gallery too. Here a figure lands in the gallery after
    the scan's consent check (as if another process added it then, before the reviews it opens could apply),
    so only the scan can see it."""
    from governance.db import bump
    from governance.likenesses.models import Figure
    from governance.likenesses.services.likenesses import build_template

    alice = api.account("alice")
    lk = api.enroll_live(alice, faces_dir / "biden2.jpg")

    def add_now(generation_id: str) -> None:
        t = build_template([load_image(faces_dir / "biden2.jpg")], api.rt.face_backend)
        with unit_of_work(api.rt.engine) as s:
            s.add(Figure(name="Joe Biden", backend=t.backend, template=t.to_bytes(), embeddings=1))
            bump(s, "likenesses")

    api.rt.pipeline.on("generated", add_now)
    done = api.wait(alice, api.generate(alice, "a portrait in the park", [lk["id"]])["id"])
    assert done["state"] == "blocked"
    assert any("the output shows 'Joe Biden'" in r and "protected public figure" in r for r in done["reasons"])
    assert api.leftovers() == []


def _set_poses(api, challenge_id, poses):
    with unit_of_work(api.rt.engine) as s:
        s.get(Challenge, challenge_id).poses = list(poses)


def test_the_live_challenge(api, faces_dir, liveness_videos):
    alice, bob = api.account("alice"), api.account("bob")
    helper = liveness_videos
    obama = load_image(faces_dir / "obama.jpg")
    ch = api.call("POST", "/v1/likenesses/challenges", alice)
    assert ch.status_code == 201 and ch.headers["Cache-Control"] == "no-store"
    body = ch.get_json()
    assert 3 <= len(body["poses"]) <= 5 and set(body["poses"]) <= {"left", "right", "up", "down", "center"}
    assert body["ttl_s"] == 180 and body["expires_at"] > body["created_at"]
    poses = ("left", "up", "right")
    _set_poses(api, body["id"], poses)
    video = helper.challenge_video(obama, poses)

    def answer(token, challenge_id, data=video, name="selfie.mp4", **extra):
        return api.multipart("/v1/likenesses", token, [(name, data)], challenge=challenge_id, **extra)

    # malformed requests are refused before the challenge is touched
    before = _counts(api)
    _problem(answer(alice, body["id"], (faces_dir / "obama.jpg").read_bytes(), "me.jpg"), 422)
    _problem(api.multipart("/v1/likenesses", alice, [("a.mp4", video), ("b.mp4", video)], challenge=body["id"]), 422)
    _problem(answer(alice, body["id"], b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 500), 415)
    _problem(answer(bob, body["id"]), 404)  # another account's challenge is nobody's
    _problem(answer(alice, "chl_nope"), 404)
    _problem(answer(alice, body["id"], mirrored="maybe"), 422)
    long = helper.encode(np.zeros((21 * 10, 64, 64, 3), np.uint8), 10.0)  # over 20 s: not even decoded
    _problem(answer(alice, body["id"], long), 422, "too_long")
    assert _counts(api) == before

    # the recorded challenge, performed in order: a live likeness with pose-binned views
    r = answer(alice, body["id"])
    assert r.status_code == 201, r.get_json()
    lk = r.get_json()
    assert (lk["verification"], lk["status"], lk["can_consent"]) == ("live", "active", True)
    from detectors.enroll import Template
    from governance import references

    with api.rt.session() as s:
        blob = s.get(Likeness, lk["id"]).template
        template = Template.from_bytes(blob)
        reference = references.reference_of(s, lk["id"], template)
    assert {"left", "up", "right"} <= set(template.bins) and reference.shape[2] == 3
    # the row keeps embeddings and names only; the face image is in the file store, encrypted (issue 12)
    assert template.reference is None and len(blob) <= 16 * 1024
    stored = api.rt.settings.data_dir / "references" / f"{lk['id']}.ref"
    assert stored.stat().st_mode & 0o777 == 0o600 and reference.tobytes()[:48] not in stored.read_bytes()
    # single use
    _problem(answer(alice, body["id"]), 409, "challenge_used")

    # each refusal names its reason, spends the challenge, and leaves nothing behind
    still = helper.still_video(obama)
    slides = helper.slideshow_video([obama, load_image(faces_dir / "obama2.jpg"), load_image(faces_dir / "obama3.jpg")])
    spliced = helper.encode(helper.spliced_frames(obama, load_image(faces_dir / "biden2.jpg"), poses, dissolve_s=0.5))
    wrong_order = helper.challenge_video(obama, ("up", "left", "right"))
    before = _counts(api)
    for data, reason in [(wrong_order, "pose_order"), (still, "replayed_still"), (slides, "slideshow"),
                         (spliced, "identity_changed")]:
        ch = api.challenge(alice)
        _set_poses(api, ch["id"], poses)
        refused = _problem(answer(alice, ch["id"], data), 422, reason)
        assert refused["challenge"] == ch["id"] and refused["challenge_spent"] is True
        _problem(answer(alice, ch["id"]), 409, "challenge_used")  # no retry with the right video
    assert _counts(api) == before
    assert sorted(e["reason"] for e in _tags(api, "likeness:verify:refuse")) == sorted(
        ["pose_order", "replayed_still", "slideshow", "identity_changed"])

    # expired: refused before anything is checked
    ch = api.challenge(alice)
    with unit_of_work(api.rt.engine) as s:
        s.get(Challenge, ch["id"]).expires_at = utcnow() - timedelta(seconds=1)
    _problem(answer(alice, ch["id"]), 409, "challenge_expired")
    assert _counts(api) == before
    # an account holds a few open challenges at most
    for _ in range(5):
        api.challenge(alice)
    _problem(api.call("POST", "/v1/likenesses/challenges", alice), 409, "too_many_challenges")


class _RejectingVendor:
    name = "test-kyc"

    def check(self, request):
        from governance.identity import IdentityOutcome, IdentityVerdict

        assert request.face.ndim == 3 and request.account_name == "alice" and request.challenge_id
        return IdentityVerdict(self.name, IdentityOutcome.REJECTED, reference="case-42", detail="document mismatch")


@pytest.fixture
def kyc_module(monkeypatch):
    module = types.ModuleType("test_kyc_vendor")
    module.rejecting = _RejectingVendor  # type: ignore[attr-defined]
    module.broken = lambda: 42  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "test_kyc_vendor", module)
    return module


def test_an_identity_proof_that_rejects_sends_the_likeness_to_review(make_api, faces_dir, kyc_module):
    from governance.config import ConfigError

    with pytest.raises(ConfigError, match="must return an object with 'name' and 'check"):
        make_api(identity_proof="test_kyc_vendor:broken")
    with pytest.raises(ConfigError, match="cannot be imported"):
        make_api(identity_proof="test_kyc_vendor:missing")
    api = make_api(identity_proof="test_kyc_vendor:rejecting")
    alice = api.account("alice")
    lk = api.enroll_live(alice, faces_dir / "obama.jpg")
    assert (lk["verification"], lk["status"], lk["can_consent"]) == ("live", "pending_review", False)
    assert lk["identity"]["outcome"] == "rejected" and lk["identity"]["reference"] == "case-42"
    assert [d["kind"] for d in lk["disputes"]] == ["identity"]
    [check] = _tags(api, "likeness:identity:check")
    assert check["provider"] == "test-kyc" and check["outcome"] == "rejected"


def test_identity_proof_failures_fail_closed():
    from governance.identity import IdentityOutcome, IdentityRequest, run_check

    class Down:
        name = "down"

        def check(self, request):
            raise TimeoutError("vendor unreachable")

    class Wrong:
        name = "wrong"

        def check(self, request):
            return "verified"

    req = IdentityRequest("acc_1", "alice", np.zeros((4, 4, 3), np.uint8), "chl_1", None)
    down = run_check(Down(), req)
    assert down.outcome is IdentityOutcome.UNAVAILABLE and "vendor unreachable" in down.detail and down.needs_review
    assert run_check(Wrong(), req).outcome is IdentityOutcome.UNAVAILABLE
