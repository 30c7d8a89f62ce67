"""What an operator sees from outside: ``GET /metrics`` (Prometheus), ``GET /readyz``, and log lines that carry
the generation id."""

from __future__ import annotations

import json
import logging
import re

from prometheus_client.parser import text_string_to_metric_families

FAST = {"duration_s": 1.0, "frame_size": 256}


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def _value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_count_decisions_generations_and_stages_without_naming_anyone(make_api, faces_dir):
    api = make_api(**FAST)
    alice, bob = api.account("alice"), api.account("bob")
    lk = api.enroll_as_live(alice, faces_dir / "obama.jpg")
    before = _samples(api.call("GET", "/metrics").get_data(as_text=True))
    denied = api.generate(bob, "a walk on the beach", [lk["id"]])  # no grant: blocked at the precheck
    api.call("PUT", f"/v1/likenesses/{lk['id']}/grants/bob", alice)
    gen = api.generate(bob, "a walk on the beach", [lk["id"]])
    assert api.wait(bob, gen["id"])["state"] == "released"
    assert api.rt.pipeline.wait_idle(30)

    r = api.call("GET", "/metrics")
    assert r.status_code == 200 and r.mimetype == "text/plain"
    text = r.get_data(as_text=True)
    after = _samples(text)

    def delta(name: str, **labels: str) -> float:
        return _value(after, name, **labels) - _value(before, name, **labels)

    assert delta("consentgate_decisions_total", outcome="deny", reason="likeness:no-consent") == 1
    assert delta("consentgate_decisions_total", outcome="allow", reason="likeness:approved") == 1
    assert delta("consentgate_generations_total", state="blocked", stage="precheck") == 1
    assert delta("consentgate_generations_total", state="released", stage="release") == 1
    for stage in ("generating", "scanning", "sealing", "release"):
        assert delta("consentgate_stage_duration_seconds_count", stage=stage) == 1, stage
    assert _value(after, "consentgate_jobs", state="prechecked") == 0
    assert _value(after, "consentgate_oldest_waiting_job_age_seconds") == 0
    assert _value(after, "consentgate_index_lag_changes", index="likenesses") == 0
    assert _value(after, "consentgate_broker_queue_depth") == 0
    # nothing in it names a generation, an account, a likeness, a person or a prompt
    assert not re.search(r"(gen|acc|lk)_[0-9a-f]{16}", text) and "beach" not in text and "alice" not in text
    assert denied["state"] == "blocked"


def test_verify_requests_are_counted_with_their_cost(make_api, faces_dir):
    api = make_api(**FAST)
    before = _samples(api.call("GET", "/metrics").get_data(as_text=True))
    r = api.verify((faces_dir / "obama.jpg").read_bytes(), "obama.jpg")
    assert r.status_code == 200
    after = _samples(api.call("GET", "/metrics").get_data(as_text=True))
    assert _value(after, "consentgate_verify_requests_total", status="2xx") - \
        _value(before, "consentgate_verify_requests_total", status="2xx") == 1
    assert _value(after, "consentgate_verify_decoded_megapixels_total") > \
        _value(before, "consentgate_verify_decoded_megapixels_total")
    assert _value(after, "consentgate_verify_duration_seconds_count") - \
        _value(before, "consentgate_verify_duration_seconds_count") == 1


def test_readiness_names_what_is_unreachable(make_api):
    api = make_api(**FAST)
    ok = api.call("GET", "/readyz")
    assert ok.status_code == 200 and ok.get_json()["checks"] == {"database": "ok", "broker": "ok", "signer": "ok"}
    down = make_api(queue="redis", redis_url="redis://127.0.0.1:1/0", worker="none", **FAST)
    r = down.call("GET", "/readyz")
    assert r.status_code == 503 and r.mimetype == "application/problem+json"
    body = r.get_json()
    assert body["checks"]["broker"].startswith("unreachable") and body["checks"]["database"] == "ok"
    assert "broker" in body["detail"] and r.headers["Retry-After"] == "5"
    # the signer: its key gone (a KMS that stopped answering reads the same)
    rt = api.rt
    rt._signer_checked = None
    rt.__dict__["_signer"] = (rt.signer_material, lambda data: (_ for _ in ()).throw(TimeoutError("kms")))
    r = api.call("GET", "/readyz")
    assert r.status_code == 503 and r.get_json()["checks"]["signer"] == "unreachable (TimeoutError)"


def test_every_stage_line_carries_the_generation_id(make_api):
    from governance import logs

    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep()
    handler.addFilter(logs._Context("test-worker"))
    logger = logging.getLogger("governance.generations.pipeline")
    logger.addHandler(handler)
    old = logger.level
    logger.setLevel(logging.INFO)
    try:
        api = make_api(duration_s=1.0, frame_size=128)
        bob = api.account("bob")
        gen = api.generate(bob, "a kite over the dunes")
        assert api.wait(bob, gen["id"])["state"] == "released"
        assert api.rt.pipeline.wait_idle(30)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old)
    stage_lines = [r for r in records if getattr(r, "stage", None)]
    assert {r.stage for r in stage_lines} >= {"generating", "scanning", "sealing", "release"}
    assert all(r.generation_id == gen["id"] for r in stage_lines)
    line = json.loads(logs.JsonFormatter().format(stage_lines[0]))
    assert line["generation_id"] == gen["id"] and line["worker"] == "test-worker" and "seconds" in line
