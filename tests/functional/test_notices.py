"""Takedown notices from anyone, over HTTP (issue 16).

Mallory enrolls Obama's photo as her own likeness (a test shortcut for an impostor) and releases a video of
that face. Obama has no account: he files a notice with the video itself, proves his face with the live
challenge of enrollment, and the video comes down at once and stays down. A notice whose filer's face is not in
the video goes to the review queue; the requester's counter-notice goes back to it; bad input leaves nothing."""

from __future__ import annotations

import pytest
from sqlmodel import func, select

from governance.accounts.models import Account
from governance.db import unit_of_work
from governance.likenesses.models import Challenge, Likeness
from governance.models import AuditEvent
from governance.notices.models import Notice

LIVE_POSES = ("left", "up", "right")  # as Api.live_challenge: a sequence the test helper performs reliably
_videos: dict[str, bytes] = {}


_helper: list = []


@pytest.fixture(autouse=True)
def _challenge_helper(liveness_videos):
    _helper[:] = [liveness_videos]


def challenge_video(photo, poses):
    """A selfie video of ``photo``'s face performing ``poses`` (tests/detectors/challenge_video.py, cached)."""
    from media.video import load_image

    key = f"{photo}:{poses}"
    if key not in _videos:
        _videos[key] = bytes(_helper[0].challenge_video(load_image(photo), poses))
    return _videos[key]

FORM = {"contact": "someone@example.org", "on_behalf_of": "self", "good_faith": "true",
        "statement": "This video shows my face; I never agreed to it."}


def _released(api, faces_dir):
    mallory = api.account("mallory")
    lk = api.enroll_as_live(mallory, faces_dir / "obama.jpg")
    gen = api.generate(mallory, "a walk on the beach", [lk["id"]])
    done = api.wait(mallory, gen["id"])
    assert done["state"] == "released", done["reasons"]
    return mallory, lk, gen["id"], api.download(mallory, gen["id"])


def _prove(api, notice, photo, *, expect=200):
    """Ask for the notice's live challenge and answer it with ``photo``'s face turning through the poses."""
    q = f"?token={notice['token']}"
    r = api.call("POST", f"/v1/notices/{notice['id']}/challenge{q}")
    assert r.status_code == 201, r.get_json()
    ch = r.get_json()
    with unit_of_work(api.rt.engine) as s:  # the poses the test helper performs reliably (see Api.live_challenge)
        s.get(Challenge, ch["id"]).poses = list(LIVE_POSES)
    r = api.multipart(f"/v1/notices/{notice['id']}/face{q}", None,
                      [("selfie.mp4", challenge_video(photo, LIVE_POSES))], challenge=ch["id"])
    assert r.status_code == expect, r.get_json()
    return r.get_json()


def test_a_person_without_an_account_takes_down_a_video_of_their_face_and_it_stays_down(api, faces_dir):
    mallory, lk, gen_id, video = _released(api, faces_dir)
    r = api.multipart("/v1/notices", None, [("copy.mp4", video)], **FORM)
    assert r.status_code == 201, r.get_json()
    notice = r.get_json()
    assert notice["state"] == "open" and notice["generation"] == gen_id and notice["link"].endswith(notice["token"])
    assert any(n["kind"] == "generation:notice" for n in api.notifications(mallory))  # the requester is told

    done = _prove(api, notice, faces_dir / "obama.jpg")
    assert done["face_found"] is True and done["state"] == "taken_down" and done["counter_deadline"]
    # down at once: not downloadable, and a re-uploaded copy verifies as taken down
    r = api.call("GET", f"/v1/generations/{gen_id}/video", mallory)
    assert r.status_code == 410
    r.close()
    report = api.verify(video).get_json()
    assert report["record"]["generation_id"] == gen_id and report["record"]["taken_down"] is True
    # stays down: a new generation showing the face is blocked by the protective likeness it became
    again = api.wait(mallory, api.generate(mallory, "a walk in the park", [lk["id"]])["id"])
    assert again["state"] == "blocked", again
    with unit_of_work(api.rt.engine) as s:
        row = s.get(Notice, notice["id"])
        protective = s.get(Likeness, row.protective_likeness_id)
        assert protective.verification.value == "photo"  # protective: it consents to nothing
        filer = s.get(Account, row.account_id)
        tags = {e.tag for e in s.exec(select(AuditEvent).where(AuditEvent.subject.in_([notice["id"], gen_id])))}
    assert filer.daily_quota == 0
    assert {"notice:file", "notice:face", "notice:decide", "generation:takedown"} <= tags
    assert any(n["kind"] == "generation:takedown" and notice["id"] in n["message"] for n in api.notifications(mallory))

    # the filer follows it by the private link, and only with the token
    q = f"/v1/notices/{notice['id']}/status"
    status = api.call("GET", f"{q}?token={notice['token']}").get_json()
    assert [e["kind"] for e in status["events"]][-1] == "taken_down" and "contact" not in status
    assert api.call("GET", f"{q}?token=ntc_wrong").status_code == 404
    assert api.call("GET", q).status_code == 404

    # the requester's counter-notice sends it back to the queue; nobody else may file one
    bob = api.account("bob")
    body = {"statement": "This is a consenting actor, not him.", "good_faith": True}
    assert api.call("POST", f"/v1/notices/{notice['id']}/counter", bob, json=body).status_code == 404
    assert api.call("POST", f"/v1/notices/{notice['id']}/counter", mallory,
                    json={**body, "good_faith": False}).status_code == 422
    r = api.call("POST", f"/v1/notices/{notice['id']}/counter", mallory, json=body)
    assert r.status_code == 200 and r.get_json()["state"] == "countered"
    admin = api.account("root", "admin")
    queue = api.call("GET", "/v1/notices", admin).get_json()["notices"]
    [queued] = [n for n in queue if n["id"] == notice["id"]]
    assert queued["counter_statement"] == body["statement"] and queued["facts"]["face_check"]["found"] is True
    r = api.call("POST", f"/v1/notices/{notice['id']}/decision", admin,
                 json={"outcome": "keep_down", "reason": "the live check matched the face"})
    assert r.status_code == 200 and r.get_json()["state"] == "taken_down"
    r = api.call("GET", f"/v1/generations/{gen_id}/video", mallory)
    assert r.status_code == 410
    r.close()


def test_a_face_not_in_the_video_goes_to_review_and_a_counter_notice_restores_it(api, faces_dir):
    mallory, _, gen_id, _ = _released(api, faces_dir)
    r = api.call("POST", "/v1/notices", json={**FORM, "good_faith": True, "generation_id": gen_id})
    assert r.status_code == 201, r.get_json()
    notice = r.get_json()
    done = _prove(api, notice, faces_dir / "biden2.jpg")  # someone else's face: live, but not in the video
    assert done["face_found"] is False and done["state"] == "open"
    assert api.download(mallory, gen_id)[:12]  # still up

    admin, regulator = api.account("root", "admin"), api.account("reg", "regulator")
    seen = api.call("GET", f"/v1/notices/{notice['id']}", regulator).get_json()
    facts = seen["facts"]
    assert facts["released_here"] is True and facts["log_index"] is not None and facts["faces_matched"] == 1
    assert facts["face_check"]["found"] is False and seen["source"] == "generation_id"
    r = api.call("POST", f"/v1/notices/{notice['id']}/decision", regulator,
                 json={"outcome": "take_down", "reason": "x"})
    assert r.status_code == 403  # regulators read the queue; admins decide
    r = api.call("POST", f"/v1/notices/{notice['id']}/decision", admin, json={"outcome": "restore", "reason": "no"})
    assert r.status_code == 422  # restore answers a counter-notice, not an open notice
    r = api.call("POST", f"/v1/notices/{notice['id']}/decision", admin,
                 json={"outcome": "take_down", "reason": "the filer's account of it is credible"})
    assert r.status_code == 200 and r.get_json()["state"] == "taken_down"
    r = api.call("GET", f"/v1/generations/{gen_id}/video", mallory)
    assert r.status_code == 410
    r.close()
    r = api.call("POST", f"/v1/notices/{notice['id']}/counter", mallory,
                 json={"statement": "The person in it is me, Mallory.", "good_faith": True})
    assert r.status_code == 200
    r = api.call("POST", f"/v1/notices/{notice['id']}/decision", admin,
                 json={"outcome": "restore", "reason": "the counter-notice shows consent"})
    assert r.status_code == 200 and r.get_json()["state"] == "restored"
    assert api.download(mallory, gen_id)[:12]  # back up
    status = api.call("GET", f"/v1/notices/{notice['id']}/status?token={notice['token']}").get_json()
    assert [e["kind"] for e in status["events"]][-3:] == ["taken_down", "countered", "restored"]
    # the transparency log says both, in order, and the audit finds the log and the video agree (it is up)
    from governance.log.services import translog

    with api.rt.session() as s:
        release = translog.release_entry(s, gen_id)
        assert [(e.kind, e.cause) for e in translog.events_of(s, release)] == [("takedown", "notice"),
                                                                              ("restore", "notice")]
        assert translog.audit(s).problems == []
    # decided: no further decision, no new challenge
    r = api.call("POST", f"/v1/notices/{notice['id']}/decision", admin, json={"outcome": "take_down", "reason": "x1"})
    assert r.status_code == 409
    assert api.call("POST", f"/v1/notices/{notice['id']}/challenge?token={notice['token']}").status_code == 409


def _counts(api):
    with unit_of_work(api.rt.engine) as s:
        return (s.exec(select(func.count()).select_from(Notice)).one(),
                s.exec(select(func.count()).select_from(Account)).one(),
                s.exec(select(func.count()).select_from(Likeness)).one())


def test_bad_notices_are_refused_and_leave_nothing(api, faces_dir):
    mallory, _, gen_id, _ = _released(api, faces_dir)
    before = _counts(api)
    good = {**FORM, "good_faith": True, "generation_id": gen_id}
    for body, words in [({k: v for k, v in good.items() if k != "contact"}, "contact"),
                        ({**good, "on_behalf_of": "a friend"}, "on_behalf_of must be one of"),
                        ({**good, "good_faith": False}, "good_faith must be true"),
                        ({**good, "good_faith": 1}, "good_faith must be true"),  # JSON: the boolean true only
                        ({**good, "good_faith": "true"}, "good_faith must be true"),
                        ({**good, "good_faith": "on"}, "good_faith must be true"),
                        ({**good, "statement": "no"}, "statement"),
                        ({**good, "content_id": "00" * 8}, "exactly one way"),
                        ({k: v for k, v in good.items() if k != "generation_id"}, "exactly one way"),
                        ({**good, "generation_id": "gen_0000000000000000"}, "no video released here"),
                        ({**good, "generation_id": None, "content_id": "ab" * 8}, "no video released here"),
                        ({**good, "colour": "red"}, "unknown fields")]:
        r = api.call("POST", "/v1/notices", json=body)
        assert r.status_code == 422 and r.mimetype == "application/problem+json", (body, r.get_json())
        assert words in r.get_json()["detail"], (body, r.get_json())
    # a video that is not ours (a selfie video made here, never released): 422, and it is not kept
    selfie = challenge_video(faces_dir / "obama.jpg", LIVE_POSES)
    r = api.multipart("/v1/notices", None, [("mine.mp4", selfie)], **FORM)
    assert r.status_code == 422 and "no video released here" in r.get_json()["detail"]
    assert _counts(api) == before

    # an expired challenge: 409, nothing spent, nothing taken down, no likeness
    notice = api.call("POST", "/v1/notices", json=good).get_json()
    q = f"?token={notice['token']}"
    ch = api.call("POST", f"/v1/notices/{notice['id']}/challenge{q}").get_json()
    from datetime import timedelta

    from governance.columns import utcnow

    with unit_of_work(api.rt.engine) as s:
        row = s.get(Challenge, ch["id"])
        row.poses, row.expires_at = list(LIVE_POSES), utcnow() - timedelta(seconds=1)
    likenesses = _counts(api)[2]
    r = api.multipart(f"/v1/notices/{notice['id']}/face{q}", None, [("selfie.mp4", selfie)], challenge=ch["id"])
    assert r.status_code == 409 and r.get_json()["reason"] == "challenge_expired"
    with unit_of_work(api.rt.engine) as s:
        assert s.get(Challenge, ch["id"]).used_at is None
        assert s.get(Notice, notice["id"]).state.value == "open"
    assert _counts(api)[2] == likenesses
    assert api.download(mallory, gen_id)[:12]
    # someone else's challenge, or none: refused alike
    r = api.multipart(f"/v1/notices/{notice['id']}/face{q}", None, [("selfie.mp4", selfie)], challenge="chl_nope")
    assert r.status_code == 404
    # a notice for someone else is decided by a reviewer: no live challenge
    other = api.call("POST", "/v1/notices", json={**good, "on_behalf_of": "deceased_relative"}).get_json()
    r = api.call("POST", f"/v1/notices/{other['id']}/challenge?token={other['token']}")
    assert r.status_code == 409 and r.get_json()["reason"] == "not_self"


def _notifications_of(api, token):
    return len(api.call("GET", "/v1/notifications?limit=100", token).get_json()["notifications"])


def test_a_video_taken_down_elsewhere_closes_its_notices_and_takes_no_new_one(api, faces_dir):
    mallory, _, gen_id, _ = _released(api, faces_dir)
    admin = api.account("root", "admin")
    good = {**FORM, "good_faith": True, "generation_id": gen_id, "on_behalf_of": "unable_to_file"}
    a = api.call("POST", "/v1/notices", json=good).get_json()
    b = api.call("POST", "/v1/notices", json=good).get_json()
    # a reviewer takes it down on notice A: notice B says so, closed, with no counter-notice window of its own
    r = api.call("POST", f"/v1/notices/{a['id']}/decision", admin,
                 json={"outcome": "take_down", "reason": "not consented"})
    assert r.status_code == 200, r.get_json()
    status = api.call("GET", f"/v1/notices/{b['id']}/status?token={b['token']}").get_json()
    assert status["state"] == "taken_down", status
    assert "taken down by another takedown notice" in status["events"][-1]["text"], status["events"]
    assert api.call("POST", f"/v1/notices/{b['id']}/decision", admin,
                    json={"outcome": "take_down", "reason": "not consented"}).status_code == 409
    # a notice about a video already down: 409, nothing stored, the requester not told again
    before, told = _counts(api), _notifications_of(api, mallory)
    r = api.call("POST", "/v1/notices", json=good)
    assert r.status_code == 409 and r.mimetype == "application/problem+json"
    assert "already taken down" in r.get_json()["detail"]
    assert _counts(api) == before and _notifications_of(api, mallory) == told

    # the owner's own DELETE closes an open notice the same way
    gen = api.generate(mallory, "a walk in the park", [])
    done = api.wait(mallory, gen["id"])
    assert done["state"] == "released", done["reasons"]
    c = api.call("POST", "/v1/notices", json={**good, "generation_id": gen["id"]}).get_json()
    assert api.call("DELETE", f"/v1/generations/{gen['id']}", mallory).status_code == 204
    status = api.call("GET", f"/v1/notices/{c['id']}/status", headers={"X-Notice-Token": c["token"]}).get_json()
    assert status["state"] == "taken_down" and "one of its owners" in status["events"][-1]["text"], status
    r = api.call("POST", f"/v1/notices/{c['id']}/counter", mallory,
                 json={"statement": "It was mine to take down.", "good_faith": True})
    assert r.status_code == 409
    with unit_of_work(api.rt.engine) as s:
        assert "taken_down_elsewhere" in [e.data.get("outcome") for e in s.exec(select(AuditEvent)).all()
                                          if e.tag == "notice:decide"]


def _age(api, notice_id, hours):
    """Move a notice ``hours`` into the past: its filing time and every event of its timeline."""
    from datetime import datetime, timedelta

    with unit_of_work(api.rt.engine) as s:
        n = s.get(Notice, notice_id)
        n.created_at = n.created_at - timedelta(hours=hours)
        n.events = [{**e, "at": (datetime.fromisoformat(e["at"]) - timedelta(hours=hours)).isoformat()}
                    for e in n.events]
        s.add(n)


def test_a_notice_nobody_decides_within_48_hours_is_escalated_once_per_stay_in_the_queue(api, faces_dir):
    """The reviewers' deadline (TAKE IT DOWN Act's 48 hours): every worker's periodic sweep escalates a queued
    notice past it to every administrator, once; a counter-notice starts a new deadline; decided notices never."""
    from governance.notices.deadlines import REVIEW_HOURS, escalate_overdue

    mallory, _, gen_id, _ = _released(api, faces_dir)
    admin, admin2, regulator = api.account("root", "admin"), api.account("root2", "admin"), api.account("reg",
                                                                                                       "regulator")
    r = api.call("POST", "/v1/notices", json={**FORM, "on_behalf_of": "unable_to_file", "good_faith": True,
                                              "generation_id": gen_id})
    notice = r.get_json()
    r = api.call("POST", "/v1/notices", json={**FORM, "on_behalf_of": "unable_to_file", "good_faith": True,
                                              "generation_id": gen_id, "statement": "A second, fresh notice here."})
    fresh = r.get_json()
    seen = api.call("GET", f"/v1/notices/{notice['id']}", regulator).get_json()
    assert seen["overdue"] is False and seen["review_due"] > seen["created_at"]
    api.rt.pipeline.periodic()  # nothing is due yet
    assert not any(n["kind"] == "notice:overdue" for n in api.notifications(admin))

    _age(api, notice["id"], REVIEW_HOURS + 1)
    seen = api.call("GET", f"/v1/notices/{notice['id']}", regulator).get_json()
    assert seen["overdue"] is True
    status = api.call("GET", f"/v1/notices/{notice['id']}/status?token={notice['token']}").get_json()
    assert status["overdue"] is True and status["review_due"] == seen["review_due"]
    api.rt.pipeline.periodic()  # the worker's sweep, as wired by the container
    for token in (admin, admin2):
        [told] = [n for n in api.notifications(token) if n["kind"] == "notice:overdue"]
        assert notice["id"] in told["message"] and fresh["id"] not in told["message"]
    assert not any(n["kind"] == "notice:overdue" for n in api.notifications(regulator))
    status = api.call("GET", f"/v1/notices/{notice['id']}/status?token={notice['token']}").get_json()
    assert status["events"][-1]["kind"] == "overdue" and status["state"] == "open"  # escalated, not decided
    with unit_of_work(api.rt.engine) as s:
        assert escalate_overdue(s) == []  # once per stay in the queue
        [event] = s.exec(select(AuditEvent).where(AuditEvent.tag == "notice:overdue")).all()
        assert event.subject == notice["id"] and event.data["late_s"] >= 3600

    # decided, then countered: back in the queue with a new deadline, escalated again only once that passes
    r = api.call("POST", f"/v1/notices/{notice['id']}/decision", admin,
                 json={"outcome": "take_down", "reason": "the filer's account of it is credible"})
    assert r.status_code == 200
    assert api.call("GET", f"/v1/notices/{notice['id']}", regulator).get_json()["review_due"] is None
    r = api.call("POST", f"/v1/notices/{notice['id']}/counter", mallory,
                 json={"statement": "The person in it is me, Mallory.", "good_faith": True})
    assert r.status_code == 200
    seen = api.call("GET", f"/v1/notices/{notice['id']}", regulator).get_json()
    assert seen["state"] == "countered" and seen["overdue"] is False
    with unit_of_work(api.rt.engine) as s:
        assert escalate_overdue(s) == []
    _age(api, notice["id"], REVIEW_HOURS + 1)
    with unit_of_work(api.rt.engine) as s:
        assert escalate_overdue(s) == [notice["id"]]
    assert len([n for n in api.notifications(admin) if n["kind"] == "notice:overdue"]) == 2


def test_a_failing_periodic_sweep_is_logged_and_the_others_still_run(api, caplog):
    """Pipeline.periodic runs every registered sweep in its own unit of work: one that fails is logged with its
    name, and the next one (the notices' deadline among them) still runs."""
    ran: list[str] = []

    def broken(session):
        raise RuntimeError("the disk is full")

    api.rt.pipeline.every_sweep("a broken sweep", broken)
    api.rt.pipeline.every_sweep("a recording sweep", lambda session: ran.append("ran"))
    with caplog.at_level("WARNING"):
        api.rt.pipeline.periodic()
    assert ran == ["ran"]
    assert any("a broken sweep could not be swept" in r.getMessage() for r in caplog.records)
