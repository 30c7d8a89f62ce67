"""Defects found by the session-21 review (pages, guardians, notices, the log's v3 entries, SBR, workflows).
Each test fails while its defect stands; the report names them."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.test import encode_multipart

TESTDATA = Path(__file__).resolve().parents[3] / "shared" / "testdata"


def csrf(client: Any, path: str = "/sign-in") -> str:
    html = client.get(path).get_data(as_text=True)
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, html[:400]
    return m.group(1)


def post_file(client: Any, path: str, name: str, data: bytes, **form: str) -> Any:
    fields: MultiDict[str, Any] = MultiDict(form)
    fields.add("media", FileStorage(io.BytesIO(data), filename=name))
    boundary, body = encode_multipart(fields)
    return client.post(path, data=body, content_type=f"multipart/form-data; boundary={boundary}")


def test_sign_in_next_with_a_tab_is_not_an_open_redirect(api) -> None:
    """``/\\t/evil.example`` passes ``_safe_next`` (starts with one slash) and Werkzeug drops the tab when it
    writes the Location header: the browser is sent to ``//evil.example`` after signing in."""
    token = api.account("ada")
    for target in ("/\t/evil.example/x", "/\t\t/evil.example/x"):
        client = api.app.test_client()
        r = client.post("/sign-in", data={"token": token, "csrf_token": csrf(client), "next": target})
        assert r.status_code == 303, (target, r.status_code)
        location = r.headers["Location"]
        assert not location.startswith("//") and "evil.example" not in location.split("/")[2:3], (target, location)


def test_sign_in_next_with_a_newline_is_no_500(api) -> None:
    """A ``next`` holding a newline (from ``/sign-in?next=/%0A...``) makes the redirect raise: 500 after the
    session row was committed."""
    token = api.account("ada")
    client = api.app.test_client()
    r = client.post("/sign-in", data={"token": token, "csrf_token": csrf(client), "next": "/\r\nX-Injected: 1"})
    assert r.status_code < 500, r.status_code


def _released_with_an_owner(api, faces_dir):
    """Alice (live likeness) lets Bob use her face; Bob's video of her is released."""
    alice, bob = api.account("alice"), api.account("bob")
    lk = api.enroll_as_live(alice, faces_dir / "obama.jpg")
    assert api.call("PUT", f"/v1/likenesses/{lk['id']}/grants/bob", alice).status_code == 201
    gen = api.generate(bob, "a walk on the beach", [lk["id"]])
    done = api.wait(bob, gen["id"])
    assert done["state"] == "released", done["reasons"]
    return alice, bob, lk, gen["id"]


def _released_remix(api, bob, gen_id):
    """Bob's released remix of his generation ``gen_id``."""
    r = api.call("POST", "/v1/generations", bob, json={"prompt": "the same walk, remixed", "likenesses": [],
                                                       "remix_of": gen_id, "seed": 9})
    assert r.status_code == 202, r.get_json()
    remix = api.wait(bob, r.get_json()["id"])
    assert remix["state"] == "released", remix["reasons"]
    return remix


def _taken_down_on_a_notice(api, admin, generation_id, statement):
    """A notice filed for someone unable to file about ``generation_id``, decided ``take_down`` by ``admin``."""
    notice = api.call("POST", "/v1/notices", json={"contact": "x@example.org", "on_behalf_of": "unable_to_file",
                                                   "good_faith": True, "statement": statement,
                                                   "generation_id": generation_id}).get_json()
    assert api.call("POST", f"/v1/notices/{notice['id']}/decision", admin,
                    json={"outcome": "take_down", "reason": "looks bad"}).status_code == 200
    return notice


def test_an_owners_takedown_of_a_video_a_notice_took_down_survives_the_notices_restore(api, faces_dir) -> None:
    """A notice takes Bob's video of Alice down; Alice, in it, takes it down too (204); Bob counters and a reviewer
    restores. The restore republishes the video Alice took down (her takedown left no trace: ``take_down`` found
    it already down), and ``take_down_video`` deleted the file anyway: the generation reads ``released``, not
    taken down, its download is 410 "no longer stored", /v1/verify calls it released and ``log audit`` BROKEN."""
    admin = api.account("root", "admin")
    alice, bob, _lk, gen_id = _released_with_an_owner(api, faces_dir)
    notice = api.call("POST", "/v1/notices", json={"contact": "x@example.org", "on_behalf_of": "unable_to_file",
                                                   "good_faith": True, "statement": "never agreed to this",
                                                   "generation_id": gen_id}).get_json()
    r = api.call("POST", f"/v1/notices/{notice['id']}/decision", admin, json={"outcome": "take_down",
                                                                             "reason": "looks bad"})
    assert r.status_code == 200, r.get_json()
    assert api.call("DELETE", f"/v1/generations/{gen_id}", alice).status_code == 204  # the person in it
    r = api.call("POST", f"/v1/notices/{notice['id']}/counter", bob, json={"statement": "she agreed",
                                                                          "good_faith": True})
    assert r.status_code == 200, r.get_json()
    r = api.call("POST", f"/v1/notices/{notice['id']}/decision", admin, json={"outcome": "restore",
                                                                             "reason": "consent on file"})
    assert r.status_code in (200, 409), r.get_json()
    view = api.call("GET", f"/v1/generations/{gen_id}", alice).get_json()
    video = api.call("GET", f"/v1/generations/{gen_id}/video", bob)
    video.close()
    # never "released, not taken down" without its file; and the person's own takedown stands
    assert view["taken_down"] or video.status_code == 200, (view["taken_down"], video.status_code)
    assert view["taken_down"], "the owner's takedown was overridden by the notice's restore"


def test_a_restored_ancestor_no_longer_marks_its_remix_withdrawn(api, faces_dir) -> None:
    """A notice takes a video down: its released remix gets an ``ancestor_withdrawn`` log entry and record. The
    reviewer restores the video after a counter-notice: the remix still reads "an ancestor was withdrawn" in
    /v1/verify (record, log events, summary), with no entry saying the ancestor is back."""
    admin = api.account("root", "admin")
    _alice, bob, _lk, gen_id = _released_with_an_owner(api, faces_dir)
    remix = _released_remix(api, bob, gen_id)
    video = api.download(bob, remix["id"])
    notice = api.call("POST", "/v1/notices", json={"contact": "x@example.org", "on_behalf_of": "unable_to_file",
                                                   "good_faith": True, "statement": "never agreed to this",
                                                   "generation_id": gen_id}).get_json()
    assert api.call("POST", f"/v1/notices/{notice['id']}/decision", admin,
                    json={"outcome": "take_down", "reason": "looks bad"}).status_code == 200
    assert api.verify(video).get_json()["record"].get("ancestor_withdrawn")  # as designed, while it is down
    assert api.call("POST", f"/v1/notices/{notice['id']}/counter", bob,
                    json={"statement": "she agreed to it", "good_faith": True}).status_code == 200
    assert api.call("POST", f"/v1/notices/{notice['id']}/decision", admin,
                    json={"outcome": "restore", "reason": "consent on file"}).status_code == 200
    assert api.call("GET", f"/v1/generations/{gen_id}", bob).get_json()["taken_down"] is False
    record = api.verify(video).get_json()["record"]
    kinds = [e["kind"] for e in record.get("log_events") or []]
    assert not record.get("ancestor_withdrawn") or kinds[-1:] != ["ancestor_withdrawn"], (record.get(
        "ancestor_withdrawn"), kinds)


def _verify_page(api, path: Path) -> str:
    client = api.app.test_client()
    r = post_file(client, "/verify", path.name, path.read_bytes(), csrf_token=csrf(client, "/verify"))
    assert r.status_code == 200, r.status_code
    return r.get_data(as_text=True)


def test_the_verify_page_does_not_say_no_credential_was_found_when_a_valid_one_was(api) -> None:
    """CA.jpg carries a valid C2PA manifest from another signer: the page's own facts say "C2PA manifest: valid,
    but not signed by a trusted key", while its verdict says "Unknown origin: No content credential, watermark
    or fingerprint match was found". The verdict contradicts the facts under it (same for a remote manifest)."""
    for name in ("c2pa/CA.jpg", "field-reports/c2pa-remote-manifest.jpg"):
        html = _verify_page(api, TESTDATA / name)
        assert 'data-c2pa="Valid"' in html or 'data-c2pa="remote"' in html, name
        assert "No content credential" not in html, name


def test_the_verify_page_does_not_call_a_foreign_unreadable_manifest_a_tampered_consentgate_one(api) -> None:
    """c2pa-unknown-alg.jpg (c2pa-rs's no_alg.jpg, another tool's manifest with an algorithm the reader cannot
    process) gets the verdict "Tampered: This file carries a ConsentGate-style content credential that no longer
    matches its content: it was changed after it was signed" though nothing says it was ConsentGate's or that
    it changed (the API says "tampered or badly signed")."""
    html = _verify_page(api, TESTDATA / "field-reports" / "c2pa-unknown-alg.jpg")
    assert "ConsentGate-style" not in html and "it was changed after it was signed" not in html


def test_a_remix_a_notice_took_down_keeps_its_file_for_the_restore(api, faces_dir) -> None:
    """A notice takes a remix down; its file is kept (a counter-notice may restore it). Any later takedown
    anywhere (Carol takes down her own, unrelated video) runs ``sweep_withdrawn_files``, which deletes the file
    of every remix that is taken down, whatever took it down. The reviewer then restores the remix: it reads
    ``released``, not taken down, and its download is 410 "no longer stored" (``log audit``: BROKEN)."""
    admin, carol = api.account("root", "admin"), api.account("carol")
    _alice, bob, _lk, gen_id = _released_with_an_owner(api, faces_dir)
    remix = _released_remix(api, bob, gen_id)
    notice = _taken_down_on_a_notice(api, admin, remix["id"], "the remix is not agreed")
    lake = api.generate(carol, "a quiet lake at dawn")
    assert api.wait(carol, lake["id"])["state"] == "released"
    assert api.call("DELETE", f"/v1/generations/{lake['id']}", carol).status_code == 204  # unrelated
    assert api.call("POST", f"/v1/notices/{notice['id']}/counter", bob,
                    json={"statement": "she agreed to it", "good_faith": True}).status_code == 200
    assert api.call("POST", f"/v1/notices/{notice['id']}/decision", admin,
                    json={"outcome": "restore", "reason": "consent on file"}).status_code == 200
    view = api.call("GET", f"/v1/generations/{remix['id']}", bob).get_json()
    video = api.call("GET", f"/v1/generations/{remix['id']}/video", bob)
    video.close()
    assert view["taken_down"] or video.status_code == 200, (view["state"], view["taken_down"], video.status_code)


def test_a_link_cannot_put_its_own_words_in_the_pages_success_message(api) -> None:
    """``/me/face?done=...`` (and ``/characters/<id>?done=...``) prints whatever the link says in the green
    "Done: ..." alert of a signed-in page: content spoofing ("Done: your likeness was shared with everyone; call
    +1 555 0100 to undo.")."""
    token = api.account("ada")
    client = api.app.test_client()
    assert client.post("/sign-in", data={"token": token, "csrf_token": csrf(client), "next": "/"}).status_code == 303
    words = "your likeness was shared with everyone; call +1 555 0100 to undo"
    html = client.get("/me/face", query_string={"done": words}).get_data(as_text=True)
    assert words not in html


def test_pages_cannot_be_framed_by_another_site(api) -> None:
    """No ``X-Frame-Options`` or CSP ``frame-ancestors`` on the pages: the take-down, grant and revoke buttons
    of /me/face can be framed (clickjacking; SameSite=Lax keeps a cross-site frame signed out, a same-site one,
    e.g. another subdomain, is not)."""
    r = api.client.get("/sign-in")
    csp = r.headers.get("Content-Security-Policy", "")
    assert r.headers.get("X-Frame-Options") in ("DENY", "SAMEORIGIN") or "frame-ancestors" in csp, dict(r.headers)


def test_the_audit_asks_for_a_takedown_entry_even_before_the_first_one_was_logged(api, faces_dir) -> None:
    """The audit asks every takedown for its log entry only from the first version 3 entry on
    (``_event_problems``' ``first_event``), not from revision 0014: on a log that has releases and no event
    yet, a video taken down without its entry (here: the column set as a path that forgets the log would)
    passes the audit, ``intact``."""
    from governance.columns import utcnow
    from governance.db import unit_of_work
    from governance.generations.models import Generation
    from governance.log.services import translog

    carol = api.account("carol")
    gen = api.generate(carol, "a quiet lake at dawn")
    assert api.wait(carol, gen["id"])["state"] == "released"
    with unit_of_work(api.rt.engine) as s:
        s.get(Generation, gen["id"]).taken_down_at = utcnow()
    with unit_of_work(api.rt.engine) as s:
        report = translog.audit(s)
    assert not report.intact and any("no takedown entry" in p for p in report.problems), report.problems


def test_two_workers_sweeping_at_once_escalate_an_overdue_notice_once(pg_url, make_api) -> None:
    """Every worker runs ``escalate_overdue`` at each sweep, with no lock: a sweep that read the queue before
    another worker's sweep committed escalates the same notice again (PostgreSQL): two ``overdue`` events on the
    filer's timeline, every admin told twice, two ``notice:overdue`` audit rows. (The same unlocked
    read-modify-write of ``notice.events`` can drop a reviewer's decision event written meanwhile.)"""
    from datetime import timedelta

    from sqlmodel import Session, select

    from governance.columns import iso, utcnow
    from governance.db import unit_of_work
    from governance.generations.models import GenerationState
    from governance.models import AuditEvent
    from governance.notices.deadlines import escalate_overdue
    from governance.notices.models import Notice, OnBehalfOf
    from tests import factories

    api = make_api(database_url=pg_url)
    assert api.rt.engine.dialect.name == "postgresql"
    then = utcnow() - timedelta(hours=50)
    with unit_of_work(api.rt.engine) as s:
        factories.account(s, "root", "admin")
        bob, _ = factories.account(s, "bob")
        gen = factories.generation(s, bob.id, state=GenerationState.RELEASED)
        notice = Notice(token_hash="ab" * 32, contact="filer@example.org", on_behalf_of=OnBehalfOf.SELF,
                        statement="this is me", generation_id=gen.id, source="generation_id", created_at=then,
                        events=[{"at": iso(then), "kind": "filed", "text": "filed"}])
        s.add(notice)
        notice_id = notice.id
    late = Session(api.rt.engine)  # worker B's sweep: its read of the queue comes first ...
    try:
        stale = late.get(Notice, notice_id)  # kept: B's sweep holds the rows its query read
        assert stale is not None
        with unit_of_work(api.rt.engine) as s:  # ... worker A's sweep escalates and commits ...
            assert escalate_overdue(s) == [notice_id]
        escalate_overdue(late)  # ... then B's, from what it read
        late.commit()
    finally:
        late.close()
    with unit_of_work(api.rt.engine) as s:
        events = [e["kind"] for e in s.get(Notice, notice_id).events]
        audits = s.exec(select(AuditEvent).where(AuditEvent.subject == notice_id)).all()
    overdue_audits = [a.tag for a in audits if a.tag == "notice:overdue"]
    assert len(overdue_audits) == 1, overdue_audits
    assert events.count("overdue") == 1, events


def test_an_attribution_the_label_cannot_draw_is_refused_when_registered_not_at_every_release(api) -> None:
    """The label now refuses any character its font lacks (never empty boxes), but a character's attribution is
    accepted with any printable text: "Estudio Ñandú" registers (201), and then every video naming the character
    is generated and blocked at sealing with "internal error while sealing: WatermarkError: the label font
    (Pillow default) has no glyph for 'Ñú'", the requester's quota spent. The attribution rule becomes a deny,
    reported as an internal error."""
    studio, carol = api.account("studio", "rights_holder"), api.account("carol")
    r = api.call("POST", "/v1/characters", studio, json={"name": "Pingu Penguin", "rule": "attribution",
                                                         "attribution": "Estudio Ñandú"})
    if r.status_code == 422:
        return  # refused up front, nothing stored: fixed that way
    assert r.status_code == 201, r.get_json()
    done = api.wait(carol, api.generate(carol, "Pingu Penguin waddles on the ice")["id"])
    assert done["state"] == "released", done["reasons"]


def test_a_held_generations_page_does_not_poll_every_second_for_days(api, faces_dir) -> None:
    """The status fragment polls every second until ``final`` (released, blocked or taken down). A generation
    held for a person's draft approval waits up to 7 days (``GOVERNANCE_DRAFT_APPROVAL_TTL_S``), and an open tab
    asks ``/generations/<id>/status`` every second all that time (86,400 page renders a day per tab)."""
    alice, bob = api.account("alice"), api.account("bob")
    lk = api.enroll_as_live(alice, faces_dir / "obama.jpg")
    assert api.call("PUT", f"/v1/likenesses/{lk['id']}/grants/bob", alice).status_code == 201
    r = api.call("PUT", f"/v1/likenesses/{lk['id']}/restrictions", alice,
                 json={"categories": [], "phrases": [], "note": "", "draft_approval": True})
    assert r.status_code == 200, r.get_json()
    done = api.wait(bob, api.generate(bob, "a walk on the beach", [lk["id"]])["id"])
    assert done["state"] == "held", (done["state"], done["reasons"])
    client = api.app.test_client()
    assert client.post("/sign-in", data={"token": bob, "csrf_token": csrf(client), "next": "/"}).status_code == 303
    html = client.get(f"/generations/{done['id']}/status").get_data(as_text=True)
    assert 'hx-trigger="every 1s"' not in html


def test_a_majority_reason_is_one_printable_line_like_every_other_audited_reason(api) -> None:
    """``POST /v1/accounts/{ref}/majority`` takes any 3-500 characters as ``reason``: newlines and terminal
    escapes (``"ok\\n\\x1b[31mforged audit line"``) are stored in the audit row (200), where a takedown's
    reason must be one printable line (422)."""
    admin = api.account("root", "admin")
    api.account("gwen")
    r = api.call("POST", "/v1/accounts", admin, json={"name": "tim", "role": "creator", "guardian": "gwen"})
    assert r.status_code == 201, r.get_json()
    r = api.call("POST", "/v1/accounts/tim/majority", admin, json={"reason": "ok\n\x1b[31mforged audit line"})
    assert r.status_code == 422, r.get_json()


def test_a_rate_limited_verify_page_says_when_to_retry(make_api) -> None:
    """Past ``GOVERNANCE_VERIFY_PER_MINUTE`` the API's 429 carries ``Retry-After``; the verify page's 429 does not
    (the page's error handler drops the problem's headers)."""
    api = make_api(verify_per_minute=1)
    client = api.app.test_client()
    token = csrf(client, "/verify")
    img = (TESTDATA / "c2pa" / "no_manifest.jpg").read_bytes()
    assert post_file(client, "/verify", "a.jpg", img, csrf_token=token).status_code == 200
    r = post_file(client, "/verify", "a.jpg", img, csrf_token=token)
    assert r.status_code == 429 and r.headers.get("Retry-After"), (r.status_code, dict(r.headers))


def test_the_security_doc_no_longer_says_a_rotated_token_keeps_its_page_sessions() -> None:
    """Commit 5195435 ends the page sessions of a rotated or revoked token (pagesession.token_hash);
    docs/security.md's "Not covered yet" still says "Rotating an account token does not end its page sessions"."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "security.md").read_text()
    assert "Rotating an account token does not end its page sessions" not in text


def test_a_revocation_while_a_notice_holds_a_remix_down_is_not_undone_by_the_notices_restore(api, faces_dir) -> None:
    """A notice takes Bob's remix of Alice down. Alice then revokes Bob's grant: the withdrawal takes down the
    released remixes made under it, but only those not already down (``withdraw_likeness`` selects
    ``taken_down_at == None``), so nothing records it for this one. The reviewer restores the remix on Bob's
    counter-notice: a remix made under a grant Alice revoked is back up."""
    admin = api.account("root", "admin")
    alice, bob, lk, gen_id = _released_with_an_owner(api, faces_dir)
    remix = _released_remix(api, bob, gen_id)
    notice = _taken_down_on_a_notice(api, admin, remix["id"], "the remix is not agreed")
    assert api.call("DELETE", f"/v1/likenesses/{lk['id']}/grants/bob", alice).status_code == 204
    assert api.call("POST", f"/v1/notices/{notice['id']}/counter", bob,
                    json={"statement": "she agreed to it", "good_faith": True}).status_code == 200
    api.call("POST", f"/v1/notices/{notice['id']}/decision", admin,
             json={"outcome": "restore", "reason": "consent on file"})
    assert api.call("GET", f"/v1/generations/{remix['id']}", bob).get_json()["taken_down"] is True
