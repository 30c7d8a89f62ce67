"""What verifying a sealed clip costs: ``python -m bench verify [--seconds 10] [--side 512] [--requests 20]``.

Issue 12, goal 4. Starts the real server (:class:`bench.limits.Server`: ``consentgate serve`` on a fresh data
dir), seals a ``--seconds`` clip of the embedded generator with that server's own watermark key and C2PA
signer (label, mark, encode, sign, as the gate does), then measures, in one run:

- **baseline**: a bare decode of the file (PyAV, every frame decoded, no pixel conversion: the least any
  reader of every frame pays), and the same decode with every frame converted to RGB (what a naive reader adds);
- ``POST /v1/verify`` of the file, ``--requests`` times one after another: p50 / p95; and ``--spaced`` times with a
  pause of 0.5 s before each (the server hands freed memory back once quiet for 0.2 s,
  ``governance.admission.MemoryReturn``, so each of these pays for faulting its working memory in again): p50;
- the same verification in this process (``verify_bytes`` as the view calls it: the server's keys, records and
  decode limits, on its data dir), as many times: p50, so that HTTP p50 minus it is what serving adds;
- ``consentgate verify FILE --url`` (the CLI as a client of the server: docs/adr/0017), 5 times, each right after
  a ``POST /v1/verify`` from this process, after one untimed run, with byte-code caches as an installed package
  has them (:func:`_installed_env`): best and median, and the median of the 5 paired ratios (the goal's ratio:
  each pair sees the same load);
- ``consentgate verify FILE`` (a fresh process each time, as a user runs it): the same way, with the
  interpreter's start-up (``python -c pass``) and the module imports alone (``python -X importtime`` of one
  such run, summed over the imports it makes) shown apart.

Goal: the HTTP p95 <= 500 ms and <= 2x the bare decode; the CLI within 1.5x the HTTP time.
``--curve`` adds verification time (in process, ``verify_bytes`` without the service's records) against
clip length (2-60 s at 512p) and resolution (256p-1080p for 4 s).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.limits import ROOT, Server, _post
from bench.media_clips import best, load, procedural_clip


def seal_file(clip: object, keys: Path, dest: Path) -> None:
    """Label, mark, encode and sign ``clip`` into ``dest`` with the keys in ``keys`` (a server's var/keys)."""
    from media.video import write_video
    from provenance.c2pa_seal import ManifestSpec, seal_video
    from provenance.keys import ensure_dev_ca
    from provenance.label import add_visible_label
    from provenance.watermark import WatermarkKey, embed

    key = WatermarkKey((keys / "watermark.key").read_bytes())
    frames = embed(add_visible_label(clip.frames, "AI-generated", sub="ConsentGate"),  # type: ignore[attr-defined]
                   bytes.fromhex("00112233445566ff"), key)
    raw = dest.with_suffix(".raw.mp4")
    write_video(raw, clip.with_frames(frames), crf=18)  # type: ignore[attr-defined]
    spec = ManifestSpec(title="bench", generator_name="consentgate-procedural", generator_version="0.1",
                        learned_weights=False, governance={"generation_id": "gen_bench"})
    seal_video(raw, dest, spec, ensure_dev_ca(keys / "c2pa"))


def bare_decode(path: Path, rgb: bool) -> int:
    import av

    n = 0
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in c.decode(stream):
            if rgb:
                frame.to_ndarray(format="rgb24")
            n += 1
    return n


def _installed_env(server: Server) -> dict[str, str]:
    """The server's environment as an installed ``consentgate`` runs in: Python's byte-code caches read and written
    (pip byte-compiles a package it installs; an environment with ``PYTHONDONTWRITEBYTECODE``, as some containers
    set, would otherwise compile every module of the tree afresh on each run), kept beside the server's temporary
    data dir (``PYTHONPYCACHEPREFIX``) so the checkout gains no ``__pycache__``."""
    env = {k: v for k, v in server.env.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(server.data_dir.parent / "pycache")
    return env


def _cli_times(server: Server, path: Path, runs: int = 5, *, remote: bool = False) -> list[tuple[float, float]]:
    """``runs`` pairs of seconds: ``POST /v1/verify`` of ``path`` from this (warm) process, then ``consentgate verify
    FILE`` in a fresh process, on the server's data dir or with ``remote`` as a client of the server (``--url``,
    docs/adr/0017). Paired, so that each ratio is taken under the same load (the machine is shared). One untimed
    CLI run first (it writes the byte-code caches an installed package has: :func:`_installed_env`)."""
    out = []
    extra = ["--url", server.url] if remote else []
    env = _installed_env(server)
    data = path.read_bytes()
    for k in range(runs + 1):
        t0 = time.perf_counter()
        _post(server.url + "/v1/verify", path.name, data, None, 120)
        t1 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "governance", "verify", str(path), *extra], cwd=server.tree,
                       env=env, capture_output=True, check=True)
        if k:
            out.append((time.perf_counter() - t1, t1 - t0))
    return out


def _in_process_times(server: Server, data: bytes, runs: int) -> list[float]:
    """Seconds of ``verify_bytes`` as ``POST /v1/verify`` calls it (``report_of``: the service's trust anchors,
    watermark keys, records and verify decode limits), in this process on the server's data dir, after one
    warm-up call (a server process is warm too)."""
    from governance.admission import decode_limits
    from governance.config import Settings
    from governance.container import Runtime
    from governance.verification.services import Records, verify_bytes
    from media.limits import Meter

    rt = Runtime(Settings().with_overrides({"data_dir": server.data_dir, "worker": "none"}))
    try:
        anchors, marks = rt.keys.present()

        def once() -> None:
            with rt.session() as session:
                verify_bytes(data, Records(session, rt.indexes, rt.heads), trust_anchors=anchors,
                             watermark_keys=marks, meter=Meter(decode_limits(rt.settings, "verify")))

        once()
        out = []
        for _ in range(runs):
            t0 = time.perf_counter()
            once()
            out.append(time.perf_counter() - t0)
        return out
    finally:
        rt.close()


def _import_seconds(server: Server, path: Path) -> float:
    """Seconds a run of ``consentgate verify FILE`` spends importing modules (``python -X importtime``: the sum
    over the imports made at the top level, those the command makes on its way included)."""
    p = subprocess.run([sys.executable, "-X", "importtime", "-m", "governance", "verify", str(path)], cwd=server.tree,
                       env=_installed_env(server), capture_output=True, text=True, check=True)
    total = 0
    for line in p.stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[2].startswith(" ") and not parts[2].startswith("  "):
            try:
                total += int(parts[1])
            except ValueError:
                pass
    return total / 1e6


def curve() -> None:
    """Verification time vs clip length and resolution: ``verify_bytes`` in process with a service's watermark key
    and an (empty) database, so the watermark's evidence and the fingerprint are read as over HTTP."""
    from governance.admission import decode_limits
    from governance.config import Settings
    from governance.container import Runtime
    from governance.db import init_db
    from governance.verification.services import Records, verify_bytes
    from media.limits import Meter
    from media.video import write_video

    print("\nverification in process (verify_bytes: C2PA, watermark, fingerprint) vs clip length at 512p, and vs "
          "resolution at 4 s")
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "keys").mkdir()
        (Path(tmp) / "keys" / "watermark.key").write_bytes(b"bench-verify-curve-key-000000000")
        rt = Runtime(Settings(data_dir=Path(tmp), worker="none"))
        init_db(rt.engine)
        anchors, marks = rt.keys.present()
        keys = {"trust_anchors": anchors, "watermark_keys": marks}
        limits = decode_limits(rt.settings, "verify")
        for seconds, side in [(2, 512), (5, 512), (10, 512), (30, 512), (60, 512),
                              (4, 256), (4, 512), (4, 720), (4, 1080)]:
            clip = procedural_clip(seconds, side, with_face=False)
            path = Path(tmp) / f"c{seconds}_{side}.mp4"
            write_video(path, clip, crf=18)
            data = path.read_bytes()
            base, _ = best(lambda: bare_decode(path, False), 2)  # noqa: B023
            with rt.session() as session:
                records = Records(session, rt.indexes, rt.heads)
                t, report = best(lambda: verify_bytes(data, records, meter=Meter(limits), **keys), 2)  # noqa: B023
            assert report["watermark"]["checked"] and "fingerprint" in report
            print(f"  {seconds:>3} s {side:>4}p: verify {t * 1000:7.0f} ms, bare decode {base * 1000:6.0f} ms, "
                  f"{t / base:4.2f}x; {1e9 * t / (clip.frame_count * side * side):.1f} ns per pixel-frame", flush=True)
            del clip
        rt.close()


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench verify")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--side", type=int, default=512)
    ap.add_argument("--requests", type=int, default=20)
    ap.add_argument("--spaced", type=int, default=5, help="requests 0.5 s apart, after the back-to-back ones")
    ap.add_argument("--tree", type=Path, default=ROOT, help="checkout to run the server from (default: this one)")
    ap.add_argument("--curve", action="store_true")
    args = ap.parse_args(argv)
    print(load())
    with tempfile.TemporaryDirectory() as tmp, Server(args.tree.resolve(), Path(tmp) / "var") as server:
        path = Path(tmp) / "sealed.mp4"
        seal_file(procedural_clip(args.seconds, args.side), Path(tmp) / "var" / "keys", path)
        data = path.read_bytes()
        base, frames = best(lambda: bare_decode(path, False), 3)
        base_rgb, _ = best(lambda: bare_decode(path, True), 3)
        url = server.url + "/v1/verify"
        status, body = _post(url, "clip.mp4", data, None, 120)  # warm-up, and a check that it verifies
        wm = body.get("watermark", {})
        if status != 200 or not wm.get("found"):
            raise SystemExit(f"bench verify: the sealed clip did not verify ({status}): {body}")
        times = []
        for _ in range(args.requests):
            t0 = time.perf_counter()
            _post(url, "clip.mp4", data, None, 120)
            times.append(time.perf_counter() - t0)
        q = statistics.quantiles(times, n=20, method="inclusive")
        p50, p95 = statistics.median(times), q[18]
        spaced = []
        for _ in range(args.spaced):
            time.sleep(0.5)
            t0 = time.perf_counter()
            _post(url, "clip.mp4", data, None, 120)
            spaced.append(time.perf_counter() - t0)
        inproc = statistics.median(_in_process_times(server, data, args.requests))
        cli = _cli_times(server, path)
        client = _cli_times(server, path, remote=True)
        start = best(lambda: subprocess.run([sys.executable, "-c", "pass"], check=True), 3)[0]
        imports = _import_seconds(server, path)
        print(f"\n{args.seconds:g} s {args.side}x{args.side} sealed clip, {frames} frames, {len(data) / 1e6:.1f} MB; "
              f"server from {server.tree}")
        print(f"  baseline: bare decode                    {base * 1000:7.0f} ms")
        print(f"  bare decode + RGB conversion             {base_rgb * 1000:7.0f} ms  {base_rgb / base:5.2f}x baseline")
        print(f"  POST /v1/verify p50                      {p50 * 1000:7.0f} ms  {p50 / base:5.2f}x baseline")
        print(f"  POST /v1/verify p95                      {p95 * 1000:7.0f} ms  {p95 / base:5.2f}x baseline")
        if spaced:
            sp50 = statistics.median(spaced)
            label = f"POST /v1/verify p50, 0.5 s apart ({len(spaced)})"
            print(f"  {label:<41}{sp50 * 1000:7.0f} ms  {sp50 / base:5.2f}x baseline")
        print(f"  verify_bytes in process p50              {inproc * 1000:7.0f} ms  {inproc / base:5.2f}x baseline; "
              f"HTTP p50 adds {(p50 - inproc) * 1000:.0f} ms")
        cli_ratio = statistics.median(c / h for c, h in cli)
        client_ratio = statistics.median(c / h for c, h in client)
        print(f"  consentgate verify (best / median of {len(cli)})  {min(c for c, _ in cli) * 1000:7.0f} / "
              f"{statistics.median(c for c, _ in cli) * 1000:.0f} ms  {cli_ratio:5.2f}x HTTP (median of pairs); "
              f"{(statistics.median(c for c, _ in cli) - inproc) * 1000:.0f} ms over in process")
        print(f"    of which interpreter start-up {start * 1000:.0f} ms, "
              f"imports (all the command makes) {imports * 1000:.0f} ms")
        print(f"  consentgate verify --url (best / median)  {min(c for c, _ in client) * 1000:7.0f} / "
              f"{statistics.median(c for c, _ in client) * 1000:.0f} ms  {client_ratio:5.2f}x HTTP (median of pairs; "
              f"a client of the server)")
        paired = statistics.median(h for _, h in cli + client)
        print(f"    HTTP in those pairs (median)           {paired * 1000:7.0f} ms")
        ok = p95 <= 0.5 and p95 <= 2 * base
        print(f"goal 4a (HTTP p95 <= 500 ms and <= 2x bare decode): {'met' if ok else 'NOT met'} "
              f"(p95 {p95 * 1000:.0f} ms, {p95 / base:.2f}x)")
        print(f"goal 4b (CLI <= 1.5x HTTP): --url: {'met' if client_ratio <= 1.5 else 'NOT met'} "
              f"({client_ratio:.2f}x); here, on the data dir: {'met' if cli_ratio <= 1.5 else 'NOT met'} "
              f"({cli_ratio:.2f}x)")
    if args.curve:
        curve()
    print(load())
