"""Operations: keys that releases depend on, a database that went missing, a full disk, hostile requests,
and what the files on disk let others read (issue #9, items 7, 9 and 10).

The full-disk tests run on a real, small tmpfs (``mount -t tmpfs``, root only; skipped elsewhere); the
same paths are also driven everywhere by an ``OSError(ENOSPC)`` raised where the quarantine file is
written (``numpy.savez_compressed``: the first write a job makes)."""

from __future__ import annotations

import errno
import json
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import select

from governance.app import create_app
from governance.cli import main
from governance.config import ConfigError
from governance.models import AuditEvent

FAST = {"duration_s": 1.0, "frame_size": 128, "io_retry_base_s": 0.01}


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request) -> Iterator[dict[str, str]]:
    """Settings for the database: the SQLite file in the data dir, or a fresh PostgreSQL database (``pg_url``)."""
    yield {} if request.param == "sqlite" else {"database_url": request.getfixturevalue("pg_url")}


def _release(api, token, prompt="snow in the forest"):
    done = api.wait(token, api.generate(token, prompt)["id"])
    assert done["state"] == "released", done["reasons"]
    return done


def _start_fails(capsys, data_dir) -> str:
    """``consentgate init`` refuses: exit 2 and one line on stderr, which is returned."""
    assert main(["--data-dir", str(data_dir), "init"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("consentgate: configuration error: "), err
    return err


# -- item 7: keys replaced silently ---------------------------------------------------------------------------
def test_a_missing_watermark_key_stops_the_start_until_restored_or_retired(database, make_api, capsys, monkeypatch):
    for k, v in database.items():
        monkeypatch.setenv(f"GOVERNANCE_{k.upper()}", v)  # for the command line
    api = make_api(**FAST, **database)
    bob = api.account("bob")
    done = _release(api, bob)
    video = api.download(bob, done["id"])
    var, keys = api.rt.settings.data_dir, api.rt.settings.keys_dir
    old = (keys / "watermark.key").read_bytes()
    api.rt.close()

    (keys / "watermark.key").unlink()
    with pytest.raises(ConfigError, match=r"watermark key .* is missing, but 1 release\(s\) were marked with it"):
        create_app({"data_dir": var, "worker": "none", **database})
    err = _start_fails(capsys, var)
    assert "consentgate keys retire --watermark" in err and "restore it from your backup" in err
    assert not (keys / "watermark.key").exists()  # nothing was made meanwhile

    (keys / "watermark.key").write_bytes(old)  # restored: starts, same key
    restored = make_api(data_dir=var, **FAST, **database)
    assert restored.rt.keys.watermark_key.secret == old
    restored.rt.close()

    # retired on purpose: recorded, moved aside (where verification still reads it), a new key made
    assert main(["--data-dir", str(var), "keys", "retire", "--watermark", "--reason", "yearly rotation"]) == 0
    assert "retired the watermark key" in capsys.readouterr().out
    assert not (keys / "watermark.key").exists() and len(list((keys / "watermark-retired").glob("*.key"))) == 1
    rotated = make_api(data_dir=var, **FAST, **database)
    assert rotated.rt.keys.watermark_key.secret != old
    with rotated.rt.session() as s:
        event = s.exec(select(AuditEvent).where(AuditEvent.tag == "keys:retire")).one()
    assert (event.data["kind"], event.data["releases"], event.data["reason"]) == ("watermark", 1, "yearly rotation")
    wm = rotated.verify(video).get_json()["watermark"]
    assert wm["found"] and wm["payload"] == done["content_id"]
    # releases with the new key: losing it stops the start again
    _release(rotated, bob, "rain over the city")
    rotated.rt.close()
    (keys / "watermark.key").unlink()
    assert "1 release(s) were marked with it" in _start_fails(capsys, var)


def test_a_missing_signing_chain_stops_the_start_until_restored_or_retired(make_api, capsys):
    api = make_api(**FAST)
    bob = api.account("bob")
    done = _release(api, bob)
    video = api.download(bob, done["id"])
    var, keys = api.rt.settings.data_dir, api.rt.settings.keys_dir
    api.rt.close()
    shutil.move(keys / "c2pa", keys / "c2pa.bak")
    err = _start_fails(capsys, var)
    assert "C2PA signing chain" in err and "1 release(s) were signed under it" in err and "--c2pa" in err
    assert not (keys / "c2pa").exists()

    shutil.move(keys / "c2pa.bak", keys / "c2pa")
    assert main(["--data-dir", str(var), "keys", "retire", "--c2pa"]) == 0
    assert "retired the C2PA signing chain" in capsys.readouterr().out
    renewed = make_api(data_dir=var, **FAST)
    retired_root = next((keys / "c2pa-retired").glob("*/root-ca.pem")).read_bytes()
    assert (keys / "c2pa" / "root-ca.pem").read_bytes() != retired_root
    # the retired root stays a trust anchor: the earlier release is still Trusted, and so is a new one
    assert renewed.verify(video).get_json()["c2pa"]["state"] == "Trusted"
    new = _release(renewed, bob, "rain over the city")
    assert renewed.verify(renewed.download(bob, new["id"])).get_json()["c2pa"]["state"] == "Trusted"


def test_a_key_lost_before_any_release_is_simply_made_again(make_api):
    api = make_api(**FAST)
    keys = api.rt.settings.keys_dir
    api.rt.close()
    (keys / "watermark.key").unlink()
    shutil.rmtree(keys / "c2pa")
    make_api(data_dir=api.rt.settings.data_dir, **FAST)
    assert (keys / "watermark.key").exists() and (keys / "c2pa" / "root-ca.pem").exists()


@pytest.mark.parametrize("damage", ["empty file", "deleted", "no tables"])
def test_an_empty_or_missing_database_beside_an_earlier_service_refuses_to_start(make_api, capsys, damage):
    api = make_api(**FAST)
    var = api.rt.settings.data_dir
    db = var / "consentgate.db"
    api.rt.close()
    for f in var.glob("consentgate.db*"):
        f.unlink()
    if damage == "empty file":
        db.write_bytes(b"")
    elif damage == "no tables":
        import sqlite3

        sqlite3.connect(db).execute("PRAGMA user_version = 1").connection.close()
    err = _start_fails(capsys, var)
    assert "holds the watermark key of an earlier service" in err and "restore the database" in err
    with pytest.raises(ConfigError, match="earlier service"):
        create_app({"data_dir": var, "worker": "none"})
    assert main(["--data-dir", str(var), "accounts", "create", "eve", "--role", "admin"]) == 2
    assert "earlier service" in capsys.readouterr().err
    assert (not db.exists()) or db.stat().st_size <= 4096  # nothing was built in it


@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
def test_an_empty_postgres_database_beside_an_earlier_service_refuses_to_start(database, make_api):
    api = make_api(**FAST)  # an earlier service on SQLite left its keys
    var = api.rt.settings.data_dir
    api.rt.close()
    with pytest.raises(ConfigError, match="database at GOVERNANCE_DATABASE_URL has no tables"):
        create_app({"data_dir": var, "worker": "none", **database})


# -- item 9: a full disk -------------------------------------------------------------------------------------
@pytest.fixture
def small_disk(tmp_path) -> Iterator[Path]:
    """A real 8 MB filesystem (tmpfs), unmounted after the test (request it before make_api)."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m,mode=0755", "tmpfs", str(mnt)], capture_output=True)
    if r.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def _fill(directory: Path, leave: int) -> Path:
    """A ballast file taking all but ``leave`` bytes of the filesystem's free space."""
    ballast = directory / "ballast"
    size = shutil.disk_usage(directory).free - leave
    fd = os.open(ballast, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        os.posix_fallocate(fd, 0, size)
    finally:
        os.close(fd)
    return ballast


def _private_leftovers(api) -> list[str]:
    s = api.rt.settings
    return [p.name for d in (s.quarantine_dir, s.videos_dir) for p in d.iterdir()]


def test_a_full_disk_blocks_the_job_with_its_reason_leaves_nothing_and_the_worker_goes_on(small_disk, database,
                                                                                           make_api):
    """With the data dir nearly full (a real filesystem, database included when it is SQLite), a job is
    tried again, then blocked with the reason and no path; no partial file stays; POST /v1/generations
    answers 507 while free space is under the floor; with room again, the next job is released."""
    api = make_api(data_dir=small_disk / "var", min_free_bytes=0, io_retries=2,
                   **{**FAST, "frame_size": 256, **database})
    bob = api.account("bob")
    # the job's first write, the marked encode of one second (~100 kB), does not fit; SQLite on the same disk
    # keeps enough room to write down three tries and the block
    ballast = _fill(small_disk, leave=300_000 if not database else 50_000)
    gen = api.generate(bob, "snow in the forest")
    done = api.wait(bob, gen["id"], timeout=60)
    assert done["state"] == "blocked", done
    (reason,) = done["reasons"]
    assert "No space left on device" in reason and "tried 3 time(s)" in reason, reason
    assert "/" not in reason.split("(")[0] and str(small_disk) not in reason
    assert _private_leftovers(api) == []

    floored = make_api(data_dir=small_disk / "var", min_free_bytes=1_000_000, **{**FAST, **database})
    r = floored.call("POST", "/v1/generations", bob, json={"prompt": "rain over the city"})
    assert r.status_code == 507 and r.mimetype == "application/problem+json"
    assert r.get_json()["type"].endswith("/insufficient-storage") and r.headers["Retry-After"]
    floored.rt.close()

    ballast.unlink()
    _release(api, bob, "rain over the city")  # the same worker, alive
    assert [p for p in _private_leftovers(api) if not p.endswith(".mp4")] == []


def test_a_job_failing_on_storage_is_tried_again(make_api, monkeypatch):
    """The seam: ``media.video.write_video``, the first write of a job (raw frames stay in memory), raises ENOSPC
    twice, then works."""
    from pathlib import Path

    import media.video

    real, calls = media.video.write_video, []

    def full_then_free(path, clip, **kw):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) <= 2:
            Path(path).write_bytes(b"x" * 1000)  # part of the file is written before the disk fills
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, clip, **kw)

    monkeypatch.setattr(media.video, "write_video", full_then_free)
    api = make_api(**FAST)
    bob = api.account("bob")
    _release(api, bob)
    # two failed tries, then the third encodes (once, or again at a stronger mark when it does not read back)
    assert len(calls) >= 3 and _private_leftovers(api) != [] and not list(api.rt.settings.quarantine_dir.iterdir())

    calls.clear()

    def full(path, clip, **kw):  # type: ignore[no-untyped-def]
        raise OSError(errno.ENOSPC, "No space left on device", "/srv/secret/var/quarantine/x.marked.mp4")

    monkeypatch.setattr(media.video, "write_video", full)
    done = api.wait(bob, api.generate(bob, "rain over the city")["id"])
    assert done["state"] == "blocked" and "tried 4 time(s)" in done["reasons"][0]
    assert "/srv" not in done["reasons"][0] and not list(api.rt.settings.quarantine_dir.iterdir())


def test_partial_files_are_removed_whatever_fails(tmp_path):
    import numpy as np

    from media.video import Clip, MediaError, write_video

    clip = Clip(np.zeros((4, 64, 64, 3), np.uint8), 24.0)
    with pytest.raises(MediaError) as e:
        write_video(tmp_path / "missing" / "a.mp4", clip)
    assert str(tmp_path) not in str(e.value)  # the cause, not the path
    assert list(tmp_path.iterdir()) == []


# -- item 10: small ones ----------------------------------------------------------------------------------------
def _problem(r, status):
    assert r.status_code == status, (r.status_code, r.data[:300])
    assert r.mimetype == "application/problem+json"
    return r.get_json()


def _png_header(width: int, height: int) -> bytes:
    """A PNG that says it is ``width`` x ``height`` (what a decoder reads first), with no pixels."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def test_a_decompression_bomb_sent_to_verify_is_a_422(api):
    body = _problem(api.verify(_png_header(30000, 30000), "bomb.png"), 422)  # would decode to 900 megapixels
    assert "megapixels" in body["detail"]
    alice = api.account("alice")
    _problem(api.multipart("/v1/likenesses", alice, [("bomb.png", _png_header(30000, 30000))]), 422)


def test_json_nested_too_deeply_is_a_400(api):
    bob = api.account("bob")
    deep = "[" * 100_000 + "]" * 100_000
    body = _problem(api.call("POST", "/v1/generations", bob, data=deep, content_type="application/json"), 400)
    assert "nested too deeply" in body["detail"]


def test_a_log_index_beyond_any_integer_column_is_a_404(api):
    body = _problem(api.call("GET", "/v1/log/entries/99999999999999999999"), 404)
    assert "no log entry 99999999999999999999" in body["detail"]


def test_errors_shown_to_users_carry_no_paths_or_object_reprs(api, monkeypatch):
    alice = api.account("alice")
    body = _problem(api.multipart("/v1/likenesses", alice, [("x.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)]), 415)
    assert " object at 0x" not in body["detail"] and "BytesIO" not in body["detail"]
    body = _problem(api.verify(b"\xff\xd8\xff\xe0" + b"\x00" * 64, "x.jpg"), 415)
    assert " object at 0x" not in body["detail"]

    # a failure deep in sealing (here: the videos folder gone) is recorded for the requester without the path
    bob = api.account("bob")
    videos = api.rt.settings.videos_dir
    api.rt.pipeline.on("scanned", lambda _: shutil.rmtree(videos, ignore_errors=True))
    done = api.wait(bob, api.generate(bob, "snow in the forest")["id"])
    assert done["state"] == "blocked"
    assert str(api.rt.settings.data_dir.resolve()) not in json.dumps(done), done["reasons"]
    assert "<path>" in done["reasons"][0]


def test_the_database_keys_and_videos_are_private_to_the_service(make_api, tmp_path):
    old = os.umask(0o002)  # a permissive umask changes nothing
    try:
        api = make_api(**FAST)
    finally:
        os.umask(old)
    bob = api.account("bob")
    _release(api, bob)
    s = api.rt.settings

    def mode(p: Path) -> int:
        return stat.S_IMODE(p.stat().st_mode)

    for d in (s.data_dir, s.quarantine_dir, s.videos_dir, s.keys_dir, s.keys_dir / "c2pa"):
        assert mode(d) == 0o700, d
    files = [*s.data_dir.glob("consentgate.db*"), *s.videos_dir.iterdir(), s.keys_dir / "watermark.key",
             s.keys_dir / "c2pa" / "signer-key.pem"]
    assert len(files) >= 5
    for f in files:
        assert mode(f) == 0o600, f


def test_cli_keys_retire_needs_a_kind(tmp_path):
    r = subprocess.run([sys.executable, "-m", "governance", "--data-dir", str(tmp_path / "v"), "keys", "retire"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "--c2pa" in r.stderr
