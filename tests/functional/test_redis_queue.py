"""The scale path for jobs: a Redis queue (real server at 127.0.0.1:6379) and separate workers."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator

import pytest

redis = pytest.importorskip("redis")
REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def prefix() -> Iterator[str]:
    name = f"cgtest-{secrets.token_hex(4)}"
    yield name
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(f"{name}:*"))
    if keys:
        client.delete(*keys)
    client.close()


def test_web_enqueues_and_a_separate_worker_releases(make_api, prefix, faces_dir):
    from governance.runtime import Runtime

    web = make_api(queue="redis", queue_prefix=prefix, worker="none")
    alice, bob = web.account("alice"), web.account("bob")
    lk = web.enroll_live(alice, faces_dir / "obama.jpg")
    web.call("PUT", f"/v1/likenesses/{lk['id']}/grants/bob", alice)
    gen = web.generate(bob, "sunset over the ocean", [lk["id"]])
    assert web.call("GET", f"/v1/generations/{gen['id']}", bob).get_json()["state"] == "prechecked"
    assert web.rt.pipeline.queue.depth() == 1

    # a worker process of its own (same settings, its own runtime), as `consentgate worker` runs it
    worker = Runtime(web.rt.settings.with_overrides({"worker_name": "w1"}))
    try:
        assert worker.pipeline.run_worker(max_jobs=1) == 1
    finally:
        worker.close()
    done = web.call("GET", f"/v1/generations/{gen['id']}", bob).get_json()
    assert done["state"] == "released", done["reasons"]
    assert web.rt.pipeline.queue.depth() == 0
    report = web.verify(web.download(bob, gen["id"])).get_json()
    assert report["c2pa"]["state"] == "Trusted" and report["record"]["generation_id"] == gen["id"]


def test_a_crashed_workers_job_is_recovered_and_runs_once(make_api, prefix, faces_dir):
    from governance.runtime import Runtime

    web = make_api(queue="redis", queue_prefix=prefix, worker="none")
    bob = web.account("bob")
    gen = web.generate(bob, "a forest in the snow")
    settings = web.rt.settings.with_overrides({"worker_name": "w-crash"})

    # the worker takes the job, marks it generating, then dies before finishing (nothing acknowledged)
    crashed = Runtime(settings)
    assert crashed.pipeline.queue.get(1.0) == gen["id"]
    from governance.db import unit_of_work
    from governance.models import Generation, GenerationState

    with unit_of_work(web.rt.engine) as s:
        s.get(Generation, gen["id"]).state = GenerationState.GENERATING
    crashed.engine.dispose()
    crashed.pipeline.queue.close()
    assert web.rt.pipeline.queue.depth() == 0

    # the same worker name restarts: its unfinished job goes back and is done exactly once
    restarted = Runtime(settings)
    try:
        assert restarted.pipeline.recover() == [gen["id"]]
        assert restarted.pipeline.run_worker(max_jobs=1) == 1
    finally:
        restarted.close()
    assert web.call("GET", f"/v1/generations/{gen['id']}", bob).get_json()["state"] == "released"


def test_double_delivery_runs_once(make_api, prefix):
    web = make_api(queue="redis", queue_prefix=prefix, worker="none")
    bob = web.account("bob")
    gen = web.generate(bob, "rain in the city")
    web.rt.pipeline.queue.put(gen["id"])  # delivered twice
    from governance.runtime import Runtime

    runs = []
    workers = [Runtime(web.rt.settings.with_overrides({"worker_name": f"w{i}"})) for i in range(2)]
    for w in workers:
        w.pipeline.on("generated", runs.append)
    threads = [threading.Thread(target=w.pipeline.run_worker, kwargs={"max_jobs": 1}) for w in workers]
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
