"""Every error over HTTP is the service's problem+json, from the one handler (issue 18, item 4): werkzeug's
own answers (413, 405, an unknown route) carry the service's types, and a setting the service cannot run with,
met inside a request, says so instead of a bare 500."""

from __future__ import annotations

PROBLEMS = "https://consentgate.dev/problems/"


def test_an_upload_over_the_limit_is_the_services_too_large(make_api):
    api = make_api(max_upload_bytes=4096)
    r = api.verify(b"\x00\x00\x00\x18ftypmp42" + b"0" * 10_000)
    assert r.status_code == 413 and r.mimetype == "application/problem+json"
    body = r.get_json()
    assert body["type"] == PROBLEMS + "too-large" and body["title"] == "The upload is too large"
    assert body["detail"] == "uploads are limited to 4096 bytes (0.0 MB)" and body["instance"] == "/v1/verify"


def test_routing_answers_are_problems_with_the_services_types(api):
    r = api.client.get("/v1/no-such-thing")
    assert r.status_code == 404 and r.get_json()["type"] == PROBLEMS + "not-found"
    r = api.client.delete("/v1/verify")
    assert r.status_code == 405 and r.get_json()["type"] == PROBLEMS + "method-not-allowed"
    assert r.mimetype == "application/problem+json"


def test_a_configuration_error_inside_a_request_names_the_setting(make_api, faces_dir):
    """Found in issue 18: a face backend that cannot be built answered a bare 'internal error'."""
    api = make_api(face_backend="insightface", insightface_dir="")
    alice = api.account("alice")
    r = api.multipart("/v1/likenesses", alice, [("obama.jpg", (faces_dir / "obama.jpg").read_bytes())])
    assert r.status_code == 500 and r.mimetype == "application/problem+json"
    body = r.get_json()
    assert body["type"] == PROBLEMS + "configuration" and body["title"] == "The service is misconfigured"
    assert "the insightface backend needs a model directory (GOVERNANCE_INSIGHTFACE_DIR)" in body["detail"]
