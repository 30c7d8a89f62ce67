"""Bad input gets a clear problem+json and leaves nothing behind."""

from __future__ import annotations

import io

import pytest
from sqlmodel import select

from governance.generations.models import Generation
from governance.likenesses.models import Likeness
from governance.models import AuditEvent


def _counts(api):
    with api.rt.session() as s:
        return (len(s.exec(select(Likeness)).all()), len(s.exec(select(Generation)).all()),
                len(s.exec(select(AuditEvent)).all()))


def _problem(r, status):
    assert r.status_code == status, (r.status_code, r.data[:300])
    assert r.mimetype == "application/problem+json"
    body = r.get_json()
    assert body["status"] == status and body["title"] and body["detail"] and body["type"].startswith("https://")
    return body


def _upload(api, token, *files):
    return api.multipart("/v1/likenesses", token, list(files))


def test_upload_rejections_leave_nothing(api, faces_dir):
    alice = api.account("alice")
    before = _counts(api)
    _problem(_upload(api, alice, ("notes.txt", b"just some text, not media at all")), 415)
    _problem(_upload(api, alice, ("empty.jpg", b"")), 422)
    _problem(_upload(api, alice, ("broken.jpg", b"\xff\xd8\xff\xe0" + b"\x00" * 500)), 415)
    _problem(_upload(api, alice, ("broken.mp4", b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 500)), 415)
    _problem(api.call("POST", "/v1/likenesses", alice, data={}, content_type="multipart/form-data"), 422)
    # a photo with no face, and one with several people
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (320, 240), (90, 140, 200)).save(buf, "PNG")
    body = _problem(_upload(api, alice, ("sky.png", buf.getvalue())), 422)
    assert body["reason"] == "no_face"
    body = _problem(_upload(api, alice, ("group.jpg", (faces_dir / "two_people.jpg").read_bytes())), 422)
    assert body["reason"] == "multiple_people"
    body = _problem(_upload(api, alice, ("a.jpg", (faces_dir / "obama.jpg").read_bytes()),
                            ("b.jpg", (faces_dir / "biden2.jpg").read_bytes())), 422)
    assert body["reason"] == "multiple_people"
    assert _counts(api) == before
    assert not any(api.rt.settings.quarantine_dir.iterdir())


def test_oversized_upload(make_api):
    api = make_api(max_upload_bytes=100_000)
    alice = api.account("alice")
    before = _counts(api)
    body = _problem(_upload(api, alice, ("big.jpg", b"\xff\xd8\xff" + b"0" * 200_000)), 413)
    assert "100000 bytes" in body["detail"]
    _problem(api.verify(b"\x00\x00\x00\x18ftypmp42" + b"0" * 200_000), 413)
    assert _counts(api) == before


def test_auth_and_roles(api, faces_dir):
    alice, bob = api.account("alice"), api.account("bob")
    _problem(api.call("GET", "/v1/notifications"), 401)
    r = api.call("GET", "/v1/notifications", "cg_not-a-real-token")
    _problem(r, 401)
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    # a creator may not register characters; a regulator may not generate
    _problem(api.call("POST", "/v1/characters", alice, json={"name": "X", "rule": "deny"}), 403)
    reg = api.account("reg", "regulator")
    _problem(api.call("POST", "/v1/generations", reg, json={"prompt": "hi"}), 403)
    # someone else's likeness answers as an unknown one would (test_authz_table.py has the whole table)
    lk = api.enroll(alice, faces_dir / "obama.jpg")
    before = _counts(api)
    _problem(api.call("PATCH", f"/v1/likenesses/{lk['id']}", bob, json={"mode": "everyone"}), 404)
    _problem(api.call("PUT", f"/v1/likenesses/{lk['id']}/grants/bob", bob), 404)
    _problem(api.call("DELETE", f"/v1/likenesses/{lk['id']}", bob), 404)
    # someone else's generation is invisible
    gen = api.generate(alice, "a lake", [lk["id"]])
    _problem(api.call("GET", f"/v1/generations/{gen['id']}", bob), 404)
    _problem(api.call("DELETE", f"/v1/generations/{gen['id']}", bob), 404)
    _problem(api.call("GET", f"/v1/generations/{gen['id']}/video", bob), 404)
    api.rt.pipeline.wait_idle()
    assert _counts(api)[0] == before[0]


@pytest.mark.parametrize(
    "method,path,body,status",
    [
        ("GET", "/v1/generations/gen_nope", None, 404),
        ("GET", "/v1/likenesses/lk_nope", None, 404),
        ("PATCH", "/v1/likenesses/lk_nope", {"mode": "everyone"}, 404),
        ("PUT", "/v1/likenesses/lk_nope/grants/bob", None, 404),
        ("DELETE", "/v1/generations/gen_nope", None, 404),
        ("POST", "/v1/generations", {"prompt": "x", "likenesses": [42]}, 422),
        ("POST", "/v1/generations", {"prompt": ""}, 422),
        ("POST", "/v1/generations", {"prompt": "x" * 2001}, 422),
        ("POST", "/v1/generations", {"prompt": "x", "seed": -1}, 422),
        ("POST", "/v1/generations", {"prompt": "x", "seed": "7"}, 422),
        ("POST", "/v1/generations", {"prompt": "x", "colour": "red"}, 422),
        ("POST", "/v1/generations", ["not", "an", "object"], 400),
        ("DELETE", "/v1/contacts/nobody", None, 404),
        ("GET", "/v1/nothing-here", None, 404),
    ],
)
def test_bad_requests(api, method, path, body, status):
    bob = api.account("bob")
    before = _counts(api)
    _problem(api.call(method, path, bob, json=body), status)
    assert _counts(api) == before


def test_bad_likeness_changes(api, faces_dir):
    alice = api.account("alice")
    api.account("bob")
    lk = api.enroll(alice, faces_dir / "obama.jpg")
    before = _counts(api)
    _problem(api.call("PATCH", f"/v1/likenesses/{lk['id']}", alice, json={"mode": "sometimes"}), 422)
    _problem(api.call("PATCH", f"/v1/likenesses/{lk['id']}", alice, json={"owner": "bob"}), 422)
    _problem(api.call("PUT", f"/v1/likenesses/{lk['id']}/grants/ghost", alice), 404)
    _problem(api.call("DELETE", f"/v1/likenesses/{lk['id']}/grants/bob", alice), 404)
    _problem(api.call("PUT", f"/v1/likenesses/{lk['id']}/grants/alice", alice), 422)
    assert _counts(api) == before
    api.call("PATCH", f"/v1/likenesses/{lk['id']}", alice, json={"mode": "only_me"})
    _problem(api.call("PUT", f"/v1/likenesses/{lk['id']}/grants/bob", alice), 422)


def test_bad_characters(api):
    studio = api.account("studio", "rights_holder")
    for body in ({"name": "", "rule": "deny"}, {"name": "X", "rule": "sometimes"},
                 {"name": "X", "rule": "licensees_only", "licensees": ["ghost"]},
                 {"name": "X", "rule": "deny", "aliases": "not-a-list"}, {"name": "X", "rule": "deny", "extra": 1}):
        _problem(api.call("POST", "/v1/characters", studio, json=body), 422)
    with api.rt.session() as s:
        from governance.characters.models import Character

        assert s.exec(select(Character)).all() == []


def test_verify_rejections(api):
    _problem(api.verify(b"", "empty.mp4"), 422)
    _problem(api.verify(b"hello, this is text", "notes.txt"), 415)
    _problem(api.call("POST", "/v1/verify", data={}, content_type="multipart/form-data"), 422)
    _problem(api.call("POST", "/v1/verify", "cg_bad", data={}, content_type="multipart/form-data"), 401)


def test_verify_refuses_overlong_videos_before_decoding(make_api, faces_dir):
    api = make_api(verify_max_seconds=5.0)
    body = _problem(api.verify((faces_dir / "short_hamilton_clip.mp4").read_bytes()), 422)
    assert "9.2 s" in body["detail"] and "at most 5 s" in body["detail"] and body["limit"] == "seconds"


def test_verify_is_rate_limited_per_client(make_api, c2pa_dir):
    api = make_api(verify_per_minute=2)
    data = (c2pa_dir / "no_manifest.jpg").read_bytes()
    assert api.verify(data, "a.jpg").status_code == 200
    assert api.verify(data, "a.jpg").status_code == 200
    r = api.verify(data, "a.jpg")
    body = _problem(r, 429)
    assert int(r.headers["Retry-After"]) >= 1 and "2 verifications a minute" in body["detail"]
    # another client (an account) has its own allowance
    token = api.account("reg", "regulator")
    assert api.multipart("/v1/verify", token, [("a.jpg", data)]).status_code == 200


def test_videos_marked_before_a_key_rotation_still_verify(make_api, faces_dir, tmp_path, monkeypatch):
    import os

    import media.video

    api = make_api()
    bob = api.account("bob")
    done = api.wait(bob, api.generate(bob, "snow in the forest")["id"])
    data = api.download(bob, done["id"])
    keys = api.rt.settings.keys_dir
    old = (keys / "watermark.key").read_bytes()
    # rotate: the old key is retired, a new one takes its place (a fresh runtime reads the key folder)
    (keys / "watermark-retired").mkdir()
    (keys / "watermark-retired" / "2026-11.key").write_bytes(old)
    os.unlink(keys / "watermark.key")
    rotated = make_api(data_dir=api.rt.settings.data_dir)
    assert rotated.rt.keys.watermark_key.secret != old
    decodes = []
    real = media.video.iter_planes  # what verification decodes with (planes, no RGB conversion)
    monkeypatch.setattr(media.video, "iter_planes", lambda *a, **kw: decodes.append(1) or real(*a, **kw))
    report = rotated.verify(data).get_json()
    wm = report["watermark"]
    assert wm["found"] and wm["payload"] == done["content_id"] and wm["keys_tried"] == 2
    # one decode served both keys and the fingerprint
    assert len(decodes) == 1 and report["fingerprint"]["matches"][0]["content_id"] == done["content_id"]
    # without the retired key the same video reads as unmarked, never as someone else's payload
    (keys / "watermark-retired" / "2026-11.key").unlink()
    assert make_api(data_dir=api.rt.settings.data_dir).verify(data).get_json()["watermark"]["found"] is False


def test_verify_reads_what_it_can_of_a_video_too_small_to_watermark(make_api, tmp_path):
    """Each reader of the one decode fails alone: a 48x48 video is below the watermark's smallest frame,
    so the report says why the watermark was not checked, and the fingerprint is still searched."""
    import numpy as np

    from media.video import Clip, write_video

    frames = np.random.default_rng(3).integers(0, 255, (24, 48, 48, 3), dtype=np.uint8)
    write_video(tmp_path / "tiny.mp4", Clip(frames, 24.0))
    report = make_api().verify((tmp_path / "tiny.mp4").read_bytes()).get_json()
    assert report["watermark"]["checked"] is False and "at least 64x64" in report["watermark"]["error"]
    assert report["fingerprint"] == {"checked": True, "matches": []}


def test_the_public_log_answers_proofs_and_names_bad_requests(api):
    from provenance import merkle

    bob = api.account("bob")
    for prompt in ("snow in the forest", "rain over the city", "a desert at noon"):
        assert api.wait(bob, api.generate(bob, prompt)["id"])["state"] == "released"
    head = api.call("GET", "/v1/log").get_json()
    assert head["tree_size"] == 3
    entry = api.call("GET", "/v1/log/entries/1").get_json()
    proof = [bytes.fromhex(h) for h in entry["inclusion_proof"]]
    assert merkle.verify_inclusion(bytes.fromhex(entry["leaf_hash"]), 1, 3, proof, bytes.fromhex(head["root_hash"]))
    c = api.call("GET", "/v1/log/consistency?old_size=2").get_json()
    assert merkle.verify_consistency(2, 3, bytes.fromhex(c["old_root_hash"]), bytes.fromhex(head["root_hash"]),
                                     [bytes.fromhex(h) for h in c["consistency_proof"]])
    first = api.call("GET", "/v1/log/entries/0?tree_size=1").get_json()  # against the head of a 1-entry log
    assert first["inclusion_proof"] == [] and first["root_hash"] == first["leaf_hash"]
    for path, status, words in [
        ("/v1/log/entries/3", 404, "no log entry 3"),
        ("/v1/log/entries/0?tree_size=9", 422, "tree_size must be between 1 and the log's size 3"),
        ("/v1/log/entries/0?tree_size=two", 422, "tree_size must be a whole number"),
        ("/v1/log/entries/0?tree_size=%C2%B2", 422, "tree_size must be a whole number"),  # '²' is no number
        ("/v1/log/consistency", 422, "send old_size"),
        ("/v1/log/consistency?old_size=4", 422, "old size must be between 1 and 3"),
    ]:
        assert words in _problem(api.call("GET", path), status)["detail"], path
