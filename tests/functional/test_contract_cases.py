"""Each defect the schemathesis run (test_openapi_contract.py) found, kept as a plain test of its own case."""

from __future__ import annotations

PROBLEM = "application/problem+json"


def test_a_method_the_path_does_not_take_is_405_with_allow(api):
    # found by schemathesis' unsupported_method check: the problem+json answer dropped werkzeug's Allow header
    token = api.account("ann")
    r = api.call("TRACE", "/v1/me", token)
    assert r.status_code == 405 and r.mimetype == PROBLEM
    assert set(r.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS"}
    r = api.call("DELETE", "/v1/me/token", token)
    assert r.status_code == 405 and set(r.headers["Allow"].split(", ")) == {"POST", "OPTIONS"}
