"""An adversarial pass over what changed since 26d88a2 (review s25): ``consentgate verify FILE --url URL`` on the
standard library's ``http.client`` and ``ssl`` (docs/adr/0017, "Revision"), ``RequireHost``'s refusals logged and
counted and ``OPTIONS *`` (governance.serving, governance.web), ``governance.config.sqlite_file``. Each finding's
test fails while its defect stands (its docstring: what was done, what happened, what should happen); the attacks
that held are kept below them as regression tests. The services are real where the finding is about them
(``python -m governance serve``: waitress, gunicorn); elsewhere a stand-in on a raw socket plays the server a user
may meet (a TLS proxy, a wrong port, a server that closes mid-answer), since no library server misbehaves on demand.
Module timeouts are lowered with ``monkeypatch`` so that nothing waits long."""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import re
import socket
import ssl
import stat
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from governance import cli
from governance.cli import main
from tests.servers import start, stop

from .conftest import one_line_exit

REPORT = {"c2pa": {"state": "absent", "failures": []}, "watermark": {"checked": True, "found": False},
          "origin": "unknown", "summary": "no C2PA manifest"}
REPORT_BYTES = json.dumps(REPORT).encode()
JPEG = Path("/work/shared/testdata/c2pa/no_manifest.jpg")  # a small image without a manifest (testdata README)


# -- a stand-in server on a raw socket --------------------------------------------------------------------------------
Handler = Callable[[socket.socket, list[bytes]], None]


class StandIn:
    """A listening socket whose every connection is handed to ``handler(sock, seen)`` in a thread; ``seen`` collects
    what the handler chooses to record (request heads). ``url`` is ``http://127.0.0.1:PORT``."""

    def __init__(self, handler: Handler, host: str = "127.0.0.1", wrap: ssl.SSLContext | None = None) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family)
        self.sock.bind((host, 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.seen: list[bytes] = []
        self.handler, self.wrap = handler, wrap
        self.url = f"http://{'[' + host + ']' if ':' in host else host}:{self.port}"
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        try:
            if self.wrap is not None:
                conn = self.wrap.wrap_socket(conn, server_side=True)
            conn.settimeout(10)
            self.handler(conn, self.seen)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def stand_in() -> Iterator[Callable[..., StandIn]]:
    made: list[StandIn] = []

    def make(handler: Handler, **kw: Any) -> StandIn:
        made.append(StandIn(handler, **kw))
        return made[-1]

    yield make
    for s in made:
        s.close()


def read_request(sock: socket.socket) -> tuple[bytes, bytes]:
    """The request's head and its body (by ``Content-Length``)."""
    data = b""
    while b"\r\n\r\n" not in data:
        got = sock.recv(65536)
        if not got:
            break
        data += got
    head, _, body = data.partition(b"\r\n\r\n")
    m = re.search(rb"(?im)^content-length:\s*(\d+)", head)
    want = int(m.group(1)) if m else 0
    while len(body) < want:
        got = sock.recv(65536)
        if not got:
            break
        body += got
    return head, body


def answer(status: bytes, body: bytes, extra: bytes = b"") -> bytes:
    return (b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\nContent-Length: %d\r\n" % len(body)
            + extra + b"\r\n" + body)


def report_server(sock: socket.socket, seen: list[bytes]) -> None:
    head, _ = read_request(sock)
    seen.append(head)
    sock.sendall(answer(b"200 OK", REPORT_BYTES))


@pytest.fixture
def fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "VERIFY_CONNECT_S", 2.0)
    monkeypatch.setattr(cli, "VERIFY_READ_S", 1.0)


def make_cert(directory: Path, *, dns: tuple[str, ...] = ("localhost",),
              ips: tuple[str, ...] = ("127.0.0.1",)) -> tuple[Path, Path]:
    """A throwaway self-signed certificate (its own CA) for ``dns`` and ``ips``: the PEM files of it and its key."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "consentgate review s25")])
    now = datetime.datetime.now(datetime.UTC)
    alt = [x509.DNSName(d) for d in dns] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_pem, key_pem = directory / "cert.pem", directory / "key.pem"
    cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    return cert_pem, key_pem


def tls_context(tmp_path: Path, **kw: Any) -> tuple[ssl.SSLContext, Path]:
    cert_pem, key_pem = make_cert(tmp_path, **kw)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert_pem, key_pem)
    return ctx, cert_pem


# ======================================================================================================================
# Findings: each test fails while its defect stands
# ======================================================================================================================

def test_an_ipv6_literal_without_a_port_is_connected_to_on_the_scheme_port(fast, media):
    """S25-1. ``--url http://[::1]`` (an IPv6 literal, no port: a regulator's ``https://[2001:db8::5]/``) ended in
    ``cannot reach http://[::1]: [Errno -2] Name or service not known``: ``_connection`` hands ``http.client`` the
    host ``::1`` with port None, and http.client then reads the host's last ``:1`` as a port (host ``:``, port 1).
    urllib3 connected to [::1]:80. The port must be the scheme's (80 / 443) and the address the literal."""
    conn = cli._connection(False, "::1", None)
    assert (conn.host, conn.port) == ("::1", 80)
    conn = cli._connection(True, "2001:db8::5", None)
    assert (conn.host, conn.port) == ("2001:db8::5", 443)
    msg = one_line_exit(["verify", str(media), "--url", "http://[::1]"])
    assert "Name or service not known" not in msg and "Errno -2" not in msg, msg


@pytest.mark.parametrize(("prefix", "sent"), [("/my prefix", b"/my%20prefix/v1/verify"),
                                              ("/préfixe", b"/pr%C3%A9fixe/v1/verify")], ids=["space", "non-ascii"])
def test_a_path_prefix_with_a_space_or_a_non_ascii_letter_is_sent_percent_encoded(fast, media, stand_in, prefix,
                                                                                  sent):
    """S25-2. A service mounted under a prefix (``--url http://host/my prefix`` or ``/préfixe``, as a user types it):
    the old client (urllib3) percent-encoded the path and got the report; now a space ends in ``cannot reach ...:
    URL can't contain control characters`` and a non-ASCII letter in ``consentgate: UnicodeEncodeError: 'ascii' codec
    can't encode character``, nothing sent. The path must be sent percent-encoded (RFC 3986) and the report shown."""
    server = stand_in(report_server)
    assert main(["verify", str(media), "--url", server.url + prefix, "--json"]) == 0
    assert server.seen and server.seen[0].split(b"\r\n")[0] == b"POST " + sent + b" HTTP/1.1"


@pytest.mark.parametrize("line", [b"SSH-2.0-OpenSSH_9.6p1 Ubuntu-3ubuntu13\r\n",  # --url at the SSH port
                                  b"HTTP/1.1 2\x1b]0;pwned\x07\x1b[2J00 OK\r\n\r\n"], ids=["ssh-banner", "escapes"])
def test_a_server_that_does_not_speak_http_is_shown_in_one_line_without_control_bytes(fast, media, stand_in, line):
    """S25-3. ``--url`` at a port that does not speak HTTP (an SSH server's banner), or a status line with terminal
    escapes: the line was ``cannot reach http://...: SSH-2.0-OpenSSH_9.6p1 ...\\r\\n`` (two lines) or carried ESC and
    BEL to the terminal (an OSC title change, a screen clear): ``str(http.client.BadStatusLine)`` is the raw line, and
    the OSError/HTTPException branch prints it as is. urllib3's message held its repr. It must be one printable line."""
    def server(sock: socket.socket, seen: list[bytes]) -> None:
        read_request(sock)
        sock.sendall(line)

    msg = one_line_exit(["verify", str(media), "--url", stand_in(server).url])
    assert msg.startswith("consentgate verify: cannot reach http://127.0.0.1:"), msg


@pytest.mark.parametrize(("status", "body"), [(b"200 OK", REPORT_BYTES),
                                              (b"413 Content Too Large", b'{"title": "The upload is too large", '
                                                                         b'"detail": "over 8 MiB, the limit"}')],
                         ids=["report", "problem"])
def test_an_answer_cut_short_is_said_to_be_cut_not_taken_as_the_whole(fast, media, stand_in, status, body):
    """S25-4. A server (or a proxy's timeout) that closes after 30 bytes of an answer whose ``Content-Length`` says
    more: ``HTTPResponse.read(amt)`` returns the short read without ``IncompleteRead`` (CPython keeps that for
    compatibility), so a cut report read ``answered 200: not a verification report (is this the service's
    address?)`` and a cut problem printed its first 30 bytes of JSON as if they were the answer. urllib3 said
    ``Connection broken: IncompleteRead(30 bytes read, N more expected)``. The line must say the answer was cut."""
    def server(sock: socket.socket, seen: list[bytes]) -> None:
        read_request(sock)
        sock.sendall(answer(status, body)[: -len(body) + 30])

    msg = one_line_exit(["verify", str(media), "--url", stand_in(server).url])
    assert "not a verification report" not in msg and '{"' not in msg, msg
    assert re.search(r"incomplete|cut|closed|broken", msg, re.I), msg


def test_a_413_behind_tls_is_shown_as_the_service_answered_it(fast, tmp_path, stand_in, monkeypatch):
    """S25-5. Over https (the deployment the docs name: TLS in front), a server that answers 413 as soon as the
    declared length is over its limit and closes without reading the rest (as waitress does, here behind TLS): the
    send fails with ``ssl.SSLEOFError`` ("EOF occurred in violation of protocol"), not ``BrokenPipeError``, so the
    line was ``TLS with https://... failed: EOF occurred in violation of protocol`` and the 413 never shown. ADR 0017's
    revision says the answer is read after a broken pipe; over TLS it is not. (Catching ``ssl.SSLEOFError`` with the
    broken pipe in ``_post_file`` shows it: tried.) The line must be the service's 413."""
    ctx, cert_pem = tls_context(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_pem))  # the test's CA, as a private CA is configured
    problem = b'{"title": "The upload is too large", "detail": "over 8 MiB, the limit"}'

    def server(sock: socket.socket, seen: list[bytes]) -> None:
        sock.recv(4096)
        sock.sendall(answer(b"413 Content Too Large", problem, b"Connection: close\r\n"))
        time.sleep(0.2)

    big = tmp_path / "big.mp4"
    with big.open("wb") as f:
        f.truncate(64 * 2**20)  # sparse: nothing large written
    url = f"https://localhost:{stand_in(server, wrap=ctx).port}"
    msg = one_line_exit(["verify", str(big), "--url", url])
    assert msg == f"consentgate verify: {url} answered 413: The upload is too large; over 8 MiB, the limit", msg


def test_an_unreadable_file_is_named_as_the_file_not_the_service(fast, stand_in):
    """S25-6. A FILE that exists but cannot be read (here a procfs file mode 0200, which even root cannot open for
    reading; an unreadable file for a normal user): the CLI connects first, then ends in ``cannot reach
    http://127.0.0.1:P: [Errno 13] Permission denied: '...'`` (the service is blamed), and with the service down the
    line is ``cannot reach ...: Connection refused``, never naming the file. The old client read the file first:
    ``consentgate: PermissionError: [Errno 13] Permission denied``. The line must name the file and not the service."""
    unreadable = Path("/proc/sys/vm/compact_memory")
    if not unreadable.is_file() or os.access(unreadable, os.R_OK):
        pytest.skip("no file here that is a regular file and cannot be opened for reading")
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    for url in (stand_in(report_server).url, closed):
        msg = one_line_exit(["verify", str(unreadable), "--url", url])
        assert "cannot reach" not in msg and "Permission denied" in msg and str(unreadable) in msg, msg


def test_a_file_that_shrinks_while_it_is_sent_is_named_as_the_file_not_the_service(fast, tmp_path, stand_in):
    """S25-7. The file is cut (another process truncates it) while the upload is streamed: the line was ``cannot
    reach http://127.0.0.1:P: /tmp/.../big.mp4 shrank while it was being sent``: the service is said to be
    unreachable although it was reached and the fault is the file's. The line must not say "cannot reach"."""
    big = tmp_path / "big.mp4"
    big.write_bytes(b"\x00" * (32 * 2**20))

    def server(sock: socket.socket, seen: list[bytes]) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            data += sock.recv(65536)
        os.truncate(big, 1000)  # cut while most of it is still to be sent
        while sock.recv(2**20):
            pass

    msg = one_line_exit(["verify", str(big), "--url", stand_in(server).url])
    assert "shrank" in msg and "cannot reach" not in msg, msg


@pytest.mark.parametrize("name", [b"\xff\xfe.jpg", b"caf\xe9.jpg", b"trailing\\"],
                         ids=["not-utf8", "latin1", "trailing-backslash"])
def test_any_file_name_linux_allows_is_verified_by_the_real_service(served_one, tmp_path, name):
    """S25-8. File names a Linux disk holds: bytes that are not UTF-8 (a Latin-1 name copied from an old camera's
    card), and a name ending in a backslash. ``_post_file`` writes the non-UTF-8 bytes raw (``surrogateescape``) and a
    trailing backslash unescaped (``filename="trailing\\"``, which werkzeug reads as an escaped quote); the real
    service (waitress + werkzeug's multipart parser) then finds no file part and answers ``422 ... send the file(s)
    in the multipart form field 'media'``: the user's file is never verified, and the line blames the field. (The
    urllib3 client crashed on the first two with UnicodeEncodeError and sent the third the same way.) The service
    ignores the name: whatever name is sent, the file must be verified."""
    path = Path(os.fsdecode(bytes(tmp_path) + b"/" + name))
    path.write_bytes(JPEG.read_bytes())
    assert main(["verify", str(path), "--url", served_one, "--json"]) == 0


@pytest.mark.parametrize("url", ["http://127.0.0.1:1/\x1b]0;pwned\x07", "http://127.0.0.1:1/a\nb"],
                         ids=["escapes", "newline"])
def test_an_address_with_control_bytes_is_not_printed_raw(fast, media, url):
    """S25-9 (as before the change). ``--url`` with a terminal escape or a line break in it (pasted from a chat or a
    document): the line ``cannot reach http://127.0.0.1:1/<ESC>]0;pwned<BEL>: [Errno 111] Connection refused`` sent
    the escape to the terminal, and a line break split the message: ``shown`` is printed unescaped (only the
    "answered" part is filtered). Each message must be one printable line."""
    one_line_exit(["verify", str(media), "--url", url])


def test_a_trickling_answer_is_abandoned_after_the_read_limit(fast, media, stand_in):
    """S25-10 (as before the change: urllib3's read timeout was per read too). A server that sends its answer 20
    bytes at a time, each within the read timeout (a slowloris server; ``VERIFY_READ_S`` lowered to 1 s, the answer
    takes ~2.5 s): the CLI waited for all of it and printed the report, so a hostile or broken server can hold
    ``consentgate verify`` for ever although it says it waits ``VERIFY_READ_S`` "for the service's answer". The answer
    must be abandoned once that time has passed: ``gave no answer within 1 s``."""
    def server(sock: socket.socket, seen: list[bytes]) -> None:
        read_request(sock)
        data = answer(b"200 OK", REPORT_BYTES)
        for i in range(0, len(data), 20):
            sock.sendall(data[i:i + 20])
            time.sleep(0.25)

    msg = one_line_exit(["verify", str(media), "--url", stand_in(server).url])
    assert "gave no answer within 1 s" in msg, msg


def _made_after_connecting(tmp_path: Path, url: str) -> dict[str, int]:
    from governance.db import make_engine

    old = os.umask(0o002)
    try:
        engine = make_engine(url)
        try:
            with engine.begin() as conn:
                conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS probe (x)")
        finally:
            engine.dispose()
    finally:
        os.umask(old)
    return {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir() if p.is_file()}


@pytest.mark.parametrize("tail", ["q%3Fx.db?mode=rwc&uri=true", "cg.db?uri=true&mode=rwc"],
                         ids=["file-uri-escaped-question-mark", "path-with-uri-true-and-a-mode"])
def test_sqlite_file_names_the_file_sqlite_makes_and_it_is_0600(tmp_path, tail):
    """S25-11. ``sqlite_file`` against what SQLite makes. (a) ``sqlite:///file:DIR/q%3Fx.db?mode=rwc&uri=true`` (a
    ``?`` escaped as the module's own test does with ``quote``): SQLAlchemy decodes the name before SQLite reads it,
    so SQLite sees ``file:DIR/q?x.db?mode=rwc`` and makes ``DIR/q``; ``sqlite_file`` decodes twice and says
    ``DIR/q?x.db``. (b) ``sqlite:///DIR/cg.db?uri=true&mode=rwc`` (a path, not ``file:``, with ``uri=true``):
    SQLAlchemy appends the options to the name and SQLite makes ``DIR/cg.db?mode=rwc``; ``sqlite_file`` says
    ``DIR/cg.db``. Either way the chmod misses: the database of face templates is made 0644 (SQLite's default mode
    under a umask of 002), and the -turns file goes beside a file that is not the database.
    ``sqlite_file`` must name the file made, and every file made must be 0600."""
    url = f"sqlite:///{'file:' if tail.startswith('q') else ''}{tmp_path}/{tail}"
    made = _made_after_connecting(tmp_path, url)
    from governance.config import sqlite_file

    found = sqlite_file(url)
    assert found is not None and found.name in made, (found, made)
    assert set(made.values()) == {0o600}, made


def test_a_head_to_the_asterisk_under_gunicorn_has_no_content(served_many):
    """S25-12. ``HEAD * HTTP/1.1`` to gunicorn: its parser refuses the asterisk (only OPTIONS may send it) and
    ``problem_worker`` answers with the new asterisk detail, knowing the method is HEAD, and sends the problem's JSON
    as the answer's content. An answer to a HEAD has none (RFC 9110 section 9.3.2); under waitress the same request
    gets a 400 without content (tests/functional/test_serving.py). The content must be left out."""
    with socket.create_connection(("127.0.0.1", served_many), timeout=30) as sock:
        sock.sendall(b"HEAD * HTTP/1.1\r\nHost: t\r\n\r\n")
        data = b""
        while got := sock.recv(65536):
            data += got
    head, _, content = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 "), data
    assert content == b"", data


def test_options_in_absolute_form_without_a_path_is_the_asterisk(served_one_port):
    """S25-13. ``OPTIONS http://t HTTP/1.1``: the absolute-form with an empty path names the same target as ``OPTIONS
    *`` with ``Host: t`` (RFC 9110 section 7.1: the asterisk-form's target URI has an empty path; RFC 9112 section
    3.2.4: the last proxy sends this very request as ``OPTIONS *``, and a server must accept the absolute-form,
    section 3.2.2). waitress answered ``308`` to ``http://t/`` with an HTML page (werkzeug's slash redirect). It must
    be the 200 with ``Allow`` that ``OPTIONS *`` gets."""
    from tests.servers import exchange

    status, headers, _ = exchange(served_one_port, b"OPTIONS http://t HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    assert status == 200 and "OPTIONS" in headers.get("allow", ""), (status, headers)


# ======================================================================================================================
# The real servers for the tests above and below (one each for the module)
# ======================================================================================================================

@pytest.fixture(scope="module")
def _one_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    proc, port, _ = start(tmp_path_factory.mktemp("s25-serve"), settings={"GOVERNANCE_MAX_UPLOAD_BYTES": str(2**20)})
    try:
        yield port
    finally:
        stop(proc)


@pytest.fixture
def served_one(_one_process: int) -> str:
    return f"http://127.0.0.1:{_one_process}"


@pytest.fixture
def served_one_port(_one_process: int) -> int:
    return _one_process


@pytest.fixture(scope="module")
def served_many(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    pytest.importorskip("gunicorn")
    proc, port, _ = start(tmp_path_factory.mktemp("s25-serve-many"), "--workers", "2",
                          settings={"GOVERNANCE_MAX_UPLOAD_BYTES": str(2**20)})
    try:
        yield port
    finally:
        stop(proc)


@pytest.fixture(params=["waitress", "gunicorn"])
def either_port(request: pytest.FixtureRequest) -> int:
    return int(request.getfixturevalue("_one_process" if request.param == "waitress" else "served_many"))


# ======================================================================================================================
# Attacks that held (kept as regression tests)
# ======================================================================================================================

def test_held_a_chunked_answer_and_a_100_continue_are_read(fast, media, stand_in, capsys):
    def chunked(sock: socket.socket, seen: list[bytes]) -> None:
        read_request(sock)
        sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")
        for i in range(0, len(REPORT_BYTES), 7):
            part = REPORT_BYTES[i:i + 7]
            sock.sendall(b"%x\r\n%s\r\n" % (len(part), part))
        sock.sendall(b"0\r\n\r\n")

    assert main(["verify", str(media), "--url", stand_in(chunked).url, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == REPORT


def test_held_a_chunked_answer_cut_short_is_a_broken_connection(fast, media, stand_in):
    def cut(sock: socket.socket, seen: list[bytes]) -> None:
        read_request(sock)
        sock.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n0123456789")

    msg = one_line_exit(["verify", str(media), "--url", stand_in(cut).url])
    assert "IncompleteRead" in msg, msg


@pytest.mark.parametrize("framing", ["chunked", "close-delimited"])
def test_held_an_endless_answer_is_cut_at_16_mib(fast, media, stand_in, framing):
    def endless(sock: socket.socket, seen: list[bytes]) -> None:
        read_request(sock)
        if framing == "chunked":
            sock.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            while True:
                sock.sendall(b"100000\r\n" + b" " * 2**20 + b"\r\n")
        sock.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
        while True:
            sock.sendall(b" " * 2**20)

    msg = one_line_exit(["verify", str(media), "--url", stand_in(endless).url])
    assert "answered 200 with more than 16 MiB: not a verification report" in msg, msg


def test_held_a_redirect_is_named_without_its_password_or_escapes(fast, media, stand_in):
    def redirect(sock: socket.socket, seen: list[bytes]) -> None:
        read_request(sock)
        sock.sendall(b"HTTP/1.1 308 Permanent Redirect\r\nLocation: https://u:s3cret@cg.example/v1/verify\x1b[2J\r\n"
                     b"Content-Length: 0\r\n\r\n")

    msg = one_line_exit(["verify", str(media), "--url", stand_in(redirect).url])
    assert "redirects to https://u:***@cg.example/v1/verify" in msg and "s3cret" not in msg, msg


def test_held_a_password_in_the_address_is_never_shown_nor_sent(fast, media, stand_in):
    server = stand_in(report_server)
    url = server.url.replace("http://", "http://reg:s3cret@")
    assert main(["verify", str(media), "--url", url]) == 0
    assert b"s3cret" not in server.seen[0] and b"authorization" not in server.seen[0].lower()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://reg:s3cret@127.0.0.1:{s.getsockname()[1]}"
    for bad in (closed, "http://reg:s3cret@127.0.0.1:99999"):
        msg = one_line_exit(["verify", str(media), "--url", bad])
        assert "s3cret" not in msg, msg


def test_held_an_ipv6_literal_with_a_port_is_reached(fast, media, stand_in):
    try:
        server = stand_in(report_server, host="::1")
    except OSError:
        pytest.skip("no IPv6 loopback here")
    assert main(["verify", str(media), "--url", server.url]) == 0
    assert re.search(rb"(?im)^host: \[::1\]:%d\r?$" % server.port, server.seen[0]), server.seen[0]


def test_held_tls_refuses_an_untrusted_or_misnamed_certificate_in_one_line(fast, media, tmp_path, stand_in,
                                                                          monkeypatch):
    ctx, cert_pem = tls_context(tmp_path, dns=("cg.example",), ips=())
    port = stand_in(report_server, wrap=ctx).port
    msg = one_line_exit(["verify", str(media), "--url", f"https://127.0.0.1:{port}"])
    assert "CERTIFICATE_VERIFY_FAILED" in msg and "self-signed" in msg, msg
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_pem))  # trusted now, but not for this name
    msg = one_line_exit(["verify", str(media), "--url", f"https://localhost:{port}"])
    assert "CERTIFICATE_VERIFY_FAILED" in msg and "Hostname mismatch" in msg, msg


def test_held_a_private_ca_through_ssl_cert_file_is_trusted(fast, media, tmp_path, stand_in, monkeypatch, capsys):
    ctx, cert_pem = tls_context(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_pem))
    port = stand_in(report_server, wrap=ctx).port
    for host in ("localhost", "127.0.0.1"):
        assert main(["verify", str(media), "--url", f"https://{host}:{port}", "--json"]) == 0
        assert json.loads(capsys.readouterr().out) == REPORT


def test_held_https_to_a_plain_port_says_so(fast, media, stand_in):
    def plain_400(sock: socket.socket, seen: list[bytes]) -> None:
        sock.recv(4096)
        sock.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

    def silent(sock: socket.socket, seen: list[bytes]) -> None:
        sock.recv(4096)
        time.sleep(3)

    for handler in (plain_400, silent):
        port = stand_in(handler).port
        msg = one_line_exit(["verify", str(media), "--url", f"https://127.0.0.1:{port}"])
        assert "(a plain-HTTP port? then use http://)" in msg, msg


def test_held_an_empty_file_and_a_growing_file_send_the_length_declared(fast, tmp_path, stand_in):
    bodies: list[tuple[bytes, bytes]] = []
    grow = tmp_path / "grow.jpg"
    grow.write_bytes(b"\xff\xd8" + b"a" * (4 * 2**20))

    def server(sock: socket.socket, seen: list[bytes]) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(65536)
        if b"grow.jpg" in head:
            with grow.open("ab") as f:  # grows while it is sent
                f.write(b"b" * 2**20)
        sock.settimeout(10)
        head, _, rest = head.partition(b"\r\n\r\n")
        want = int(re.search(rb"(?im)^content-length:\s*(\d+)", head).group(1))  # type: ignore[union-attr]
        while len(rest) < want:
            rest += sock.recv(2**20)
        bodies.append((head, rest))
        sock.sendall(answer(b"200 OK", REPORT_BYTES))

    url = stand_in(server).url
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    for path, size in ((empty, 0), (grow, 2 + 4 * 2**20)):
        assert main(["verify", str(path), "--url", url]) == 0
        head, body = bodies[-1]
        boundary = re.search(rb"boundary=(\S+)", head).group(1)  # type: ignore[union-attr]
        part_head, _, rest = body.partition(b"\r\n\r\n")
        assert part_head.startswith(b"--" + boundary + b"\r\n") and b'name="media"' in part_head
        assert rest.endswith(b"\r\n--" + boundary + b"--\r\n")
        assert len(rest) - len(b"\r\n--" + boundary + b"--\r\n") == size


def test_held_a_fifo_is_refused_without_waiting_for_a_writer(fast, tmp_path):
    fifo = tmp_path / "pipe.mp4"
    os.mkfifo(fifo)
    msg = one_line_exit(["verify", str(fifo), "--url", "http://127.0.0.1:9"])
    assert str(fifo) in msg, msg


@pytest.mark.parametrize("name", ['say "cheese".jpg', "tab\there.jpg", "ctl\x01.jpg", "semi;colon=1.jpg"],
                         ids=["quotes", "tab", "control", "semicolon"])
def test_held_unusual_utf8_names_reach_the_real_service(served_one, tmp_path, name):
    path = tmp_path / name
    path.write_bytes(JPEG.read_bytes())
    assert main(["verify", str(path), "--url", served_one]) == 0


@pytest.mark.parametrize("raw", [
    b"OPTIONS * HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello",
    b"OPTIONS * HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    b"OPTIONS * HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",  # HTTP/1.0 may leave Host out
], ids=["body", "chunked-body", "http-1.0-no-host"])
def test_held_options_asterisk_with_a_body_or_over_http_1_0_then_the_next_request(either_port, raw):
    """The body of ``OPTIONS *`` is consumed, never read as the next request (pipelining)."""
    nxt = b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    with socket.create_connection(("127.0.0.1", either_port), timeout=30) as sock:
        sock.sendall(raw + nxt)
        data = b""
        while got := sock.recv(65536):
            data += got
    assert re.findall(rb"HTTP/1\.[01] (\d{3}) ", data) == [b"200", b"200"], data
    assert b"Allow: " in data.split(b"\r\n\r\n")[0]


def test_held_a_refused_host_logs_no_raw_line_break(either_port):
    """A path with an encoded line break and no Host: a 400 problem whose JSON escapes it."""
    from tests.servers import exchange

    status, headers, body = exchange(either_port, b"GET /a%0Ab HTTP/1.1\r\nConnection: close\r\n\r\n")
    assert status == 400 and headers["content-type"] == "application/problem+json"
    assert json.loads(body)["instance"] == "/a\nb"


@pytest.mark.parametrize(("url", "expected"), [
    ("sqlite:///file:/srv/cg.db?uri=true&mode=memory&mode=rwc", "/srv/cg.db"),  # the last mode wins, as in SQLite
    ("sqlite:///file://LOCALHOST/srv/cg.db?uri=true", None),  # SQLite's authority check is case-sensitive
    ("sqlite:///file:/srv/cg.db?uri=true&mode=Memory", "/srv/cg.db"),  # not SQLite's "memory": it refuses it
    ("sqlite:///file:/srv/%ZZ.db?uri=true", "/srv/%ZZ.db"),  # not an escape: kept, as SQLite keeps it
    ("sqlite:///file:/srv/cg.db#part?uri=true", "/srv/cg.db"),  # SQLite stops at the fragment
    ("sqlite:///file:?uri=true", None),  # SQLite's empty name: a temporary database
])
def test_held_sqlite_file_reads_odd_uris_as_sqlite_does(url, expected):
    from governance.config import sqlite_file

    found = sqlite_file(url)
    assert (str(found) if found is not None else None) == expected
