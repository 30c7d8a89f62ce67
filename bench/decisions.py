"""Decisions at scale: ``python -m bench decisions [--likenesses N] [--sizes 0,100,1000,10000,100000] [--http]``.

Issue 12, goal 1. A database (SQLite in a temporary folder, or ``--pg`` a fresh PostgreSQL database on
127.0.0.1:5432) holding ``--likenesses`` enrolled likenesses (embeddings-only templates, 1,000 owners, one in a
hundred with a display name), 100 protected public figures, and C registered characters (``bench.names``:
the labelled set's twelve plus made-up names, one in five with an alias) for each C in ``--sizes``.

1. **In process**: ``governance.generations.services.generations.precheck`` for the labelled set's prompts (disguised
   names and benign prompts; 300 of them, a fresh session each, as a request has), p50 / p99, after one
   warm-up request (which builds the cached matchers). The **baseline** is the same with no character
   (C = 0), measured in the same run: the curve over C should be flat. Goal: p99 <= 10 ms at 10,000
   characters and 1,000,000 likenesses.
2. **Over HTTP** (``--http``): ``consentgate serve`` (``--workers`` processes, see docs/operations.md) on a
   copy of the 10,000-character database; 8 clients ``POST /v1/generations`` (no worker runs: each request is
   a decision and a row) for ``--seconds``; decisions/s and p50 / p99 latency, against the **baseline**
   ``GET /healthz`` at the same concurrency. Goal: >= 500 decisions/s. The requests come from ``--requesters``
   accounts on the default daily quota (1000; ``--requesters 1``: one account with a quota of 10^9, whose quota
   count grows with every request of the day); each client keeps its connection open (HTTP/1.1 keep-alive, as a
   client library's pool does; ``--new-connections``: one connection per request).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import secrets
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

from bench.media_clips import load
from bench.names import characters, prompts

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


def _template_blob(rng: np.random.Generator, dim: int = 128) -> bytes:
    from detectors.enroll import Template

    emb = rng.normal(size=(5, dim)).astype(np.float32)  # five poses
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    bins = ("frontal", "left", "right", "up", "down")
    try:
        return Template(embeddings=emb, backend="dlib-resnet-v1", reference=None, bins=bins).to_bytes()
    except Exception:  # a tree from before issue 12 (--tree): templates had to carry a reference image
        return Template(embeddings=emb, backend="dlib-resnet-v1", reference=np.zeros((1, 1, 3), np.uint8),
                        bins=bins).to_bytes()


def populate(url: str, likenesses: int, figures: int = 100) -> tuple[Any, str]:
    """A migrated database with accounts, ``likenesses`` likenesses and ``figures`` figures; returns
    (engine, the requester's account id)."""
    import sqlalchemy as sa
    from sqlmodel import Session

    from governance.accounts import models as accounts
    from governance.columns import utcnow
    from governance.db import init_db, make_engine
    from governance.likenesses import models as lk_models

    engine = make_engine(url)
    init_db(engine)
    rng = np.random.default_rng(5)
    now = utcnow()
    owners = [{"id": f"acc_o{i:05d}", "name": f"owner{i}", "role": accounts.Role.CREATOR.name,
               "token_hash": secrets.token_hex(16), "daily_quota": None, "created_at": now} for i in range(1000)]
    requester = {"id": "acc_requester", "name": "requester", "role": accounts.Role.CREATOR.name,
                 "token_hash": secrets.token_hex(16), "daily_quota": 10**9, "created_at": now}
    holder = {"id": "acc_holder", "name": "holder", "role": accounts.Role.RIGHTS_HOLDER.name,
              "token_hash": secrets.token_hex(16), "daily_quota": None, "created_at": now}
    blobs = [_template_blob(rng) for _ in range(64)]  # distinct enough; the rows' size is what matters
    with engine.begin() as conn:
        conn.execute(sa.insert(accounts.Account), [*owners, requester, holder])
        for start in range(0, likenesses, 20_000):
            rows = [{"id": f"lk_{i:08d}", "owner_id": owners[i % 1000]["id"],
                     "mode": lk_models.LikenessMode.APPROVED.name,
                     "display_name": f"someone {i}" if i % 100 == 0 else None, "backend": "dlib-resnet-v1",
                     "template": blobs[i % 64], "embeddings": 5, "created_at": now,
                     "verification": lk_models.Verification.LIVE.name, "status": lk_models.LikenessStatus.ACTIVE.name,
                     "verified_at": now, "figure_id": None, "identity": {}}
                    for i in range(start, min(likenesses, start + 20_000))]
            conn.execute(sa.insert(lk_models.Likeness), rows)
        names = characters(figures + 12, seed=99)[12:]
        conn.execute(sa.insert(lk_models.Figure), [{"id": f"fig_{i:04d}", "name": f"Senator {c.name}", "aliases": [],
                                            "backend": "dlib-resnet-v1", "template": blobs[i % 64],
                                            "embeddings": 5, "created_by": None, "created_at": now}
                                           for i, c in enumerate(names)])
    with Session(engine) as s:
        from governance.db import bump
        bump(s, "likenesses")
        s.commit()
    return engine, requester["id"]


def set_characters(engine: Any, n: int) -> None:
    """Replace the registered characters by ``n`` of ``bench.names.characters`` (bumps the counter)."""
    import sqlalchemy as sa
    from sqlmodel import Session

    from governance.characters.models import Character, CharacterRule
    from governance.columns import utcnow
    from governance.db import bump

    now = utcnow()
    with engine.begin() as conn:
        conn.execute(sa.delete(Character))
        policies = characters(n) if n else []
        for start in range(0, len(policies), 20_000):
            conn.execute(sa.insert(Character), [
                {"id": f"ch_{i:07d}", "owner_id": "acc_holder", "name": p.name, "aliases": list(p.aliases),
                 "rule": CharacterRule.DENY.name, "licensees": [], "attribution": None, "created_at": now}
                for i, p in enumerate(policies[start:start + 20_000], start)])
    with Session(engine) as s:
        bump(s, "characters")
        s.commit()


def in_process(engine: Any, requester_id: str, sample: list[str]) -> np.ndarray:
    """Milliseconds per ``precheck`` of each prompt in ``sample`` (a fresh session each)."""
    from sqlmodel import Session

    from governance.accounts.models import Account
    from governance.generations.services.generations import precheck

    with Session(engine) as s:  # warm-up: builds the matchers once
        precheck(s, s.get(Account, requester_id), "warm up", [])
    out = []
    for prompt in sample:
        with Session(engine) as s:
            t0 = time.perf_counter()
            requester = s.get(Account, requester_id)
            precheck(s, requester, prompt, [])
            out.append((time.perf_counter() - t0) * 1000)
    return np.array(out)


def _pct(a: np.ndarray) -> str:
    return f"p50 {np.percentile(a, 50):7.2f} ms  p99 {np.percentile(a, 99):7.2f} ms"


def _pg_database() -> tuple[str, str]:
    import psycopg

    name = f"cg_bench_{secrets.token_hex(4)}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name, f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


def _drop_pg(name: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _load(url: str, method: str, body: bytes | None, tokens: list[str] | None, seconds: float, concurrency: int,
          *, keepalive: bool = True) -> tuple[float, np.ndarray, dict[int, int]]:
    """(requests/s, latencies ms, status counts) for ``concurrency`` clients hammering ``url`` for ``seconds``, each
    request as a random one of ``tokens`` (none: no ``Authorization``). ``keepalive``: each client keeps its
    connection open across requests (HTTP/1.1 persistent connections, as an HTTP client library's pool does),
    reconnecting when the server closes it; otherwise a new connection per request."""
    parts = urllib.parse.urlsplit(url)
    lat: list[float] = []
    codes: dict[int, int] = {}
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def client(i: int) -> None:
        rng = random.Random(i)
        conn: http.client.HTTPConnection | None = None
        while time.monotonic() < stop:
            data = body
            if body is not None:
                data = json.dumps({"prompt": rng.choice(_SAMPLE)}).encode()
            headers = {"Content-Type": "application/json"}
            if tokens:
                headers["Authorization"] = f"Bearer {rng.choice(tokens)}"
            if not keepalive:
                headers["Connection"] = "close"
            t0 = time.perf_counter()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=60)
                conn.request(method, parts.path, body=data, headers=headers)
                r = conn.getresponse()
                r.read()
                code = r.status
                if not keepalive or r.will_close:
                    conn.close()
                    conn = None
            except (http.client.HTTPException, ConnectionError, TimeoutError, OSError):
                code = 0
                if conn is not None:
                    conn.close()
                conn = None
            with lock:
                lat.append((time.perf_counter() - t0) * 1000)
                codes[code] = codes.get(code, 0) + 1
        if conn is not None:
            conn.close()

    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    took = time.monotonic() - started
    return len(lat) / took, np.array(lat), codes


_SAMPLE: list[str] = []


def _requester_tokens(engine: Any, n: int) -> list[str]:
    """API tokens of ``n`` requesters: with n > 1, n new accounts on the service's default daily quota (a service's
    load comes from many people, each within their quota); with n == 1 the bench's requester alone, its quota
    raised to 10^9 (the worst case for the quota's count: one account making every request of the day)."""
    import sqlalchemy as sa
    from sqlmodel import Session

    from governance.accounts import models as accounts
    from governance.accounts.services import hash_token
    from governance.columns import utcnow

    tokens = [secrets.token_urlsafe(24) for _ in range(n)]
    if n == 1:
        with Session(engine) as s:
            requester = s.get(accounts.Account, "acc_requester")
            requester.token_hash = hash_token(tokens[0])
            s.add(requester)
            s.commit()
        return tokens
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(sa.insert(accounts.Account), [
            {"id": f"acc_r{i:05d}", "name": f"requester{i}", "role": accounts.Role.CREATOR.name,
             "token_hash": hash_token(t), "daily_quota": None, "created_at": now} for i, t in enumerate(tokens)])
    return tokens


def over_http(args: argparse.Namespace, url: str, tmp: Path) -> None:
    """Serve the database at ``url`` with ``consentgate serve`` and load it."""
    data_dir = tmp / "var"
    env = {**os.environ, "GOVERNANCE_DATA_DIR": str(data_dir), "GOVERNANCE_DATABASE_URL": url,
           "GOVERNANCE_WORKER": "none", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    subprocess.run([sys.executable, "-m", "governance", "init"], env=env, check=True, capture_output=True)
    from governance.db import make_engine
    engine = make_engine(url)
    tokens = _requester_tokens(engine, args.requesters)
    engine.dispose()
    port = 18000 + random.randint(0, 999)
    cmd = [sys.executable, "-m", "governance", "serve", "--port", str(port)]
    if args.workers > 1:
        cmd += ["--workers", str(args.workers)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    keepalive = not args.new_connections
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(base + "/healthz", timeout=1).read()
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):  # a busy server may not answer in 1 s
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise SystemExit("bench decisions: the server did not start") from None
                time.sleep(0.3)
        # warm every worker (and its thread's connection); 1 s, so that no requester nears its quota
        _load(base + "/v1/generations", "POST", b"{}", tokens, 1, args.concurrency, keepalive=keepalive)
        h_rate, h_lat, _ = _load(base + "/healthz", "GET", None, None, args.seconds, args.concurrency,
                                 keepalive=keepalive)
        rate, lat, codes = _load(base + "/v1/generations", "POST", b"{}", tokens, args.seconds, args.concurrency,
                                 keepalive=keepalive)
        who = ("one requester (quota 10^9)" if args.requesters == 1
               else f"{args.requesters:,} requesters (default daily quota)")
        print(f"\nover HTTP: consentgate serve with {args.workers} worker process(es), concurrency "
              f"{args.concurrency}, {args.seconds:g} s each, {who}, "
              f"{'a new connection per request' if not keepalive else 'persistent connections'}, requests commit "
              f"{os.environ.get('GOVERNANCE_REQUEST_COMMIT') or 'asynchronous'} (GOVERNANCE_REQUEST_COMMIT, ADR 0018)")
        print(f"  baseline GET /healthz        {h_rate:7.1f} req/s  {_pct(h_lat)}")
        print(f"  POST /v1/generations         {rate:7.1f} decisions/s  {_pct(lat)}  "
              f"{rate / h_rate:5.2f}x baseline  statuses {codes}")
        print(f"goal 1b (>= 500 decisions/s over HTTP): {'met' if rate >= 500 else 'NOT met'} ({rate:.0f}/s)")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench decisions")
    ap.add_argument("--likenesses", type=int, default=100_000)
    ap.add_argument("--sizes", default="0,100,1000,10000,100000")
    ap.add_argument("--prompts", type=int, default=300)
    ap.add_argument("--pg", action="store_true", help="PostgreSQL instead of SQLite")
    ap.add_argument("--http", action="store_true", help="also measure POST /v1/generations over HTTP")
    ap.add_argument("--workers", type=int, default=2, help="server processes for --http")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--requesters", type=int, default=1000,
                    help="--http: accounts the requests come from (1: one account with a quota of 10^9)")
    ap.add_argument("--new-connections", action="store_true",
                    help="--http: a new connection per request instead of persistent ones")
    args = ap.parse_args(argv)
    print(load())
    rng = random.Random(3)
    every = prompts()
    sample = rng.sample(every, min(args.prompts, len(every)))
    _SAMPLE.extend(sample)
    sizes = [int(s) for s in args.sizes.split(",")]
    pg_name = None
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        if args.pg:
            pg_name, url = _pg_database()
        else:
            url = f"sqlite:///{tmp / 'bench.sqlite'}"
        try:
            t0 = time.perf_counter()
            engine, requester = populate(url, args.likenesses)
            print(f"{args.likenesses:,} likenesses, 100 figures in {'PostgreSQL' if args.pg else 'SQLite'} "
                  f"(built in {time.perf_counter() - t0:.0f} s); {len(sample)} prompts per size")
            base = None
            for n in sizes:
                set_characters(engine, n)
                ms = in_process(engine, requester, sample)
                base = base if base is not None else float(np.percentile(ms, 99))
                print(f"  {n:>7,} characters: precheck {_pct(ms)}  {1000 / np.mean(ms):7.0f}/s one thread  "
                      f"p99 {np.percentile(ms, 99) / base:5.2f}x the first size's", flush=True)
                if n == 10_000:
                    p99 = float(np.percentile(ms, 99))
                    print(f"goal 1a (p99 <= 10 ms at 10,000 characters): {'met' if p99 <= 10 else 'NOT met'} "
                          f"({p99:.2f} ms; {args.likenesses:,} likenesses)")
            if args.http:
                set_characters(engine, 10_000)
                engine.dispose()
                over_http(args, url, tmp)
            engine.dispose()
        finally:
            if pg_name:
                _drop_pg(pg_name)
    print(load())

