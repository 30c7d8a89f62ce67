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
    r = api.call("POST", "/v1/generations", bob, json={"prompt": "the same walk, remixed", "likenesses": [],
                                                       "remix_of": gen_id, "seed": 9})
    assert r.status_code == 202, r.get_json()
    remix = api.wait(bob, r.get_json()["id"])
    assert remix["state"] == "released", remix["reasons"]
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
    r = api.call("POST", "/v1/generations", bob, json={"prompt": "the same walk, remixed", "likenesses": [],
                                                       "remix_of": gen_id, "seed": 9})
    remix = api.wait(bob, r.get_json()["id"])
    assert remix["state"] == "released", remix["reasons"]
    notice = api.call("POST", "/v1/notices", json={"contact": "x@example.org", "on_behalf_of": "unable_to_file",
                                                   "good_faith": True, "statement": "the remix is not agreed",
                                                   "generation_id": remix["id"]}).get_json()
    assert api.call("POST", f"/v1/notices/{notice['id']}/decision", admin,
                    json={"outcome": "take_down", "reason": "looks bad"}).status_code == 200
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
