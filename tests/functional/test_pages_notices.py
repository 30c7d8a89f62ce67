"""The takedown notices' pages (governance/pages/notices.py) through Flask's test client: an anonymous person
reports a video and follows it by the private link, proves their face live; a reviewer lists and decides; the
requester answers with a counter-notice. Every rejection shows on the page and writes nothing; a caller who may not
see a notice is refused as the API refuses them; every form needs its CSRF token. The browser walks the same story
in tests/browser/test_notices_story.py."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sqlmodel import func, select

from governance.db import unit_of_work
from governance.likenesses.models import Challenge
from governance.notices.models import Notice

from .conftest import LIVE_POSES, challenge_video
from .test_pages import TESTDATA, csrf, post_file, sign_in

FORM = {"contact": "someone@example.org", "on_behalf_of": "unable_to_file", "good_faith": "true",
        "statement": "This video shows my brother, who never agreed to it."}


def _notices(api: Any) -> int:
    with unit_of_work(api.rt.engine) as s:
        return int(s.exec(select(func.count()).select_from(Notice)).one())


def _notice(api: Any, notice_id: str) -> Notice:
    with unit_of_work(api.rt.engine) as s:
        n = s.get(Notice, notice_id)
        assert n is not None
        s.expunge(n)
        return n


def _released(api: Any, name: str = "mal", likenesses: list[str] | None = None) -> tuple[str, str]:
    token = api.account(name)
    gen = api.generate(token, "a walk on the beach", likenesses or [])
    assert api.wait(token, gen["id"])["state"] == "released"
    return token, gen["id"]


def _report(client: Any, **form: str) -> Any:
    return client.post("/report", data={**form, "csrf_token": csrf(client, "/report")})


def _private_link(r: Any) -> tuple[str, str]:
    """The notice's id and token from the redirect to its status page."""
    assert r.status_code == 303, r.get_data(as_text=True)[:2000]
    url = urlsplit(r.headers["Location"])
    m = re.fullmatch(r"/notices/(ntc_[0-9a-f]+)", url.path)
    assert m, url
    return m.group(1), parse_qs(url.query)["token"][0]


def test_anyone_reports_a_video_by_its_id_and_follows_it_by_the_private_link(api) -> None:
    mal, gen_id = _released(api)
    form = api.client.get("/report")
    assert form.status_code == 200 and form.headers["Cache-Control"] == "no-store"
    html = form.get_data(as_text=True)
    assert 'for="statement"' in html and 'name="good_faith"' in html and 'name="media"' in html
    assert "Report a video" in api.client.get("/").get_data(as_text=True)  # the nav and the home page
    r = _report(api.client, generation_id=gen_id, **FORM)
    notice_id, token = _private_link(r)
    assert r.headers["Referrer-Policy"] == "no-referrer" and r.headers["Cache-Control"] == "no-store"
    page = api.client.get(r.headers["Location"])
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and page.headers["Referrer-Policy"] == "no-referrer"
    assert page.headers["Cache-Control"] == "no-store"
    assert 'data-state="open"' in html and notice_id in html and f"token={token}" in html and 'id="done"' in html
    assert 'id="live"' not in html  # filed for someone else: a reviewer decides, no live check offered
    assert 'data-kind="filed"' in html
    # the same notice the API shows by the same token; the requester was told
    api_view = api.call("GET", f"/v1/notices/{notice_id}/status?token={token}").get_json()
    assert api_view["state"] == "open" and api_view["generation"] == gen_id
    assert any(n["kind"] == "generation:notice" for n in api.notifications(mal))
    # a wrong or missing token: 404, as the API
    assert api.client.get(f"/notices/{notice_id}?token=ntc_wrong").status_code == 404
    assert api.client.get(f"/notices/{notice_id}").status_code == 404
    assert api.client.get(f"/notices/ntc_0000000000000000?token={token}").status_code == 404


def test_a_bad_report_shows_what_to_fix_and_files_nothing(api) -> None:
    _mal, gen_id = _released(api)
    cases = [({**FORM, "generation_id": gen_id, "statement": "short"}, "statement"),
             ({**FORM, "generation_id": gen_id, "contact": ""}, "contact"),
             ({k: v for k, v in FORM.items() if k != "good_faith"} | {"generation_id": gen_id}, "good_faith"),
             ({**FORM, "generation_id": gen_id, "on_behalf_of": "the queen"}, "on_behalf_of"),
             (dict(FORM), "exactly one way"),
             ({**FORM, "generation_id": gen_id, "content_id": "abc"}, "exactly one way"),
             ({**FORM, "generation_id": "gen_0000000000000000"}, "no video released here")]
    for form, words in cases:
        r = _report(api.client, **form)
        html = r.get_data(as_text=True)
        assert r.status_code == 422, (form, html[:500])
        assert 'role="alert"' in html and words in html and "Nothing was filed" in html, (form, words)
        assert FORM["contact"] in html or not form.get("contact")  # the form comes back filled in
    # an upload that is not a video released here (a photo from elsewhere)
    tok = csrf(api.client, "/report")
    r = post_file(api.client, "/report", "obama.jpg", (TESTDATA / "faces" / "obama.jpg").read_bytes(),
                  csrf_token=tok, **FORM)
    assert r.status_code == 422 and "uploaded file" in r.get_data(as_text=True)
    assert _notices(api) == 0
    # no CSRF token: 400 before anything is read
    r = api.client.post("/report", data={**FORM, "generation_id": gen_id})
    assert r.status_code == 400 and "security token" in r.get_data(as_text=True)
    r = api.client.post("/report", data={**FORM, "generation_id": gen_id, "csrf_token": "forged"})
    assert r.status_code == 400
    assert _notices(api) == 0


def test_a_video_already_taken_down_is_refused_on_the_page(api) -> None:
    mal, gen_id = _released(api)
    assert api.call("DELETE", f"/v1/generations/{gen_id}", mal).status_code == 204
    r = _report(api.client, generation_id=gen_id, **FORM)
    assert r.status_code == 409 and "already taken down" in r.get_data(as_text=True)
    assert _notices(api) == 0


def test_a_filer_uploads_the_video_and_proves_their_face_live_and_it_comes_down(api, faces_dir) -> None:
    mal = api.account("mallory")
    lk = api.enroll_as_live(mal, faces_dir / "obama.jpg")
    gen_id = api.generate(mal, "a walk on the beach", [lk["id"]])["id"]
    assert api.wait(mal, gen_id)["state"] == "released"
    video = api.download(mal, gen_id)
    tok = csrf(api.client, "/report")
    r = post_file(api.client, "/report", "copy.mp4", video, csrf_token=tok, **{**FORM, "on_behalf_of": "self"})
    notice_id, token = _private_link(r)
    status = f"/notices/{notice_id}?token={token}"
    html = api.client.get(status).get_data(as_text=True)
    assert 'id="live"' in html and f"/notices/{notice_id}/challenge?token={token}" in html
    assert 'data-kind="next"' not in html  # the API's directions in the timeline: the page has its live check
    tok = csrf(api.client, "/report")  # the session's token (the status page has it in its meta tag)
    # the challenge needs the CSRF token and the right private token
    assert api.client.post(f"/notices/{notice_id}/challenge?token={token}").status_code == 400
    assert api.client.post(f"/notices/{notice_id}/challenge?token=wrong",
                           headers={"X-CSRFToken": tok}).status_code == 404
    ch = api.client.post(f"/notices/{notice_id}/challenge?token={token}", headers={"X-CSRFToken": tok})
    assert ch.status_code == 200 and ch.headers["Cache-Control"] == "no-store"
    ch_id = ch.get_json()["id"]
    with unit_of_work(api.rt.engine) as s:
        row = s.get(Challenge, ch_id)
        assert row is not None
        row.poses = list(LIVE_POSES)
    selfie = challenge_video(faces_dir / "obama.jpg", LIVE_POSES)
    # an unknown field, then no CSRF token: refused, the challenge still open
    r = post_file(api.client, f"/notices/{notice_id}/face?token={token}", "selfie.mp4", selfie, csrf_token=tok,
                  challenge=ch_id, extra="x")
    assert r.status_code == 422 and 'role="alert"' in r.get_data(as_text=True)
    r = post_file(api.client, f"/notices/{notice_id}/face?token={token}", "selfie.mp4", selfie, challenge=ch_id)
    assert r.status_code == 400
    r = post_file(api.client, f"/notices/{notice_id}/face?token={token}", "selfie.mp4", selfie, csrf_token=tok,
                  challenge=ch_id)
    assert r.status_code == 303, r.get_data(as_text=True)[:2000]
    assert "done=face-found" in r.headers["Location"]
    html = api.client.get(r.headers["Location"]).get_data(as_text=True)
    assert 'data-state="taken_down"' in html and 'id="live"' not in html
    assert api.call("GET", f"/v1/generations/{gen_id}", mal).get_json()["taken_down"] is True
    # the requester, signed in, sees the link to answer it from the generation's page
    sign_in(api.client, mal)
    gen_page = api.client.get(f"/generations/{gen_id}").get_data(as_text=True)
    assert f'href="/notices/{notice_id}/counter"' in gen_page


def _taken_down_by_review(api: Any) -> tuple[str, str, str, str]:
    """A notice a reviewer took down: (requester's token, generation id, notice id, admin's token)."""
    mal, gen_id = _released(api)
    notice_id, _token = _private_link(_report(api.client, generation_id=gen_id, **FORM))
    admin = api.account("root", "admin")
    r = api.call("POST", f"/v1/notices/{notice_id}/decision", admin,
                 json={"outcome": "take_down", "reason": "the face is the filer's brother"})
    assert r.status_code == 200
    return mal, gen_id, notice_id, admin


def test_a_reviewer_lists_reads_and_decides_from_the_pages(api) -> None:
    _mal, gen_id = _released(api)
    notice_id, token = _private_link(_report(api.client, generation_id=gen_id, **FORM))
    admin = api.account("root", "admin")
    client = api.app.test_client()
    sign_in(client, admin)
    home = client.get("/").get_data(as_text=True)
    assert 'href="/review/notices"' in home
    html = client.get("/review/notices").get_data(as_text=True)
    assert f'data-notice="{notice_id}"' in html
    assert f'data-notice="{notice_id}"' not in client.get("/review/notices?state=rejected").get_data(as_text=True)
    assert client.get("/review/notices?state=bogus").status_code == 422
    html = client.get(f"/review/notices/{notice_id}").get_data(as_text=True)
    assert FORM["contact"] in html and FORM["statement"] in html and 'id="facts"' in html
    assert 'id="outcome-take_down"' in html and 'id="outcome-reject"' in html and 'id="outcome-restore"' not in html
    assert client.get("/review/notices/ntc_0000000000000000").status_code == 404
    tok = csrf(client, f"/review/notices/{notice_id}")
    # bad decisions: the page again with what to fix, nothing changed
    for form, words in (({"outcome": "take_down", "reason": ""}, "reason"),
                        ({"outcome": "restore", "reason": "looks fine"}, "outcome must be one of"),
                        ({"reason": "looks fine"}, "outcome must be one of")):
        r = client.post(f"/review/notices/{notice_id}/decision", data={**form, "csrf_token": tok})
        assert r.status_code == 422 and words in r.get_data(as_text=True) and 'role="alert"' in r.get_data(as_text=True)
    r = client.post(f"/review/notices/{notice_id}/decision", data={"outcome": "reject", "reason": "not a likeness"})
    assert r.status_code == 400  # no CSRF token
    assert api.call("GET", f"/v1/notices/{notice_id}/status?token={token}").get_json()["state"] == "open"
    r = client.post(f"/review/notices/{notice_id}/decision",
                    data={"outcome": "reject", "reason": "not the person named", "csrf_token": tok})
    assert r.status_code == 303
    html = client.get(r.headers["Location"]).get_data(as_text=True)
    assert 'data-state="rejected"' in html and 'id="done"' in html and 'id="outcome-' not in html
    # decided: not in the queue any more (409 on the page as in the API)
    r = client.post(f"/review/notices/{notice_id}/decision",
                    data={"outcome": "take_down", "reason": "changed my mind", "csrf_token": tok})
    assert r.status_code == 409
    # the filer reads the decision by the private link
    html = api.client.get(f"/notices/{notice_id}?token={token}").get_data(as_text=True)
    assert 'data-state="rejected"' in html and "not the person named" in html


def test_who_may_see_the_review_pages_is_the_apis_answer(api) -> None:
    _mal, gen_id = _released(api)
    notice_id, _token = _private_link(_report(api.client, generation_id=gen_id, **FORM))
    anon = api.app.test_client()
    r = anon.get("/review/notices")
    assert r.status_code == 302 and r.headers["Location"].startswith("/sign-in?next=/review/notices")
    creator = api.app.test_client()
    sign_in(creator, api.account("cid"))
    assert creator.get("/review/notices").status_code == 403
    assert creator.get(f"/review/notices/{notice_id}").status_code == 403
    assert 'href="/review/notices"' not in creator.get("/").get_data(as_text=True)
    tok = csrf(creator, "/")
    r = creator.post(f"/review/notices/{notice_id}/decision",
                     data={"outcome": "take_down", "reason": "a creator tries", "csrf_token": tok})
    assert r.status_code == 403
    regulator = api.app.test_client()
    sign_in(regulator, api.account("reg", "regulator"))
    html = regulator.get(f"/review/notices/{notice_id}").get_data(as_text=True)
    assert FORM["statement"] in html and 'id="outcome-take_down"' not in html  # reads, does not decide
    tok = csrf(regulator, "/")
    r = regulator.post(f"/review/notices/{notice_id}/decision",
                       data={"outcome": "take_down", "reason": "a regulator tries", "csrf_token": tok})
    assert r.status_code == 403
    assert _notice(api, notice_id).state.value == "open"


def test_the_requester_answers_a_takedown_with_a_counter_notice(api) -> None:
    mal, gen_id, notice_id, admin = _taken_down_by_review(api)
    client = api.app.test_client()
    assert client.get(f"/notices/{notice_id}/counter").status_code == 302  # anonymous: sign in first
    other = api.app.test_client()
    sign_in(other, api.account("olly"))
    assert other.get(f"/notices/{notice_id}/counter").status_code == 404  # not theirs: as the API
    tok = csrf(other, "/")
    r = other.post(f"/notices/{notice_id}/counter",
                   data={"statement": "It is not anyone real at all.", "good_faith": "true", "csrf_token": tok})
    assert r.status_code == 404
    sign_in(client, mal)
    html = client.get(f"/generations/{gen_id}").get_data(as_text=True)
    assert f'href="/notices/{notice_id}/counter"' in html
    html = client.get(f"/notices/{notice_id}/counter").get_data(as_text=True)
    assert 'name="statement"' in html and 'data-state="taken_down"' in html
    tok = csrf(client, f"/notices/{notice_id}/counter")
    for form, words in (({"statement": "short", "good_faith": "true"}, "statement"),
                        ({"statement": "It is not anyone real at all."}, "good_faith")):
        r = client.post(f"/notices/{notice_id}/counter", data={**form, "csrf_token": tok})
        assert r.status_code == 422 and words in r.get_data(as_text=True) and "Nothing was filed" in r.get_data(
            as_text=True)
    r = client.post(f"/notices/{notice_id}/counter",
                    data={"statement": "It is not anyone real at all.", "good_faith": "true"})
    assert r.status_code == 400
    n = _notice(api, notice_id)
    assert n.state.value == "taken_down" and n.counter_statement is None
    r = client.post(f"/notices/{notice_id}/counter",
                    data={"statement": "It is not anyone real at all.", "good_faith": "true", "csrf_token": tok})
    assert r.status_code == 303
    html = client.get(r.headers["Location"]).get_data(as_text=True)
    assert 'data-state="countered"' in html and 'id="done"' in html and 'name="statement"' not in html
    r = client.post(f"/notices/{notice_id}/counter",
                    data={"statement": "And again, once more.", "good_faith": "true", "csrf_token": tok})
    assert r.status_code == 409  # not open to another
    # back in the queue: the reviewer now restores or keeps it down
    reviewer = api.app.test_client()
    sign_in(reviewer, admin)
    html = reviewer.get(f"/review/notices/{notice_id}").get_data(as_text=True)
    assert 'id="outcome-restore"' in html and 'id="outcome-keep_down"' in html
    assert "It is not anyone real at all." in html
    tok = csrf(reviewer, f"/review/notices/{notice_id}")
    r = reviewer.post(f"/review/notices/{notice_id}/decision",
                      data={"outcome": "restore", "reason": "the counter-notice holds", "csrf_token": tok})
    assert r.status_code == 303
    assert api.call("GET", f"/v1/generations/{gen_id}", mal).get_json()["taken_down"] is False


def test_each_notice_page_is_guarded_by_the_action_of_the_service_it_calls(api) -> None:
    """The same row of the authorization table as the API's endpoint: the pages grant nobody more."""
    from governance.authz import Action

    expected = {("/report", "GET"): Action.NOTICE_FILE, ("/report", "POST"): Action.NOTICE_FILE,
                ("/notices/<notice_id>", "GET"): Action.NOTICE_STATUS,
                ("/notices/<notice_id>/challenge", "POST"): Action.NOTICE_CHALLENGE,
                ("/notices/<notice_id>/face", "POST"): Action.NOTICE_FACE,
                ("/review/notices", "GET"): Action.NOTICE_LIST,
                ("/review/notices/<notice_id>", "GET"): Action.NOTICE_READ,
                ("/review/notices/<notice_id>/decision", "POST"): Action.NOTICE_DECIDE,
                ("/notices/<notice_id>/counter", "GET"): Action.NOTICE_COUNTER,
                ("/notices/<notice_id>/counter", "POST"): Action.NOTICE_COUNTER}
    found = {(r.rule, m): api.app.view_functions[r.endpoint] for r in api.app.url_map.iter_rules()
             if r.endpoint.startswith("pages.") for m in (r.methods or ()) if m in ("GET", "POST")}
    for key, action in expected.items():
        assert key in found, key
        assert found[key].page_guarded and found[key].authz_action is action, key
