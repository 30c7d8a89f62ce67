"""The scale path for jobs: Dramatiq on a real Redis server (127.0.0.1:6379) or RabbitMQ (127.0.0.1:5672), with
workers of their own (a Runtime each, as `consentgate worker` builds it; here in threads of the test process).
The kill -9 and broker-outage stories with real processes are in test_many_processes.py."""

from __future__ import annotations

import errno
import secrets
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

redis = pytest.importorskip("redis")
pytest.importorskip("dramatiq")
pytestmark = pytest.mark.needs("Redis")
REDIS_URL = "redis://127.0.0.1:6379/0"
FAST = {"duration_s": 1.0, "frame_size": 128, "job_lease_s": 2.0, "broker_maintenance_chance": 1_000_000,
        "sweep_every_s": 0.5, "io_retry_base_s": 0.05}


@pytest.fixture
def prefix() -> Iterator[str]:
    name = f"cgtest-{secrets.token_hex(4)}"
    yield name
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(f"{name}*"))
    if keys:
        client.delete(*keys)
    client.close()


def _worker(settings: Any, name: str) -> Any:
    from governance.container import Runtime

    return Runtime(settings.with_overrides({"worker_name": name}))


def _run(settings: Any, name: str, jobs: int) -> Any:
    """A worker of its own that handles ``jobs`` deliveries, then stops."""
    worker = _worker(settings, name)
    try:
        assert worker.pipeline.run_worker(max_jobs=jobs, poll_s=0.05) >= jobs  # a sweep may add a duplicate
    finally:
        worker.close()
    return worker


def _state(web: Any, gen_id: str) -> Any:
    from governance.generations.models import Generation

    with web.rt.session() as s:
        return s.get(Generation, gen_id)


def test_web_enqueues_and_a_separate_worker_releases(make_api, prefix, faces_dir):
    web = make_api(queue="redis", queue_prefix=prefix, worker="none", **{**FAST, "frame_size": 256})
    alice, bob = web.account("alice"), web.account("bob")
    lk = web.enroll_as_live(alice, faces_dir / "obama.jpg")
    web.call("PUT", f"/v1/likenesses/{lk['id']}/grants/bob", alice)
    gen = web.generate(bob, "sunset over the ocean", [lk["id"]])
    assert web.call("GET", f"/v1/generations/{gen['id']}", bob).get_json()["state"] == "prechecked"
    assert web.rt.pipeline.engine.depth() == 1
    assert _state(web, gen["id"]).enqueued_at is not None

    _run(web.rt.settings, "w1", 1)
    done = web.call("GET", f"/v1/generations/{gen['id']}", bob).get_json()
    assert done["state"] == "released", done["reasons"]
    assert web.rt.pipeline.engine.depth() == 0
    report = web.verify(web.download(bob, gen["id"])).get_json()
    assert report["c2pa"]["state"] == "Trusted" and report["record"]["generation_id"] == gen["id"]
    assert web.leftovers() == []


def test_a_dead_workers_job_is_taken_over_once_its_lease_runs_out(make_api, prefix):
    """A worker claimed the job, got to scanning and died: nobody renews its lease. The job's next delivery
    starts it again on another worker, and it is released once."""
    from governance import metrics
    from governance.columns import utcnow
    from governance.db import unit_of_work
    from governance.generations.models import Generation, GenerationState

    web = make_api(queue="redis", queue_prefix=prefix, worker="none", **FAST)
    bob = web.account("bob")
    gen = web.generate(bob, "a forest in the snow")
    with unit_of_work(web.rt.engine) as s:
        row = s.get(Generation, gen["id"])
        row.state, row.claimed_by, row.lease_until = GenerationState.SCANNING, "dead/0", utcnow() - timedelta(seconds=1)
    (web.rt.settings.quarantine_dir / f"{gen['id']}.marked.mp4").write_bytes(b"left by the dead worker")
    before = metrics.TAKEOVERS._value.get()

    _run(web.rt.settings, "w2", 1)
    row = _state(web, gen["id"])
    assert row.state is GenerationState.RELEASED and row.claimed_by.startswith("w2/")
    assert metrics.TAKEOVERS._value.get() == before + 1
    assert web.leftovers() == []


def test_a_job_held_under_a_live_lease_waits_for_it(make_api, prefix):
    """Delivered again while another worker still holds it (its lease is renewed): not run twice; tried again
    after the lease, which here nobody renews, so then it is taken over."""
    from governance.columns import utcnow
    from governance.db import unit_of_work
    from governance.generations.models import Generation, GenerationState

    web = make_api(queue="redis", queue_prefix=prefix, worker="none", **FAST)
    bob = web.account("bob")
    gen = web.generate(bob, "a lighthouse at dusk")
    with unit_of_work(web.rt.engine) as s:
        row = s.get(Generation, gen["id"])
        row.state, row.claimed_by, row.lease_until = GenerationState.GENERATING, "alive/0", utcnow() + timedelta(
            seconds=1.5)
    started = time.monotonic()
    _run(web.rt.settings, "w3", 2)  # the first delivery waits on the lease, its retry takes the job over
    assert time.monotonic() - started >= 1.0
    assert _state(web, gen["id"]).state is GenerationState.RELEASED


def test_double_delivery_runs_once(make_api, prefix):
    web = make_api(queue="redis", queue_prefix=prefix, worker="none", **FAST)
    bob = web.account("bob")
    gen = web.generate(bob, "rain in the city")
    web.rt.pipeline.engine.submit(gen["id"])  # delivered twice

    runs: list[str] = []
    workers = [_worker(web.rt.settings, f"w{i}") for i in range(2)]
    for w in workers:
        w.pipeline.on("generated", runs.append)
    threads = [threading.Thread(target=w.pipeline.run_worker, kwargs={"max_jobs": 1, "poll_s": 0.05})
               for w in workers]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    finally:
        for w in workers:
            w.close()
    assert runs == [gen["id"]]
    assert web.call("GET", f"/v1/generations/{gen['id']}", bob).get_json()["state"] == "released"
    assert web.leftovers() == []


def test_a_job_whose_request_the_database_lost_is_dropped(make_api, prefix):
    """A request commits without waiting for the disk (docs/adr/0018), so a power cut may lose it after its job
    reached the broker: the worker finds nothing to claim, drops the job and writes nothing."""
    from sqlmodel import select

    from governance.models import AuditEvent

    web = make_api(queue="redis", queue_prefix=prefix, worker="none", **FAST)
    lost = "gen_0123456789abcdef"
    web.rt.pipeline.engine.submit(lost)
    runs: list[str] = []
    worker = _worker(web.rt.settings, "w0")
    worker.pipeline.on("generated", runs.append)
    try:
        assert worker.pipeline.run_worker(max_jobs=1, poll_s=0.05) >= 1
    finally:
        worker.close()
    assert runs == []
    assert _state(web, lost) is None
    with web.rt.session() as s:
        assert s.exec(select(AuditEvent).where(AuditEvent.subject == lost)).all() == []
    assert web.leftovers() == []


def test_a_transient_failure_is_retried_by_the_engine_with_backoff_then_blocked_with_the_reason(make_api, prefix,
                                                                                                  caplog):
    """A full disk at every try: Dramatiq re-delivers the job after each backoff the pipeline asks for
    (io_retry_base_s, twice that: the delays it logs, and no try comes before its delay has passed); after the last
    try it is blocked, saying why and how often it was tried. (The gaps between tries are not compared with each
    other: each is the delay plus a generation, whose time under load varies more than the delays differ.)"""
    import logging
    import re

    from governance import metrics

    web = make_api(queue="redis", queue_prefix=prefix, worker="none", io_retries=2, **FAST)
    bob = web.account("bob")
    gen = web.generate(bob, "a storm at sea")
    tries: list[float] = []

    def disk_full(_gid: str) -> None:
        tries.append(time.monotonic())
        raise OSError(errno.ENOSPC, "No space left on device")

    before = metrics.RETRIES.labels(reason="storage")._value.get()
    worker = _worker(web.rt.settings, "w-full")
    worker.pipeline.on("generated", disk_full)
    try:
        with caplog.at_level(logging.WARNING, logger="governance.generations.pipeline"):
            assert worker.pipeline.run_worker(max_jobs=3, poll_s=0.05) == 3
    finally:
        worker.close()
    body = web.call("GET", f"/v1/generations/{gen['id']}", bob).get_json()
    assert body["state"] == "blocked"
    assert "No space left on device" in body["reasons"][-1] and "tried 3 time(s)" in body["reasons"][-1]
    asked = [float(m.group(1)) for r in caplog.records
             if gen["id"] in r.getMessage() and (m := re.search(r"trying again in ([0-9.e-]+) s", r.getMessage()))]
    assert asked == [0.05, 0.1] == list(web.rt.settings.io_retry_delays)
    assert len(tries) == 3 and tries[1] - tries[0] >= asked[0] and tries[2] - tries[1] >= asked[1]
    assert metrics.RETRIES.labels(reason="storage")._value.get() == before + 2
    assert web.rt.pipeline.engine.depth() == 0  # acknowledged, not dead-lettered
    assert web.leftovers() == []


def test_a_stage_over_its_time_limit_is_interrupted_and_blocked(make_api, prefix):
    web = make_api(queue="redis", queue_prefix=prefix, worker="none", stage_limit_scan_s=0.5, **FAST)
    bob = web.account("bob")
    gen = web.generate(bob, "a slow scan")

    def stuck(_gid: str) -> None:  # Python code that never ends (a call stuck in C is interrupted when it returns)
        for _ in range(600):
            time.sleep(0.05)

    worker = _worker(web.rt.settings, "w-slow")
    worker.pipeline.on("generated", stuck)
    started = time.monotonic()
    try:
        assert worker.pipeline.run_worker(max_jobs=1, poll_s=0.05) == 1
    finally:
        worker.close()
    assert time.monotonic() - started < 20
    body = web.call("GET", f"/v1/generations/{gen['id']}", bob).get_json()
    assert body["state"] == "blocked" and "StageTimeLimit" in body["reasons"][-1], body["reasons"]
    assert web.leftovers() == []


def test_a_job_the_broker_never_got_is_swept_to_it(make_api, prefix):
    """The API committed the generation but could not reach the broker: the job waits in the database, and a
    worker's sweep hands it over."""
    web = make_api(queue="redis", queue_prefix=prefix, worker="none", redis_url="redis://127.0.0.1:1/0", **FAST)
    bob = web.account("bob")
    gen = web.generate(bob, "a quiet harbour")  # 202: queued in the database
    assert _state(web, gen["id"]).enqueued_at is None
    time.sleep(0.6)
    settings = web.rt.settings.with_overrides({"redis_url": REDIS_URL})
    _run(settings, "w-sweep", 1)
    assert web.call("GET", f"/v1/generations/{gen['id']}", bob).get_json()["state"] == "released"


@pytest.mark.needs("RabbitMQ")
def test_rabbitmq_carries_jobs_too(make_api, prefix):
    """The same engine on RabbitMQ (GOVERNANCE_QUEUE=rabbitmq): how to switch brokers."""
    pytest.importorskip("pika")
    web = make_api(queue="rabbitmq", queue_prefix=prefix, worker="none", **FAST)
    bob = web.account("bob")
    gen = web.generate(bob, "a field of sunflowers")
    try:
        _run(web.rt.settings, "w-rabbit", 1)
        assert web.call("GET", f"/v1/generations/{gen['id']}", bob).get_json()["state"] == "released"
    finally:
        web.rt.pipeline.engine.broker.channel.queue_delete(web.rt.pipeline.engine.queue_name)
        web.rt.pipeline.engine.broker.channel.queue_delete(f"{web.rt.pipeline.engine.queue_name}.DQ")
        web.rt.pipeline.engine.broker.channel.queue_delete(f"{web.rt.pipeline.engine.queue_name}.XQ")


def test_verify_rate_limit_is_shared_by_every_api_process_through_redis(make_api, prefix, faces_dir):
    """With the Redis queue several API processes serve /v1/verify: the limit counts all their requests."""
    first = make_api(queue="redis", queue_prefix=prefix, worker="none", verify_per_minute=3)
    second = make_api(queue="redis", queue_prefix=prefix, worker="none", verify_per_minute=3)
    clip = (faces_dir / "short_hamilton_clip.mp4").read_bytes()[:4096]  # refused later as unreadable: cheap
    codes = [api.verify(clip).status_code for api in (first, second, first)]
    assert 429 not in codes
    over = second.verify(clip)
    assert over.status_code == 429 and over.mimetype == "application/problem+json"
    assert 1 <= int(over.headers["Retry-After"]) <= 20
    stored = list(redis.Redis.from_url(REDIS_URL).scan_iter(f"{prefix}:ratelimit:verify:*"))
    assert len(stored) == 1 and b"127.0.0.1" not in stored[0]  # the client key is hashed


def test_redis_rate_limiter_refills_and_lets_requests_through_when_redis_is_down(prefix):
    from governance.ratelimit import RedisRateLimiter

    limiter = RedisRateLimiter(120, REDIS_URL, prefix=prefix)  # two a second, burst 120
    try:
        assert all(limiter.acquire("a") == 0.0 for _ in range(120))
        wait = limiter.acquire("a")
        assert 0.0 < wait <= 0.5
        assert limiter.acquire("b") == 0.0  # another client has its own bucket
        server = redis.Redis.from_url(REDIS_URL)
        ttls = [server.ttl(k) for k in server.scan_iter(f"{prefix}:ratelimit:verify:*")]
        assert len(ttls) == 2 and all(0 < t <= 61 for t in ttls)  # an idle bucket expires once it is full again
        assert RedisRateLimiter(0, REDIS_URL, prefix=prefix).acquire("a") == 0.0  # 0: unlimited
    finally:
        limiter.close()
    down = RedisRateLimiter(1, "redis://127.0.0.1:1/0", prefix=prefix)  # nothing listens there
    assert down.acquire("a") == 0.0 and down.acquire("a") == 0.0


def test_redis_cost_bucket_is_charged_after_the_fact(prefix):
    """The verify-cost bucket (decoded megapixels) in Redis: charged once the cost is known, in debt until
    refilled, capped at one bucket of debt."""
    from governance.ratelimit import RedisRateLimiter

    cost = RedisRateLimiter(600, REDIS_URL, prefix=prefix, name="verify-cost")  # 10 megapixels a second
    try:
        assert cost.acquire("a", 0.0) == 0.0
        cost.charge("a", 900.0)
        assert 29.0 < cost.acquire("a", 0.0) <= 30.0
        assert cost.acquire("b", 0.0) == 0.0
        cost.charge("a", 10_000.0)
        assert 59.0 < cost.acquire("a", 0.0) <= 60.0
        server = redis.Redis.from_url(REDIS_URL)
        assert all(0 < server.ttl(k) <= 121 for k in server.scan_iter(f"{prefix}:ratelimit:verify-cost:*"))
    finally:
        cost.close()


def test_a_stopping_worker_hands_back_the_job_it_cannot_finish_within_its_grace(make_api, prefix):
    """SIGTERM (request_stop): no new job; the current one has shutdown_grace_s to finish, else it goes back to the
    queue (waiting again, its files removed) and another worker releases it."""
    from governance.generations.models import GenerationState

    web = make_api(queue="redis", queue_prefix=prefix, worker="none", shutdown_grace_s=0.5, **FAST)
    bob = web.account("bob")
    gen = web.generate(bob, "a slow ferry crossing")
    in_scan = threading.Event()

    def slow(_gid: str) -> None:
        in_scan.set()
        for _ in range(600):
            time.sleep(0.05)

    worker = _worker(web.rt.settings, "w-stop")
    worker.pipeline.on("generated", slow)
    thread = threading.Thread(target=worker.pipeline.run_worker, kwargs={"poll_s": 0.05})
    thread.start()
    try:
        assert in_scan.wait(60)
        worker.pipeline.request_stop()
        thread.join(30)
        assert not thread.is_alive()
    finally:
        worker.close()
    assert _state(web, gen["id"]).state is GenerationState.PRECHECKED
    assert web.leftovers() == []
    _run(web.rt.settings, "w-next", 1)
    assert _state(web, gen["id"]).state is GenerationState.RELEASED
