"""Defects found by trying ``consentgate verify FILE --url URL`` (docs/adr/0017) as a new user would: answers
that are not the service's report, a redirect, credentials in the address, an address with a query. Each test
fails while its defect stands; the report names them. The service is a stand-in (``http.server`` in a thread)
that answers each path with a fixed status, headers and body."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from governance.cli import main

from .conftest import one_line_exit

REPORT = {"c2pa": {"state": "absent", "failures": []}, "watermark": {"checked": True, "found": False},
          "origin": "unknown", "summary": "no C2PA manifest"}

#: path prefix -> (status, headers, body) the stand-in answers ``POST {prefix}/v1/verify`` with
ANSWERS: dict[str, tuple[int, dict[str, str], bytes]] = {
    "/blank": (503, {"Content-Type": "text/plain"}, b"\n\n  \n"),
    "/notreport": (200, {"Content-Type": "application/json"}, b'{"ok": true}'),
    "/partial": (200, {"Content-Type": "application/json"}, b'{"c2pa": {"state": "absent", "failures": []}}'),
    "/redirect": (301, {"Location": "https://cg.example.org/v1/verify"}, b""),
    "/html": (502, {"Content-Type": "text/html"},
              b"<html>\n<head><title>502 Bad Gateway</title></head>\n<body>nginx</body></html>\n"),
    "/ok": (200, {"Content-Type": "application/json"}, json.dumps(REPORT).encode()),
    "/control": (500, {"Content-Type": "text/plain"}, b"boom\x1b]0;pwned\x07 \x1b[2J"),
    "/huge": (200, {"Content-Type": "application/json"}, b" " * (16 * 2**20 + 10) + json.dumps(REPORT).encode()),
}


@pytest.fixture(scope="module")
def stand_in() -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status, headers, body = ANSWERS.get(self.path.removesuffix("/v1/verify"), (404, {}, b"no"))
            self.send_response(status)
            for k, v in {**headers, "Content-Length": str(len(body))}.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(5)
    server.server_close()


def test_a_blank_error_answer_names_the_status_not_an_index_error(stand_in, media):
    """S22-TRY-1: an error answer whose body is only whitespace (a proxy's 503) ended in
    ``consentgate: IndexError: list index out of range`` instead of naming the service and its status."""
    msg = one_line_exit(["verify", str(media), "--url", stand_in + "/blank"])
    assert msg.startswith(f"consentgate verify: {stand_in}/blank answered 503"), msg


@pytest.mark.parametrize("where", ["/notreport", "/partial"])
@pytest.mark.parametrize("as_json", [False, True])
def test_a_200_that_is_not_a_report_is_refused_and_nothing_is_printed(stand_in, media, capsys, as_json, where):
    """S22-TRY-2: a 200 JSON answer that is not a verification report (another service at that address, a gateway)
    ended in ``consentgate: KeyError: 'c2pa'``; with ``--json`` it was first printed to stdout as if it were the
    report, then the command failed."""
    argv = ["verify", str(media), "--url", stand_in + where] + (["--json"] if as_json else [])
    msg = one_line_exit(argv)
    assert "answered 200" in msg and "not a verification report" in msg, msg
    assert capsys.readouterr().out == ""


def test_a_redirect_says_where_it_points(stand_in, media):
    """S22-TRY-3: a service behind a proxy that redirects http to https answered ``301`` and the CLI said only
    ``answered 301``: the Location (what the user should pass instead) was dropped."""
    msg = one_line_exit(["verify", str(media), "--url", stand_in + "/redirect"])
    assert "answered 301" in msg and "https://cg.example.org/v1/verify" in msg, msg


def test_an_html_error_page_is_shown_as_its_text_not_its_first_tag(stand_in, media):
    """S22-TRY-4: a proxy's HTML error page was reduced to its first line, ``<html>``, hiding ``502 Bad Gateway``."""
    msg = one_line_exit(["verify", str(media), "--url", stand_in + "/html"])
    assert "502 Bad Gateway" in msg, msg


def test_terminal_control_bytes_of_an_answer_are_not_printed(stand_in, media):
    """S22-TRY-5: the body of a non-JSON answer went to the terminal as is, escape sequences included (a hostile
    or broken server could retitle or clear the user's terminal)."""
    msg = one_line_exit(["verify", str(media), "--url", stand_in + "/control"])
    assert "answered 500: boom" in msg and "\x1b" not in msg and "\x07" not in msg, msg


def test_a_password_in_the_address_is_not_printed(media):
    """S22-TRY-6: ``--url http://user:secret@host`` printed the password in the error line (terminal scroll-back,
    CI logs), though the project redacts URLs it prints elsewhere (``governance.config.redact_url``)."""
    msg = one_line_exit(["verify", str(media), "--url", "http://bob:s3cret@nonexistent.invalid"])
    assert "cannot reach" in msg and "s3cret" not in msg, msg
    msg = one_line_exit(["verify", str(media), "--url", "http://bob:s3cret@nonexistent.invalid:99999"])
    assert "s3cret" not in msg, msg


@pytest.mark.parametrize("suffix", ["/?a=1", "#frag"])
def test_an_address_with_a_query_or_fragment_is_refused_in_one_line(stand_in, media, suffix):
    """S22-TRY-7: ``--url http://host/?a=1`` was posted to ``/?a=1/v1/verify`` (the query swallowed the path) and
    the service's ``405`` came back with no hint why."""
    msg = one_line_exit(["verify", str(media), "--url", stand_in + suffix])
    assert "--url must be an http:// or https:// address" in msg, msg


def test_the_scheme_is_case_insensitive(stand_in, media):
    """S22-TRY-8: ``HTTP://host`` (RFC 3986: schemes are case-insensitive) was refused as not an http address."""
    msg = one_line_exit(["verify", str(media), "--url", stand_in.replace("http://", "HTTP://") + "/blank"])
    assert "answered 503" in msg, msg


def test_a_real_report_still_prints(stand_in, media, capsys):
    """What held: a 200 with a report prints it (``--json``: as is) and exits 0."""
    assert main(["verify", str(media), "--url", stand_in + "/ok/", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == REPORT


def test_a_directory_as_file_is_named_as_such(tmp_path):
    """S22-TRY-9: ``consentgate verify DIR`` said ``no such file: DIR`` of a directory that exists."""
    msg = one_line_exit(["verify", str(tmp_path), "--url", "http://127.0.0.1:9"])
    assert "a directory, not a file" in msg, msg


@pytest.mark.parametrize("raw", ["1.5", "abc"])
def test_a_whole_number_setting_says_so(raw):
    """S22-TRY-10: ``GOVERNANCE_EMBED_THREADS=1.5`` was refused with "must be a number, got '1.5'" (1.5 is one);
    a whole-number setting says it wants a whole number."""
    from governance.config import ConfigError, Settings

    with pytest.raises(ConfigError, match=r"GOVERNANCE_EMBED_THREADS must be a whole number, got "):
        Settings.from_env({"GOVERNANCE_EMBED_THREADS": raw})


@pytest.mark.parametrize(("raw", "threads"), [("0", 0), ("3", 3), ("64", 64), (" 3", 3)])
def test_embed_threads_in_range_are_taken(raw, threads):
    """What held: 0 (the cores, at most 4) to 64 are taken; -1 and 65 refused (docs/operations.md)."""
    from governance.config import ConfigError, Settings

    assert Settings.from_env({"GOVERNANCE_EMBED_THREADS": raw}).embed_threads == threads
    for bad in ("-1", "65"):
        with pytest.raises(ConfigError, match="embed_threads must be from 0"):
            Settings.from_env({"GOVERNANCE_EMBED_THREADS": bad})


def test_https_to_a_plain_http_port_says_so(stand_in, media, monkeypatch):
    """S22-TRY-11: ``--url https://host:PORT`` at a plain-HTTP port: waitress (the service's server) answers a TLS
    hello with nothing, and the CLI waited the connect timeout, then said ``cannot reach ...: Read timed out.
    (read timeout=10.0)``: it was reached, and nothing named the likely cause. A server that answers the hello in
    plain HTTP (http.server) gave ``[SSL: WRONG_VERSION_NUMBER]`` alone."""
    import socket

    import governance.cli as cli

    monkeypatch.setattr(cli, "VERIFY_CONNECT_S", 0.5)
    with socket.socket() as silent:  # accepts (the kernel's backlog) and never answers, like waitress to TLS
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        msg = one_line_exit(["verify", str(media), "--url", f"https://127.0.0.1:{silent.getsockname()[1]}"])
    assert "TLS handshake" in msg and "use http://" in msg and "cannot reach" not in msg, msg
    msg = one_line_exit(["verify", str(media), "--url", stand_in.replace("http://", "https://") + "/ok"])
    assert "TLS with" in msg and "use http://" in msg, msg


def test_an_answer_larger_than_any_report_is_not_read_whole(stand_in: str, media: Path) -> None:
    """Reported and left at first: the whole answer was read into memory, however large (a hostile or broken
    service could exhaust the client's memory). The CLI reads at most ``VERIFY_MAX_ANSWER`` (16 MiB)."""
    line = one_line_exit(["verify", str(media), "--url", stand_in + "/huge"])
    assert "answered 200 with more than 16 MiB: not a verification report" in line


def test_the_endpoint_itself_as_the_url_finds_the_service(stand_in: str, media: Path, capsys) -> None:
    """Reported and left at first: ``--url http://host/v1/verify`` (the README's curl example names the endpoint)
    answered a bare 404; the service is the address above the endpoint."""
    assert main(["verify", str(media), "--url", stand_in + "/ok/v1/verify/", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == REPORT
