"""Verification of third-party files, and the command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from governance.cli import main


@pytest.mark.parametrize(
    "name,state",
    [("video1.mp4", "Valid"), ("video1_no_manifest.mp4", "absent"), ("CA.jpg", "Valid"),
     ("E-sig-CA.jpg", "Invalid"), ("no_manifest.jpg", "absent")],
)
def test_third_party_files_over_http(api, c2pa_dir, name, state):
    r = api.verify((c2pa_dir / name).read_bytes(), name)
    assert r.status_code == 200, r.get_json()
    report = r.get_json()
    assert report["c2pa"]["state"] == state
    assert report["record"] is None
    if state == "Invalid":
        assert report["c2pa"]["failures"]
    if name == "CA.jpg":
        assert report["c2pa"]["ingredients"]


def test_cli_accounts_and_offline_verify(tmp_path, c2pa_dir, capsys):
    var = str(tmp_path / "var")
    assert main(["--data-dir", var, "init"]) == 0
    assert main(["--data-dir", var, "init"]) == 0  # idempotent
    capsys.readouterr()
    assert main(["--data-dir", var, "accounts", "create", "alice", "--role", "creator"]) == 0
    token = capsys.readouterr().out.strip().splitlines()[-1]
    assert token.startswith("cg_") and len(token) > 30
    assert main(["--data-dir", var, "accounts", "create", "alice", "--role", "creator"]) == 1
    assert "already exists" in capsys.readouterr().err

    assert main(["--data-dir", var, "verify", str(c2pa_dir / "video1.mp4"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["c2pa"]["state"] == "Valid" and report["watermark"]["checked"] is True
    assert main(["--data-dir", var, "verify", str(c2pa_dir / "E-sig-CA.jpg")]) == 2
    out = capsys.readouterr().out
    assert "Invalid" in out and "summary:" in out


def test_cli_report_is_the_http_report(make_api, c2pa_dir, tmp_path, capsys):
    """``consentgate verify FILE --json`` on the service's data dir prints the very report ``POST /v1/verify`` gives
    for the same file: a release (manifest, watermark, record, log entry with its signed head, fingerprint), the
    same release remuxed (no manifest: found by its watermark) and a third party's file. (The CLI skips what an
    offline check does not need, issue 12: this holds it to the same answer.)"""
    from tests.media_tools import remux

    api = make_api(duration_s=2.0, frame_size=256)
    bob = api.account("bob")
    gen = api.generate(bob, "a lighthouse at dusk")
    assert api.wait(bob, gen["id"])["state"] == "released"
    release = tmp_path / "release.mp4"
    release.write_bytes(api.download(bob, gen["id"]))
    reposted = tmp_path / "reposted.mp4"
    remux(release, reposted)
    var = str(api.rt.settings.data_dir)
    api.settle()  # the release's job may still be keeping its signed head after the state turned "released"
    heads_kept = _heads_kept(api)
    for path in (release, reposted, c2pa_dir / "video1.mp4"):
        r = api.verify(path.read_bytes(), path.name)
        assert r.status_code == 200, r.get_json()
        over_http = r.get_json()
        assert main(["--data-dir", var, "verify", str(path), "--json"]) == 0
        cli = json.loads(capsys.readouterr().out)
        assert cli == over_http, path.name
        if path != c2pa_dir / "video1.mp4":
            assert over_http["watermark"]["found"] and over_http["record"]["generation_id"] == gen["id"]
            assert over_http["fingerprint"]["checked"] and over_http["record"]["log_entry"]["signed_tree_head"]
    assert over_http["c2pa"]["state"] == "Valid" and over_http["record"] is None
    assert _heads_kept(api) == heads_kept  # the CLI handed out the kept head: it signed and wrote nothing


def _heads_kept(api) -> int:
    from sqlmodel import func, select

    from governance.log.models import LogHead

    with api.rt.session() as s:
        return int(s.exec(select(func.count()).select_from(LogHead)).one())


def test_cli_one_line_errors(tmp_path):
    env_run = [sys.executable, "-m", "governance", "--data-dir", str(tmp_path / "v")]
    r = subprocess.run([*env_run, "verify", str(tmp_path / "missing.mp4")], capture_output=True, text=True)
    assert r.returncode != 0 and r.stderr.strip().count("\n") == 0 and "no such file" in r.stderr
    (tmp_path / "junk.mp4").write_bytes(b"junk junk junk junk")
    r = subprocess.run([*env_run, "verify", str(tmp_path / "junk.mp4")], capture_output=True, text=True)
    assert r.returncode == 1 and r.stderr.strip().count("\n") == 0, r.stderr
    r = subprocess.run([*env_run, "accounts", "create", "Bad Name!", "--role", "creator"], capture_output=True,
                       text=True)
    assert r.returncode == 1 and "account names" in r.stderr and "Traceback" not in r.stderr


def test_cli_watermark_embed_and_detect(tmp_path, faces_dir, capsys):
    import numpy as np

    from media.video import Clip, write_video
    from tests.media_tools import remux

    var = str(tmp_path / "var")
    assert main(["--data-dir", var, "init"]) == 0
    rng = np.random.default_rng(3)
    base = np.linspace(40, 200, 256, dtype=np.float32)[None, :, None] * np.ones((48, 256, 256, 3), np.float32)
    frames = np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8)
    src, out, copy = tmp_path / "in.mp4", tmp_path / "out.mp4", tmp_path / "copy.mp4"
    write_video(src, Clip(frames, 24.0))
    capsys.readouterr()
    assert main(["--data-dir", var, "watermark", "embed", str(src), str(out), "--payload", "00112233445566ff"]) == 0
    remux(out, copy)
    assert main(["--data-dir", var, "watermark", "detect", str(copy), "--json"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["payload"] == "00112233445566ff"
    assert main(["--data-dir", var, "watermark", "detect", str(src)]) == 3
    assert "no ConsentGate watermark" in capsys.readouterr().out

    # bad input: one clear line each, never a silent "not found"
    (tmp_path / "empty.mp4").write_bytes(b"")
    for argv, needle in [
        (["embed", str(src), str(tmp_path / "x.mp4"), "--payload", "abc"], "16 hex digits"),
        (["embed", str(src), str(tmp_path / "x.mp4"), "--payload", "zz112233445566ff"], "16 hex digits"),
        (["detect", str(tmp_path / "empty.mp4")], "is empty"),
        (["detect", str(faces_dir / "obama.jpg")], "is an image"),
        (["detect", str(tmp_path / "nope.mp4")], "no such file"),
    ]:
        with pytest.raises(SystemExit) as e:
            main(["--data-dir", var, "watermark", *argv])
        assert needle in str(e.value)
    assert not (tmp_path / "x.mp4").exists()
    with pytest.raises(SystemExit) as e:
        main(["--data-dir", str(tmp_path / "nokeys"), "watermark", "detect", str(src)])
    assert "no watermark key" in str(e.value)


def test_cli_scan_finds_enrolled_people(make_api, faces_dir, tmp_path, capsys):
    api = make_api()
    alice = api.account("alice")
    lk = api.enroll(alice, faces_dir / "obama.jpg")
    var = str(api.rt.settings.data_dir)
    assert main(["--data-dir", var, "scan", str(faces_dir / "obama2.jpg"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [m["likeness"] for m in report["matches"]] == [lk["id"]] and report["enrolled"] == 1
    assert main(["--data-dir", var, "scan", str(faces_dir / "biden2.jpg")]) == 0
    assert "no enrolled likeness found" in capsys.readouterr().out
    assert main(["--data-dir", var, "scan", str(faces_dir / "obama2.jpg"), "--thorough", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["keyframes"] == 1 and [m["likeness"] for m in report["matches"]] == [lk["id"]]
    (tmp_path / "junk.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x01" * 300)
    for bad in (tmp_path / "junk.mp4", tmp_path / "missing.mp4"):
        with pytest.raises(SystemExit) as e:
            main(["--data-dir", var, "scan", str(bad)])
        assert str(e.value).startswith("consentgate scan: ")


def test_selfie_video_of_a_still_photo_is_refused(api, faces_dir, tmp_path):
    """Liveness-lite: a replayed still photo shows no change of head pose."""
    import cv2
    import numpy as np

    from media.video import Clip, load_image, write_video

    face = cv2.resize(load_image(faces_dir / "obama.jpg"), (320, 400))
    write_video(tmp_path / "still.mp4", Clip(np.repeat(face[None], 48, axis=0), 24.0))
    alice = api.account("alice")
    r = api.multipart("/v1/likenesses", alice, [("selfie.mp4", (tmp_path / "still.mp4").read_bytes())])
    assert r.status_code == 422 and r.mimetype == "application/problem+json"
    assert r.get_json()["reason"] == "single_pose"
    assert api.call("GET", "/v1/likenesses", alice).get_json()["likenesses"] == []


def test_cli_log_audit_finds_an_edited_entry(make_api, capsys):
    api = make_api()
    bob = api.account("bob")
    for prompt in ("snow in the forest", "rain over the city"):
        assert api.wait(bob, api.generate(bob, prompt)["id"])["state"] == "released"
    var = str(api.rt.settings.data_dir)
    assert main(["--data-dir", var, "log", "audit"]) == 0
    out = capsys.readouterr().out
    assert "2 entries" in out and "hash chain:  intact" in out and "Merkle tree: intact" in out
    with api.rt.engine.begin() as conn:  # someone rewrites history in the database
        conn.exec_driver_sql("UPDATE logentry SET content_id = 'ffffffffffffffff' WHERE \"index\" = 0")
    assert main(["--data-dir", var, "log", "audit", "--json"]) == 2
    report = json.loads(capsys.readouterr().out)
    assert report["hash_chain_intact"] is False and report["merkle_tree_intact"] is True and report["tree_size"] == 2
    with api.rt.engine.begin() as conn:  # and covers it up by rewriting the entry hash too
        conn.exec_driver_sql("UPDATE logentry SET entry_hash = '" + "ab" * 32 + "' WHERE \"index\" = 0")
    assert main(["--data-dir", var, "log", "audit", "--json"]) == 2
    assert json.loads(capsys.readouterr().out)["merkle_tree_intact"] is False  # the tree still remembers


def test_cli_exit_codes_as_documented(tmp_path, monkeypatch, capsys):
    """README, "Exit codes": 2 for a command line or a setting that cannot be used, 1 (one line) for a failure."""
    from governance.cli import EXIT_FAILED, EXIT_FINDING, EXIT_NO_WATERMARK, EXIT_OK

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    codes = readme.split("Exit codes (")[1].split("\n\n")[0]
    for code, words in ((EXIT_OK, "done"), (EXIT_FAILED, "the\ncommand failed"), (EXIT_FINDING, "a finding"),
                        (EXIT_NO_WATERMARK, "`watermark detect` found no watermark")):
        assert f"`{code}` {words}" in codes
    var = str(tmp_path / "var")
    with pytest.raises(SystemExit) as usage:
        main(["--data-dir", var, "frobnicate"])
    assert usage.value.code == EXIT_FINDING
    capsys.readouterr()
    monkeypatch.setenv("GOVERNANCE_QUEUE", "carrier-pigeon")
    assert main(["--data-dir", var, "log", "audit"]) == EXIT_FINDING
    err = capsys.readouterr().err
    assert err.startswith("consentgate: configuration error: queue must be one of") and err.count("\n") == 1
    monkeypatch.delenv("GOVERNANCE_QUEUE")
    assert main(["--data-dir", var, "log", "audit"]) == EXIT_OK
    (tmp_path / "junk.mp4").write_bytes(b"junk junk junk junk")
    assert main(["--data-dir", var, "verify", str(tmp_path / "junk.mp4")]) == EXIT_FAILED
    assert capsys.readouterr().err.count("\n") == 1


def test_worker_output_and_settings_repr_hide_url_passwords(tmp_path):
    """Issue 18: ``consentgate worker`` printed ``redis_url`` as given, password included. (A process of its own:
    the worker configures logging for the whole process.)"""
    import os
    import secrets

    env = {**os.environ, "GOVERNANCE_QUEUE": "redis", "GOVERNANCE_QUEUE_PREFIX": f"cg-test-{secrets.token_hex(4)}",
           "GOVERNANCE_REDIS_URL": "redis://:hunter2@127.0.0.1:6379/0"}  # this Redis takes any password
    r = subprocess.run([sys.executable, "-m", "governance", "--data-dir", str(tmp_path / "var"), "worker",
                        "--metrics-port", "0", "--max-jobs", "0"], capture_output=True, text=True, env=env,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert "hunter2" not in r.stdout + r.stderr
    assert "on redis redis://:***@127.0.0.1:6379/0 " in r.stdout and "processed 0 job(s)" in r.stdout


def test_cli_db_revision_and_downgrade(tmp_path, capsys):
    from governance.db import head_revision

    var = str(tmp_path / "var")
    with pytest.raises(SystemExit, match="no database at"):
        main(["--data-dir", var, "db", "revision"])
    assert not (tmp_path / "var" / "consentgate.db").exists()  # reading the revision created nothing
    assert main(["--data-dir", var, "init"]) == 0
    capsys.readouterr()
    head = head_revision()
    assert main(["--data-dir", var, "db", "revision"]) == 0
    assert capsys.readouterr().out.strip() == f"database at revision {head}; newest {head} (up to date)"
    with pytest.raises(SystemExit, match="pass --yes"):
        main(["--data-dir", var, "db", "downgrade", "0001"])
    assert main(["--data-dir", var, "db", "downgrade", "0001", "--yes"]) == 0
    assert capsys.readouterr().out.strip() == "database at revision 0001"
    assert main(["--data-dir", var, "db", "revision"]) == 0
    assert "(behind: the next start migrates it)" in capsys.readouterr().out


@pytest.fixture
def served(make_api):
    """An API served over real HTTP on a free local port (werkzeug's threaded server), and its base URL."""
    import threading

    from werkzeug.serving import make_server

    api = make_api(duration_s=2.0, frame_size=256)
    server = make_server("127.0.0.1", 0, api.app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield api, f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(5)


def test_cli_verify_at_a_running_service_prints_its_report(served, c2pa_dir, tmp_path, capsys):
    """``consentgate verify FILE --url URL`` (issue 12, goal 4b; docs/adr/0017): the report the service gives for
    the file, as JSON and as text, without a data dir here."""
    api, url = served
    bob = api.account("bob")
    gen = api.generate(bob, "a lighthouse at dusk")
    assert api.wait(bob, gen["id"])["state"] == "released"
    release = tmp_path / "release.mp4"
    release.write_bytes(api.download(bob, gen["id"]))
    nowhere = str(tmp_path / "no-data-dir")
    for path in (release, c2pa_dir / "video1.mp4"):
        over_http = api.verify(path.read_bytes(), path.name).get_json()
        assert main(["--data-dir", nowhere, "verify", str(path), "--url", url + "/", "--json"]) == 0
        assert json.loads(capsys.readouterr().out) == over_http, path.name
    assert main(["--data-dir", nowhere, "verify", str(release), "--url", url]) == 0
    text = capsys.readouterr().out
    assert f"generation {gen['id']} (released)" in text and "content id" in text
    assert not (tmp_path / "no-data-dir").exists()  # nothing made here


def test_cli_verify_at_a_service_imports_only_a_client(served, c2pa_dir, tmp_path):
    """What keeps ``consentgate verify --url`` a client's start-up (issue 12, goal 4b; docs/adr/0017): a fresh
    process that asks the service prints the report without importing the settings, the ORM, the media or
    crypto libraries the service needs, nor a third-party HTTP client (each costs tens of milliseconds before the
    first byte is sent)."""
    import os

    _, url = served
    probe = ("import sys\n"
             "from governance.cli import main\n"
             f"code = main(['verify', {str(c2pa_dir / 'video1.mp4')!r}, '--url', {url!r}])\n"
             "print('MODULES', ' '.join(sorted(sys.modules)))\n"
             "sys.exit(code)\n")
    run = subprocess.run([sys.executable, "-c", probe], cwd=Path(__file__).resolve().parents[2],
                         capture_output=True, text=True, timeout=120,
                         env={**os.environ, "GOVERNANCE_DATA_DIR": str(tmp_path / "no-data-dir")})
    assert run.returncode == 0, run.stderr
    assert "summary:" in run.stdout
    loaded = set(run.stdout.rsplit("MODULES ", 1)[1].split())
    heavy = {"sqlalchemy", "sqlmodel", "numpy", "av", "cv2", "c2pa", "cryptography", "PIL", "governance.config",
             "governance.errors", "media.errors", "urllib3", "requests"}
    assert not heavy & loaded, sorted(heavy & loaded)
    assert "http.client" in loaded  # the client it does use (ADR 0017)
    assert not (tmp_path / "no-data-dir").exists()


def test_cli_verify_at_a_service_sends_any_file_name(served, c2pa_dir, tmp_path, capsys):
    """The file's name goes in the multipart header (RFC 7578), escaped as HTML's form encoding does: quotes, a
    line break and non-ASCII letters neither break the upload nor change the report."""
    api, url = served
    source = c2pa_dir / "video1.mp4"
    expected = api.verify(source.read_bytes(), source.name).get_json()
    for name in ('say "cheese".mp4', "line\nbreak.mp4", "vidéo-视频.mp4"):
        path = tmp_path / name
        path.write_bytes(source.read_bytes())
        assert main(["verify", str(path), "--url", url, "--json"]) == 0, name
        assert json.loads(capsys.readouterr().out) == expected, name


def test_cli_verify_at_the_real_server_shows_its_413_when_it_stops_reading(tmp_path):
    """``consentgate serve`` (waitress) answers an upload over GOVERNANCE_MAX_UPLOAD_BYTES with a 413 problem as soon
    as the declared length is over, and closes without reading the rest: the client's send then fails with a broken
    pipe, and the line must still be the service's answer, not "cannot reach" (the upload is streamed from disk;
    sparse here, so nothing large is written)."""
    from tests.servers import start, stop

    proc, port, _ = start(tmp_path, settings={"GOVERNANCE_MAX_UPLOAD_BYTES": str(2**20)})
    try:
        big = tmp_path / "big.mp4"
        with big.open("wb") as f:
            f.truncate(256 * 2**20)
        with pytest.raises(SystemExit) as e:
            main(["verify", str(big), "--url", f"http://127.0.0.1:{port}"])
        msg = str(e.value.code)
        assert msg.startswith(f"consentgate verify: http://127.0.0.1:{port} answered 413: "), msg
        assert "\n" not in msg
    finally:
        stop(proc)


def test_cli_verify_at_a_service_fails_in_one_line(served, tmp_path):
    """A service that cannot be reached, an address that is not HTTP and a problem answer each end in one line
    naming what went wrong (exit 1, nothing printed as a report)."""
    import socket

    _, url = served
    text = tmp_path / "notes.txt"
    text.write_text("not a video")
    video = tmp_path / "x.mp4"
    video.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64)
    big = tmp_path / "big.mp4"  # over the service's 8 MiB upload limit (sparse: no disk written)
    with big.open("wb") as f:
        f.write(video.read_bytes())
        f.truncate(64 * 2**20)
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    cases = [
        (["verify", str(video), "--url", closed], f"cannot reach {closed}"),
        (["verify", str(video), "--url", "ftp://example.org"], "--url must be an http:// or https:// address"),
        (["verify", str(video), "--url", "http://"], "--url must be an http:// or https:// address"),
        (["verify", str(text), "--url", url], f"{url} answered 415: "),
        (["verify", str(tmp_path / "missing.mp4"), "--url", url], "no such file"),
        (["verify", str(big), "--url", url], f"{url} answered 413: "),  # refused before the service read it all
    ]
    for argv, expected in cases:
        with pytest.raises(SystemExit) as e:
            main(argv)
        msg = str(e.value.code)
        assert expected in msg and "\n" not in msg, (argv, msg)
