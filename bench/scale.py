"""The scale path under load: ``python -m bench scale [--creators N] [--seconds T] [--apis A] [--workers W]``.

Starts a deployment on this machine (:mod:`bench.cluster`: A API processes, W workers, a fresh PostgreSQL
database on 127.0.0.1:5432, a redis-server broker of its own) with the procedural generator, then runs N
creators for T seconds. Each creator, in a loop, requests a generation and waits for its final state; one
request in three names a character whose rights holder forbids it (blocked at the precheck, no job). Then it
lets the queue drain and reports:

- decisions/s (requests prechecked per second) and generations/s (released per second);
- p50 / p99 end-to-end latency (request to final state, as the creator sees it) of released generations;
- the counters of every process's /metrics, summed, next to the database's counts: they must agree.
"""

from __future__ import annotations

import argparse
import json
import random
import secrets
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.cluster import REDIS_SERVER, Cluster, wait

PG_ADMIN_DSN = "host=127.0.0.1 port=5432 dbname=test user=postgres"


def _sum(text: str, name: str, **labels: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    total = 0.0
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                total += s.value
    return total


def run(creators: int, seconds: float, apis: int, workers: int, duration_s: float, frame: int) -> dict[str, Any]:
    import psycopg

    if REDIS_SERVER is None:
        raise SystemExit("bench scale: needs the redis-server binary")
    db = f"cg_bench_{secrets.token_hex(4)}"
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db}"')
    tmp = Path(tempfile.mkdtemp(prefix="cg-scale-"))
    c = Cluster(tmp, f"postgresql+psycopg://postgres@127.0.0.1:5432/{db}", {
        "GOVERNANCE_DURATION_S": str(duration_s), "GOVERNANCE_FRAME_SIZE": str(frame),
        "GOVERNANCE_LOG_FORMAT": "text"})
    try:
        c.init()
        c.start_redis()
        ports = [c.start_api() for _ in range(apis)]
        for i in range(workers):
            c.start_worker(f"w{i}")
        studio = c.account("studio", "rights_holder")
        status, body = c.request(ports[0], "POST", "/v1/characters", studio, {"name": "Robo Pup", "rule": "deny"})
        assert status == 201, body
        tokens = [c.account(f"creator{i}") for i in range(creators)]

        latencies: list[float] = []
        counts = {"requests": 0, "blocked_at_precheck": 0, "released": 0, "blocked_later": 0, "errors": 0}
        lock = threading.Lock()
        stop_at = time.monotonic() + seconds

        def creator(i: int) -> None:
            rng = random.Random(i)
            port = ports[i % len(ports)]
            while time.monotonic() < stop_at:
                prompt = "Robo Pup on the moon" if rng.random() < 1 / 3 else f"a kite over the dunes {rng.random()}"
                started = time.monotonic()
                status, body = c.request(port, "POST", "/v1/generations", tokens[i], {"prompt": prompt})
                if status != 202:
                    with lock:
                        counts["errors"] += 1
                    time.sleep(0.2)
                    continue
                gen = json.loads(body)
                with lock:
                    counts["requests"] += 1
                if gen["state"] == "blocked":
                    with lock:
                        counts["blocked_at_precheck"] += 1
                    continue
                while True:
                    _, got = c.get(port, f"/v1/generations/{gen['id']}", tokens[i])
                    state = json.loads(got)["state"] if got else ""
                    if state in ("released", "blocked"):
                        break
                    time.sleep(0.05)
                with lock:
                    if state == "released":
                        counts["released"] += 1
                        latencies.append(time.monotonic() - started)
                    else:
                        counts["blocked_later"] += 1

        threads = [threading.Thread(target=creator, args=(i,)) for i in range(creators)]
        began = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - began
        wait("the queue to drain", lambda: c.scalar("SELECT count(*) FROM generation WHERE state IN "
                                                    "('PRECHECKED','GENERATING','SCANNING','SEALING')") == 0, 300, 0.5)
        text = c.metrics()
        db_counts = {
            "released": c.scalar("SELECT count(*) FROM generation WHERE state = 'RELEASED'"),
            "blocked": c.scalar("SELECT count(*) FROM generation WHERE state = 'BLOCKED'"),
            "decisions": c.scalar("SELECT coalesce(sum(json_array_length(decisions)), 0) FROM generation"),
            "log_entries": c.scalar("SELECT count(*) FROM logentry"),
        }
        metric_counts = {
            "released": _sum(text, "consentgate_generations_total", state="released"),
            "blocked": _sum(text, "consentgate_generations_total", state="blocked"),
            "decisions": _sum(text, "consentgate_decisions_total"),
            "stage_seconds_generating_count": _sum(text, "consentgate_stage_duration_seconds_count",
                                                   stage="generating"),
        }
        lat = sorted(latencies)
        return {
            "setup": {"creators": creators, "seconds": seconds, "apis": apis, "workers": workers,
                      "clip": f"{duration_s:g} s {frame}x{frame} procedural"},
            "elapsed_s": round(elapsed, 1), **counts,
            "decisions_per_s": round(counts["requests"] / elapsed, 2),
            "generations_per_s": round(counts["released"] / elapsed, 3),
            "latency_p50_s": round(statistics.median(lat), 2) if lat else None,
            "latency_p99_s": round(lat[min(len(lat) - 1, int(0.99 * len(lat)))], 2) if lat else None,
            "database": db_counts, "metrics": metric_counts,
            "metrics_agree": all(int(metric_counts[k]) == int(db_counts[k]) for k in ("released", "blocked",
                                                                                        "decisions")),
        }
    finally:
        c.close()
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(prog="python -m bench scale")
    p.add_argument("--creators", type=int, default=4)
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--apis", type=int, default=2)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--duration", type=float, default=2.0, help="seconds of each generated clip")
    p.add_argument("--frame", type=int, default=256, help="frame side in pixels")
    args = p.parse_args(argv)
    report = run(args.creators, args.seconds, args.apis, args.workers, args.duration, args.frame)
    print(json.dumps(report, indent=2))
