"""``consentgate serve --workers N`` (ADR 0010): N API processes under gunicorn on one port, each with its own app."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from importlib import util as importlib_util
from pathlib import Path
from typing import Any

import pytest

from tests.servers import ROOT, exchange, free_port, start, stop


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(x) for x in path.read_text().split()] if path.exists() else []


def test_serve_with_two_workers_answers_from_two_processes_and_stops(tmp_path):
    pytest.importorskip("gunicorn")
    if not Path("/proc/self/task").exists():
        pytest.skip("counts processes through /proc")
    port = free_port()
    env = {**os.environ, "GOVERNANCE_DATA_DIR": str(tmp_path / "var"), "GOVERNANCE_WORKER": "none",
           "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "governance", "serve", "--port", str(port), "--workers", "2"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline, body = time.monotonic() + 120, None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    body = json.loads(r.read())
                if len(_children(proc.pid)) == 2:
                    break
            except OSError:
                pass
            time.sleep(0.3)
        assert body is not None and body["status"] == "ok"
        assert len(_children(proc.pid)) == 2  # the master and its two workers
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/log", timeout=10) as r:
            assert r.status == 200
    finally:
        proc.terminate()
        out = proc.communicate(timeout=60)[0].decode(errors="replace")
    assert proc.returncode == 0, out
    assert "processes=2" in out


# -- consentgate serve (one waitress process): waitress's own error answers are problem+json too -------------------
# Below the app's limit the app reads the body; between the limit and waitress's bound (limit + 1 MiB) the app
# answers 413 from the Content-Length; above the bound waitress refuses the body itself, before the app sees it.
LIMIT = 4096
BOUND = LIMIT + 1_048_576  # governance.serving.BODY_SLACK_BYTES over the limit
SETTINGS = {"GOVERNANCE_MAX_UPLOAD_BYTES": str(LIMIT)}


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    """``python -m governance serve`` (one waitress process) with a 4 KiB upload limit: its port."""
    proc, port, _ = start(tmp_path_factory.mktemp("serve"), settings=SETTINGS)
    try:
        yield port
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def many_processes(tmp_path_factory):
    """``python -m governance serve --workers 2`` (gunicorn) with a 4 KiB upload limit: its port and its log."""
    pytest.importorskip("gunicorn")
    proc, port, log = start(tmp_path_factory.mktemp("serve-many"), "--workers", "2", settings=SETTINGS)
    try:
        yield port, log
    finally:
        stop(proc)


@pytest.fixture(scope="module", params=["one process", "two workers"])
def either(request):
    """The port of each way of serving: one waitress process, or gunicorn with two workers."""
    if request.param == "one process":
        return request.getfixturevalue("one_process")
    return request.getfixturevalue("many_processes")[0]


def _assert_problem(status: int, headers: dict[str, str], body: bytes, want: int, type_: str) -> dict[str, Any]:
    assert status == want, body
    assert headers["content-type"] == "application/problem+json"
    problem = json.loads(body)
    assert problem["type"] == f"https://consentgate.dev/problems/{type_}"
    assert problem["status"] == want
    assert problem["title"] and problem["detail"]
    return problem


def test_a_normal_request_is_still_served(either):
    status, headers, body = exchange(either, b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    assert status == 200 and headers["content-type"] == "application/json"
    assert json.loads(body)["status"] == "ok"


def test_an_upload_over_the_limit_gets_the_apps_413(either):
    """Under waitress: a body between the limit and waitress's bound. gunicorn has no body limit of its own: any
    body over the app's limit gets the app's 413 (the app reads the Content-Length)."""
    body = b"x" * (LIMIT + 10)
    head = (f"POST /v1/verify HTTP/1.1\r\nHost: t\r\nContent-Type: application/octet-stream\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    problem = _assert_problem(*exchange(either, head, [body]), 413, "too-large")
    assert f"{LIMIT} bytes" in problem["detail"]


def test_an_upload_over_the_limit_plus_one_mib_is_problem_json_not_waitress_text(one_process):
    """The reported case: a body over waitress's bound got its plain-text 413 page."""
    size = BOUND + 4096
    head = (f"POST /v1/verify HTTP/1.1\r\nHost: t\r\nContent-Type: application/octet-stream\r\n"
            f"Content-Length: {size}\r\n\r\n").encode()
    problem = _assert_problem(*exchange(one_process, head, (b"x" * 65536 for _ in range(size // 65536 + 1))),
                              413, "too-large")
    assert f"{LIMIT} bytes" in problem["detail"] and problem["instance"] == "/v1/verify"


def test_a_content_length_far_above_the_bound_is_refused_before_any_body(one_process):
    head = b"POST /v1/verify HTTP/1.1\r\nHost: t\r\nContent-Length: 99999999999\r\n\r\n"
    _assert_problem(*exchange(one_process, head), 413, "too-large")


def test_a_chunked_body_over_the_bound_is_problem_json(one_process):
    chunk = b"%x\r\n%s\r\n" % (65536, b"x" * 65536)
    head = b"POST /v1/verify HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
    _assert_problem(*exchange(one_process, head, (chunk for _ in range(BOUND // 65536 + 4))), 413, "too-large")


@pytest.mark.parametrize(("raw", "want", "type_"), [
    (b"GET\x01 / HTTP/1.1\r\nHost: t\r\n\r\n", 400, "bad-request"),  # malformed method
    (b"GET / HTTP/1.1\r\nHost: t\r\nNo colon here\r\n\r\n", 400, "bad-request"),  # malformed header line
    (b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: ten\r\n\r\n", 400, "bad-request"),
    (b"POST /v1/verify HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400, "bad-request"),
    (b"POST /v1/verify HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n", 501, "not-implemented"),
    (b"GET / HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 300_000 + b"\r\n\r\n", 431, "headers-too-large"),
], ids=["method", "header-line", "content-length", "chunk-size", "transfer-coding", "headers-too-large"])
def test_waitress_parser_errors_are_problem_json(one_process, raw, want, type_):
    _assert_problem(*exchange(one_process, raw), want, type_)


def test_a_500_from_waitress_says_nothing_of_its_cause():
    from waitress.utilities import InternalServerError

    from governance.serving import waitress_problem

    status, headers, body = waitress_problem(InternalServerError('Traceback ... File "/srv/app.py"'), LIMIT)
    assert status.startswith("500 ") and headers == [("Content-Type", "application/problem+json")]
    problem = json.loads(body)
    assert problem["type"].endswith("/internal") and "Traceback" not in problem["detail"]
    assert "/srv" not in body.decode()


# -- consentgate serve --workers N (gunicorn): its parser's answers are problem+json too ------------------------------
@pytest.mark.parametrize(("raw", "want", "type_"), [
    (b"GET\x01 / HTTP/1.1\r\nHost: t\r\n\r\n", 400, "bad-request"),  # malformed method
    (b"GET / HTTP/9.9\r\nHost: t\r\n\r\n", 400, "bad-request"),  # a version gunicorn does not speak
    (b"GET / HTTP/1.1\r\nHost: t\r\nNo colon here\r\n\r\n", 400, "bad-request"),  # malformed header line
    (b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: ten\r\n\r\n", 400, "bad-request"),
    (b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: t\r\n\r\n", 414, "uri-too-long"),  # limit_request_line 4094
    (b"GET / HTTP/1.1\r\nHost: t\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(120)) + b"\r\n",
     431, "headers-too-large"),  # limit_request_fields 100
    (b"GET / HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n", 431, "headers-too-large"),  # 8190
    (b"POST /v1/verify HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n", 400, "bad-request"),  # no length
    (b"POST /v1/verify HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: br, chunked\r\n\r\n", 501, "not-implemented"),
    (b"GET / HTTP/1.1\r\nHost: t\r\nExpect: a-miracle\r\n\r\n", 417, "expectation-failed"),
    (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "bad-request"),  # two Host lines: gunicorn's own
], ids=["method", "version", "header-line", "content-length", "request-line-too-long", "too-many-headers",
        "header-field-too-large", "not-chunked", "transfer-coding", "expectation", "two-hosts"])
def test_gunicorn_parser_errors_are_problem_json(many_processes, raw, want, type_):
    status, headers, body = exchange(many_processes[0], raw)
    _assert_problem(status, headers, body, want, type_)
    assert headers["connection"] == "close"  # as gunicorn's own page: the rest of the request was not read


def test_gunicorn_still_logs_the_refused_request(many_processes):
    """The problem+json answer replaces gunicorn's page only: its warning naming the client and the fault stays."""
    port, log = many_processes
    _assert_problem(*exchange(port, b"GET / HTTP/1.1\r\nHost: t\r\nX-Logged\x01: v\r\n\r\n"), 400, "bad-request")
    deadline = time.monotonic() + 10
    while "X-LOGGED" not in log.read_text(errors="replace").upper() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "Invalid request from ip=127.0.0.1" in log.read_text(errors="replace")


@pytest.mark.parametrize("chunks", [b"zz\r\n", b"4\r\nabcdXY"], ids=["chunk-size", "chunk-terminator"])
def test_a_malformed_chunk_under_gunicorn_is_problem_json(many_processes, chunks):
    head = b"POST /v1/verify HTTP/1.1\r\nHost: t\r\nContent-Type: multipart/form-data; boundary=b\r\n" \
           b"Transfer-Encoding: chunked\r\n\r\n"
    _assert_problem(*exchange(many_processes[0], head + chunks), 400, "bad-request")


def test_a_chunked_upload_over_the_limit_under_gunicorn_gets_the_apps_413(many_processes):
    chunk = b"%x\r\n%s\r\n" % (1024, b"x" * 1024)
    head = b"POST /v1/verify HTTP/1.1\r\nHost: t\r\nContent-Type: multipart/form-data; boundary=b\r\n" \
           b"Transfer-Encoding: chunked\r\n\r\n"
    problem = _assert_problem(*exchange(many_processes[0], head + chunk * 8 + b"0\r\n\r\n"), 413, "too-large")
    assert f"{LIMIT} bytes" in problem["detail"]


def test_a_500_from_gunicorn_says_nothing_of_its_cause():
    from governance.serving import server_problem

    status, headers, body = server_problem(500, "Internal Server Error", 'Traceback ... File "/srv/app.py"', LIMIT)
    assert status == "500 Internal Server Error" and headers == [("Content-Type", "application/problem+json")]
    assert "/srv" not in body.decode() and json.loads(body)["type"].endswith("/internal")


# -- every status the servers answer has its own documented problem type -------------------------------------------
def _documented() -> dict[str, int]:
    import re

    text = (ROOT / "docs" / "security.md").read_text()
    table = text.split("<!-- problem-types:start -->")[1].split("<!-- problem-types:end -->")[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^\| `([a-z-]+)` \| (\d{3}) \|", table, re.M)}


#: Every status gunicorn 27.0.1's ``Worker.handle_error`` sets (constraints.txt pins it: a gunicorn upgrade re-reads
#: its classification), with its reason phrase.
GUNICORN_STATUSES = {400: "Bad Request", 403: "Forbidden", 414: "URI Too Long", 417: "Expectation Failed",
                     431: "Request Header Fields Too Large", 500: "Internal Server Error", 501: "Not Implemented"}


def _waitress_statuses() -> dict[int, str]:
    """Every status one of waitress's parser errors (``waitress.utilities.Error`` and its subclasses) answers."""
    from waitress import utilities

    errors = [getattr(utilities, name) for name in dir(utilities)]
    return {e.code: e.reason for e in errors if isinstance(e, type) and issubclass(e, utilities.Error)}


def test_every_status_either_server_answers_has_a_type_of_its_own():
    """The servers' problem (``server_problem``) for each status they answer carries a type documented with that
    status, never ``about:blank`` and never another status's slug; ``GUNICORN_STATUSES`` is checked against
    gunicorn's source, so a status added by an upgrade is not missed."""
    import inspect

    from governance.serving import server_problem

    statuses = {**_waitress_statuses(), **GUNICORN_STATUSES}
    assert set(_waitress_statuses()) == {400, 413, 431, 500, 501}
    if importlib_util.find_spec("gunicorn") is not None:
        from gunicorn.workers.base import Worker

        source = inspect.getsource(Worker.handle_error)
        assert {int(c) for c in re.findall(r"status_int = (\d{3})", source)} == set(GUNICORN_STATUSES)
    documented = _documented()
    for code, reason in sorted(statuses.items()):
        status, headers, body = server_problem(code, reason, "what the server said", LIMIT, "/v1/x")
        problem = json.loads(body)
        assert status == f"{code} {reason}" and problem["status"] == code
        slug = problem["type"].removeprefix("https://consentgate.dev/problems/")
        assert documented.get(slug) == code, (code, problem["type"])


def test_a_status_without_a_type_of_its_own_is_about_blank_not_another_statuss():
    """The rejection path of the registry: a status no class claims (none is answered today) is RFC 9457's
    ``about:blank`` with the status's phrase as title."""
    from governance.serving import server_problem

    status, _, body = server_problem(418, "I'm a teapot", "short and stout", LIMIT, "/v1/x")
    problem = json.loads(body)
    assert status == "418 I'm a teapot"
    assert (problem["type"], problem["title"], problem["status"]) == ("about:blank", "I'm a teapot", 418)


# -- RFC 9112 section 3.2: an HTTP/1.1 request carries exactly one Host (governance.serving.RequireHost) -----------
@pytest.mark.parametrize("raw", [
    b"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n",
    b"POST /v1/verify HTTP/1.1\r\nContent-Type: application/octet-stream\r\nContent-Length: 5\r\n"
    b"Connection: close\r\n\r\nhello",
], ids=["get", "post-with-body"])
def test_an_http11_request_without_host_is_a_400_problem_naming_its_path(either, raw):
    problem = _assert_problem(*exchange(either, raw), 400, "bad-request")
    assert "Host" in problem["detail"] and "RFC 9112" in problem["detail"]
    assert problem["instance"] == raw.split(b" ")[1].decode()


def test_two_host_lines_are_a_400_under_waitress_too(one_process):
    """gunicorn refuses a second ``Host`` line itself (the gunicorn table above); waitress joins the two with ", "."""
    raw = b"GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n"
    problem = _assert_problem(*exchange(one_process, raw), 400, "bad-request")
    assert "one Host" in problem["detail"]


@pytest.mark.parametrize("raw", [
    b"GET /healthz HTTP/1.0\r\n\r\n",  # HTTP/1.0 has no Host requirement
    b"GET /healthz HTTP/1.1\r\nHost:\r\nConnection: close\r\n\r\n",  # an empty Host: a target with no authority
    b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nConnection: close\r\n\r\n",
], ids=["http-1.0", "empty-host", "host-and-port"])
def test_a_request_with_its_host_or_without_the_need_is_served(either, raw):
    status, headers, body = exchange(either, raw)
    assert status == 200 and json.loads(body)["status"] == "ok", body


def test_after_a_refused_host_the_connection_serves_the_next_request(either):
    """The refusal is the app's answer to a framed request, so the connection stays usable (a 400 with the body left
    unread must not leave that body to be read as the next request)."""
    import socket

    raw = (b"POST /v1/verify HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"
           b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    with socket.create_connection(("127.0.0.1", either), timeout=30) as sock:
        sock.sendall(raw)
        data = b""
        while got := sock.recv(65536):
            data += got
    statuses = re.findall(rb"HTTP/1\.1 (\d{3}) ", data)  # the 400's JSON body ends with no newline
    assert statuses == [b"400", b"200"], data


# -- RequireHost's refusals end in the request log and the metrics like every answer (reported s25) ------------------
# Found: a 400 for a missing Host never reached the request log (governance.request) nor /metrics, under either
# server: RequireHost answers before the app and its hooks. The records are read from the server's JSON log; a record
# is written before the answer is sent, so it is in the file once the answer is read.
@pytest.fixture(scope="module", params=["one process", "two workers"])
def json_logged(request, tmp_path_factory):
    """Each way of serving with JSON logs (``GOVERNANCE_LOG_FORMAT=json``): its port and the file of its output."""
    args = ("--workers", "2") if request.param == "two workers" else ()
    if args:
        pytest.importorskip("gunicorn")
    proc, port, log = start(tmp_path_factory.mktemp("serve-json"), *args,
                            settings={**SETTINGS, "GOVERNANCE_LOG_FORMAT": "json"})
    try:
        yield port, log
    finally:
        stop(proc)


def _request_records(log: Path, path: str) -> list[dict[str, Any]]:
    """The request log's records (``governance.request``) of ``path``, in the order written."""
    records = []
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            if record["logger"] == "governance.request" and record["path"] == path:
                records.append(record)
    return records


_HTTP_RESPONSES = re.compile(r'^consentgate_http_responses_total\{status="(\d{3})"\} ([0-9.e+]+)$', re.M)


def _answers_by_status(conn: Any) -> dict[int, float]:
    """``GET /metrics`` on ``conn`` (one keep-alive connection: one worker process, whose counters these are):
    ``consentgate_http_responses_total`` by status."""
    conn.request("GET", "/metrics", headers={"Host": "t"})
    r = conn.getresponse()
    text = r.read().decode()
    assert r.status == 200, text
    return {int(code): float(value) for code, value in _HTTP_RESPONSES.findall(text)}


def _send_without_host(conn: Any, method: str, target: str) -> tuple[int, bytes]:
    conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
    conn.endheaders()
    r = conn.getresponse()
    return r.status, r.read()


@pytest.mark.parametrize(("method", "target"), [("GET", "/v1/no-host-probe"), ("HEAD", "/healthz"),
                                                ("OPTIONS", "*")], ids=["get", "head", "options-asterisk"])
def test_a_refused_host_is_logged_and_counted_as_every_answer(json_logged, method, target):
    import http.client

    port, log = json_logged
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        before = _answers_by_status(conn)
        status, body = _send_without_host(conn, method, target)
        assert status == 400 and (body == b"" if method == "HEAD" else b"RFC 9112 section 3.2" in body)
        after = _answers_by_status(conn)  # the same connection, so the same process
    finally:
        conn.close()
    assert after.get(400, 0) - before.get(400, 0) == 1
    assert after.get(200, 0) - before.get(200, 0) == 1  # the first scrape (its own count comes after its body)
    refused = [r for r in _request_records(log, target) if r["method"] == method and r["status"] == 400]
    assert len(refused) == 1, refused
    record = refused[0]
    served = _request_records(log, "/healthz")[0]  # an answer of the app: the shape to match
    assert set(record) == set(served) and served["status"] == 200
    assert record["level"] == "INFO" and record["account_id"] == "-" and record["generation_id"] == "-"
    assert isinstance(record["duration_ms"], float) and record["duration_ms"] >= 0
    assert record["message"] == f"{method} {target} 400 {record['duration_ms']:.1f} ms"


@pytest.mark.parametrize("json_logged", ["one process"], indirect=True)  # gunicorn's parser refuses it itself
def test_two_host_lines_refused_under_waitress_are_logged(json_logged):
    port, log = json_logged
    raw = b"GET /v1/two-hosts-probe HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n"
    _assert_problem(*exchange(port, raw), 400, "bad-request")
    assert [(r["method"], r["status"]) for r in _request_records(log, "/v1/two-hosts-probe")] == [("GET", 400)]


# -- OPTIONS * (RFC 9110 section 9.3.7, RFC 9112 section 3.2.4): about the server, not a resource --------------------
def _statuses(port: int, raw: bytes) -> tuple[list[bytes], bytes]:
    """Every answer's status line code on one connection that sent ``raw`` (its last request closing it)."""
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(raw)
        data = b""
        while got := sock.recv(65536):
            data += got
    return re.findall(rb"HTTP/1\.1 (\d{3}) ", data), data


def test_options_asterisk_is_200_with_allow_and_the_connection_goes_on(either):
    raw = b"OPTIONS * HTTP/1.1\r\nHost: t\r\n\r\n" b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    statuses, data = _statuses(either, raw)
    assert statuses == [b"200", b"200"], data
    head, _, rest = data.partition(b"\r\n\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in
               (line.partition(":") for line in head.decode("latin-1").split("\r\n")[1:])}
    assert headers["content-length"] == "0" and rest.startswith(b"HTTP/1.1 200 ")  # no content: the next answer
    allow = [m.strip() for m in headers["allow"].split(",")]
    assert allow == sorted(allow) and {"GET", "HEAD", "POST", "DELETE", "OPTIONS"} <= set(allow), allow


def test_options_asterisk_allows_every_method_some_route_takes(api):
    """In process: ``Allow`` is the union of the routes' methods, nothing more (no ``CONNECT``, ``TRACE``)."""
    r = api.client.open("*", method="OPTIONS")
    assert r.status_code == 200 and r.data == b""
    routes = {m for rule in api.app.url_map.iter_rules() for m in rule.methods}
    assert r.headers["Allow"].split(", ") == sorted(routes | {"OPTIONS"})
    assert not {"CONNECT", "TRACE"} & set(r.headers["Allow"].split(", "))


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE", "PUT"])
def test_another_method_to_the_asterisk_is_a_400_problem_saying_only_options(either, method):
    raw = f"{method} * HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode()
    problem = _assert_problem(*exchange(either, raw), 400, "bad-request")
    assert "only for OPTIONS" in problem["detail"] and "RFC 9112 section 3.2.4" in problem["detail"]
    assert f"{method!r} came" in problem["detail"]
    assert "instance" not in problem  # "*" names no resource ("/*" would be another one)


def test_a_head_to_the_asterisk_under_waitress_is_a_400_without_a_body(one_process):
    """The app's 400, so the connection goes on: the answer to a HEAD has no content (RFC 9110 section 9.3.2)."""
    statuses, data = _statuses(one_process, b"HEAD * HTTP/1.1\r\nHost: t\r\n\r\n"
                                            b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    assert statuses == [b"400", b"200"], data
    assert data.partition(b"\r\n\r\n")[2].startswith(b"HTTP/1.1 200 "), data


@pytest.mark.parametrize("raw", [
    b"HEAD /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: x\r\n\r\n",  # gunicorn: the error names the request
    b"HEAD /healthz HTTP/1.1\r\nHost: t\r\nNo colon here\r\n\r\n",  # neither server's error names it
    b"HEAD * HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",  # gunicorn's parser refuses it (review s25, 12)
], ids=["bad-length", "bad-header-line", "asterisk"])
def test_a_head_refused_by_either_server_has_no_content_and_the_length_a_get_gets(either, raw):
    """Whoever refuses a HEAD (the server's parser or the app), its answer has no content (RFC 9110 section
    9.3.2), and its ``Content-Length`` is that of the answer to the same request by another method (section 8.6; a
    POST, as long a name as HEAD, since the asterisk's detail names the method): both servers' own refusals sent
    the problem's JSON after the head (``governance.serving``: waitress's error task, gunicorn's worker)."""
    status, headers, body = exchange(either, raw)
    get_status, get_headers, get_body = exchange(either, raw.replace(b"HEAD ", b"POST ", 1))
    assert status == get_status == 400 and headers["content-type"] == "application/problem+json", (status, body)
    assert body == b"" and get_body, body
    assert headers.get("content-length") == get_headers.get("content-length") == str(len(get_body)), headers


@pytest.mark.parametrize("target", [b"http://t", b"HTTPS://t:8080", b"http://user@t"])
def test_options_in_absolute_form_with_an_empty_path_is_the_asterisk(either, target):
    """``OPTIONS http://t`` is ``OPTIONS *`` (RFC 9112 section 3.2.4: a proxy forwards it so; RFC 9110 section
    7.1) under both servers: 200 with the asterisk's ``Allow``, no redirect to ``/`` (review s25, finding 13)."""
    status, headers, _ = exchange(either, b"OPTIONS " + target + b" HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    _, asterisk, _ = exchange(either, b"OPTIONS * HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    assert status == 200 and headers["allow"] == asterisk["allow"] and headers["content-length"] == "0", headers


@pytest.mark.parametrize(("sent", "same_as"), [
    (b"OPTIONS http://t/ HTTP/1.1", b"OPTIONS / HTTP/1.1"),  # a path: the resource's OPTIONS
    (b"OPTIONS http://t/v1/no-such-thing HTTP/1.1", b"OPTIONS /v1/no-such-thing HTTP/1.1"),
    (b"GET http://t HTTP/1.1", b"GET http://t HTTP/1.1"),  # another method: the origin's "/", never a 400 of "*"
], ids=["slash", "path", "get"])
def test_an_absolute_form_with_a_path_or_another_method_is_not_the_asterisk(either, sent, same_as):
    tail = b"\r\nHost: t\r\nConnection: close\r\n\r\n"
    status, headers, _ = exchange(either, sent + tail)
    want, want_headers, _ = exchange(either, same_as + tail)
    assert status == want and headers.get("allow") == want_headers.get("allow"), (status, headers)
    asterisk = exchange(either, b"OPTIONS * HTTP/1.1" + tail)[1]["allow"]
    assert headers.get("allow") != asterisk


@pytest.mark.parametrize("raw", [
    b"OPTIONS /* HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",  # a path: no such resource
    b"OPTIONS /v1/no-such-thing HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
], ids=["slash-asterisk", "unknown-path"])
def test_options_to_a_path_that_is_no_resource_is_still_a_404(either, raw):
    problem = _assert_problem(*exchange(either, raw), 404, "not-found")
    assert problem["instance"] == raw.split(b" ")[1].decode()


def test_options_asterisk_is_in_the_request_log_as_sent(json_logged):
    port, log = json_logged
    before = len([r for r in _request_records(log, "*") if r["status"] == 200])
    status, headers, _ = exchange(port, b"OPTIONS * HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    assert status == 200 and "OPTIONS" in headers["allow"]
    records = [r for r in _request_records(log, "*") if r["status"] == 200]
    assert len(records) == before + 1 and records[-1]["method"] == "OPTIONS"
    assert not _request_records(log, "/*")  # werkzeug's reading of it
