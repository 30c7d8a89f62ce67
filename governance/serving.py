"""Several API processes on one port: ``consentgate serve --workers N`` (docs/operations.md, ADR 0010).

One Python process serves at most one core of Flask and SQLAlchemy work (the GIL): measured with
``python -m bench decisions --http``, a single waitress process tops out well under what two cores give. With
``--workers N`` (N > 1) the service runs under gunicorn: a master that binds the port and keeps N worker processes
alive (a crashed one is replaced), each importing the app itself after the fork (no shared database connections,
c2pa objects or job threads), each with ``--threads`` threads (gthread). ``consentgate serve`` without
``--workers`` stays the single waitress process of the embedded setup (``make run``).

Each worker process is a whole API process: its in-process job worker (``GOVERNANCE_WORKER=thread``) runs the jobs
that process accepted, its rate limits and metrics are its own unless Redis backs them (``GOVERNANCE_REDIS_URL``),
as with several API machines (docs/operations.md).

Under both, :class:`RequireHost` stands in front of the app: an HTTP/1.1 request without ``Host``, or with more than
one, is a 400 problem (RFC 9112 section 3.2), which neither server refuses by itself in every case. Its refusals
end with the request log's record and count in ``consentgate_http_responses_total`` as the app's answers do.

``OPTIONS *`` (the asterisk-form target, RFC 9112 section 3.2.4) is answered by the app under both
(:func:`governance.web.server_options`: 200 with ``Allow``); another method with ``*`` is a 400 problem, the app's
under waitress, gunicorn's parser's under gunicorn (same detail: :func:`governance.web.asterisk_refusal`).

The single process (:func:`serve_one`) is waitress. Its parser answers some requests itself, before the app sees
them: a body over its bound (413), a malformed request line, header or chunk (400), headers over its limit (431),
a transfer coding it does not know (501), and a 500 when serving a request raised. Out of the box those answers are
waitress's plain-text pages; here they are RFC 9457 ``application/problem+json`` like every other error of the API,
with the members :func:`governance.errors.problem_for` gives (the one mapping: waitress's error becomes werkzeug's
exception of the same status first, and each status has its own problem type: ``too-large``, ``bad-request``,
``headers-too-large``, ``not-implemented``, ``internal``; docs/security.md)::

    >>> from waitress.utilities import RequestEntityTooLarge
    >>> status, headers, body = waitress_problem(RequestEntityTooLarge("exceeds max_body of 10"), 1024, "/v1/x")
    >>> status, headers[0], json.loads(body)["type"]
    ('413 Request Entity Too Large', ('Content-Type', 'application/problem+json'), 'https://consentgate.dev/problems/too-large')

Several processes (:func:`serve_many`) are gunicorn's gthread workers, whose parser answers too: a malformed request
line, method, version or header (400), a request line over ``limit_request_line`` (414), an ``Expect`` other than
``100-continue`` (417), more header fields than ``limit_request_fields`` or one over ``limit_request_field_size``
(431), a transfer coding it does not know (501), and a 500 when serving a request raised. :func:`problem_worker`'s
worker answers those with the same problem+json (the status is gunicorn's own: its ``handle_error`` classifies and
logs, only its HTML page is replaced). gunicorn
reads a body only as the app reads it: a malformed chunk then is the app's 400 (``governance.errors``), and, with no
body limit of gunicorn's own, an upload over the app's limit gets the app's 413 (a chunked one is read up to one byte
past the limit first, by :class:`BoundedBody`, so that the app knows its length as under waitress).
"""

from __future__ import annotations

import json
import tempfile
import time
from typing import Any

from waitress.channel import HTTPChannel
from waitress.server import BaseWSGIServer
from waitress.task import ErrorTask
from waitress.utilities import Error, RequestHeaderFieldsTooLarge
from werkzeug.wrappers import Request

from governance import metrics
from governance.config import Settings
from governance.errors import problem_for
from governance.logs import asterisk_form, log_request

#: How far over the app's upload limit waitress still buffers a body (bytes). Between the limit and this bound the
#: app answers its own 413 (it reads the Content-Length); above it waitress refuses the body without buffering it.
BODY_SLACK_BYTES = 1_048_576


def waitress_problem(error: Error, max_upload_bytes: int, path: str | None = None) -> tuple[str, list[tuple[str, str]],
                                                                                           bytes]:
    """The ``(status line, headers, body)`` a waitress parser ``error`` (``waitress.utilities.Error``: its ``code``,
    ``reason`` and ``body``) answers with: a problem+json body with ``type``, ``title``, ``status``, ``detail``
    (and ``instance``, the request's ``path``, when the parser got that far). A 413 says the upload limit,
    ``max_upload_bytes``, as the app's own 413 does; a 500 says nothing of its cause (waitress has logged it)."""
    return server_problem(error.code, error.reason, str(error.body), max_upload_bytes, path)


def server_problem(code: int, reason: str, description: str, max_upload_bytes: int,
                   path: str | None = None) -> tuple[str, list[tuple[str, str]], bytes]:
    """The ``(status line, headers, body)`` of a server's own error answer (waitress's or gunicorn's parser): status
    ``code`` with its ``reason`` phrase, as the problem+json :func:`governance.errors.problem_for` gives werkzeug's
    exception of that status described by ``description`` (``instance``: the request's ``path`` when known): the
    problem type of that status (``uri-too-long`` for a 414, ``headers-too-large`` for a 431, ``not-implemented``
    for a 501...: ``governance.errors``). A 500 is the generic internal problem: ``description`` is not shown."""
    from werkzeug.exceptions import HTTPException, default_exceptions

    exc: BaseException
    if code >= 500 and code != 501:
        exc = RuntimeError(description)  # a bug: the generic internal problem, never a traceback
    else:
        kind = default_exceptions.get(code, HTTPException)
        exc = kind(description=description)
        if kind is HTTPException:
            exc.code = code
    found = problem_for(exc, max_upload_bytes=max_upload_bytes)
    body = json.dumps(found.body(instance=path or None)).encode("utf-8")
    return f"{code} {reason}", [("Content-Type", "application/problem+json")], body


# Relies on waitress 3.0.2's extension points (constraints.txt pins it): ``BaseWSGIServer.channel_class`` (the
# channel each accepted connection gets), ``HTTPChannel.error_task_class`` (the task that answers a request whose
# parser set ``request.error``, and the 500 that ``HTTPChannel.service`` builds when a task raised) and
# ``ErrorTask.execute`` (writes ``error.to_response()``). A waitress upgrade must re-check these three.
class ProblemErrorTask(ErrorTask):  # type: ignore[misc]
    """waitress's error task answering problem+json (:func:`waitress_problem`), to a ``HEAD`` without its content; it
    closes the connection after, as waitress's own does (the rest of the request was not read)."""

    max_upload_bytes = 0  # set by problem_channel

    def execute(self) -> None:
        path = getattr(self.request, "path", None)  # unset when the request line could not be parsed
        if isinstance(self.request.error, RequestHeaderFieldsTooLarge):
            path = None  # waitress parsed a stand-in request line ("GET / HTTP/1.0"), not the client's: no instance
        status, headers, body = waitress_problem(self.request.error, self.max_upload_bytes,
                                                 path if isinstance(path, str) else None)
        self.status = status
        self.response_headers.extend(headers)
        self.set_close_on_finish()
        self.content_length = len(body)
        # A HEAD's answer has no content (RFC 9110 section 9.3.2; Content-Length still says what a GET would get).
        # waitress leaves a body out only by status, trusting the app for a HEAD: its own answers sent it.
        self.write(b"" if _waitress_method(self.request) == "HEAD" else body)


def _waitress_method(request: Any) -> str | None:
    """The method of the request waitress's parser refused, where it read the request line: its ``command``, set
    once the headers are parsed, or else the first word of its ``first_line``, kept before them. None when unknown
    (the line was not read; a 431's stand-in line "GET / HTTP/1.0" is not the client's)."""
    if isinstance(request.error, RequestHeaderFieldsTooLarge):
        return None
    command = getattr(request, "command", None)
    if isinstance(command, str):
        return command
    line = getattr(request, "first_line", None)
    return line.split(b" ", 1)[0].decode("latin-1") if isinstance(line, bytes) else None


def problem_channel(max_upload_bytes: int) -> type[HTTPChannel]:
    """An ``HTTPChannel`` whose own error answers are problem+json naming ``max_upload_bytes`` on a 413."""
    task = type("ProblemErrorTask", (ProblemErrorTask,), {"max_upload_bytes": max_upload_bytes})
    channel: type[HTTPChannel] = type("ProblemChannel", (HTTPChannel,), {"error_task_class": task})
    return channel


def create_server(app: Any, max_upload_bytes: int, **adjustments: Any) -> Any:
    """A waitress server (``waitress.create_server(app, **adjustments)``, not yet running: call ``.run()``) whose
    own error answers are problem+json, buffering request bodies up to ``max_upload_bytes`` +
    :data:`BODY_SLACK_BYTES` (unless ``max_request_body_size`` is given), ``app`` behind :class:`RequireHost`. Every
    listening socket it made (one per address ``host`` resolves to) gets :func:`problem_channel`'s channel."""
    import waitress

    adjustments.setdefault("max_request_body_size", max_upload_bytes + BODY_SLACK_BYTES)
    server = waitress.create_server(RequireHost(app), **adjustments)
    channel = problem_channel(max_upload_bytes)
    listeners = getattr(server, "map", None) or getattr(server, "_map", {})
    for dispatcher in list(listeners.values()):
        if isinstance(dispatcher, BaseWSGIServer):
            dispatcher.channel_class = channel
    return server


def serve_one(app: Any, settings: Settings, host: str, port: int, threads: int) -> None:
    """Serve ``app`` in this process with waitress (:func:`create_server`, ``threads`` threads) until stopped."""
    create_server(app, settings.max_upload_bytes, host=host, port=port, threads=threads).run()


class _Page:
    """Stands for the client's socket while gunicorn's ``handle_error`` runs: keeps the page it writes (from which
    :class:`ProblemWorker` reads the status gunicorn chose) instead of sending it."""

    def __init__(self, sock: Any) -> None:
        self.sock = sock
        self.data = b""

    def gettimeout(self) -> float:
        return 0.0  # gunicorn.util.write_nonblock: already non-blocking, leave the mode alone

    def send(self, data: bytes) -> int:
        self.data += bytes(data)
        return len(data)

    def sendall(self, data: bytes) -> None:
        self.data += bytes(data)

    def getpeername(self) -> Any:
        return self.sock.getpeername()

    def getsockname(self) -> Any:
        return self.sock.getsockname()

    def status(self) -> tuple[int, str]:
        """The status code and reason of the page kept (500 when none was written or it cannot be read)."""
        line = self.data.split(b"\r\n", 1)[0].decode("latin-1")
        parts = line.split(" ", 2)
        if len(parts) == 3 and parts[0].startswith("HTTP/") and parts[1].isdigit():
            return int(parts[1]), parts[2]
        return 500, "Internal Server Error"


def _gunicorn_method(request: Any, line: str | None, exc: BaseException) -> str | None:
    """The method of the request gunicorn refused with ``exc``, where its parser got that far: the parsed request's
    (``request``: the worker's, or the one an ``InvalidHeader`` names); else that of the request being parsed when
    ``exc`` was raised (its ``Request`` sets ``method`` from the line before any check of the rest, and most errors
    carry no reference to it: found in the traceback's frames); else the first word of the refused request
    ``line`` (a line without three parts). None when unknown."""
    from gunicorn.http.message import Request as ParsedRequest

    method = getattr(request, "method", None)
    if isinstance(method, str):
        return method
    tb = exc.__traceback__
    while tb is not None:
        parsing = tb.tb_frame.f_locals.get("self")
        if isinstance(parsing, ParsedRequest) and isinstance(parsing.method, str):
            return parsing.method
        tb = tb.tb_next
    return line.split(" ", 1)[0] if line is not None else None


# Relies on gunicorn 27.0.1's ``Worker.handle_error(req, client, addr, exc)`` (constraints.txt pins it): it
# classifies ``exc`` into a status, logs (a warning for a client's error, the traceback for the app's, the access
# log) and writes its page with ``gunicorn.util.write_error`` on ``client``; the gthread worker then closes the
# connection. A gunicorn upgrade must re-check that this is still so.
def problem_worker(max_upload_bytes: int) -> type[Any]:
    """``ProblemWorker``: gunicorn's gthread worker (a ``worker_class``) whose own error answers are problem+json
    (:func:`server_problem`, naming ``max_upload_bytes`` on a 413), sent with ``Connection: close`` as gunicorn's
    page is; to a ``HEAD`` the same without its content (RFC 9110 section 9.3.2; ``Content-Length`` still says what a
    GET would get, as :class:`RequireHost`'s answer and waitress's do). gunicorn (the ``scale`` extra) is imported
    here, not with this module."""
    from gunicorn import util
    from gunicorn.http.errors import InvalidRequestLine
    from gunicorn.workers.gthread import ThreadWorker
    from werkzeug.http import HTTP_STATUS_CODES

    def handle_error(self: Any, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        page = _Page(client)
        ThreadWorker.handle_error(self, req, page, addr, exc)  # gunicorn's status and logging; its page is kept
        code, reason = page.status()
        if code != 400 and reason == "Bad Request":  # gunicorn keeps its 400's phrase on the 501 and 500 it sets
            reason = HTTP_STATUS_CODES.get(code, reason)
        request = req if req is not None else getattr(exc, "req", None)
        path = getattr(request, "path", None)
        description = str(exc)
        line = getattr(exc, "req", None) if isinstance(exc, InvalidRequestLine) else None
        if isinstance(line, str) and line.split(" ")[1:2] == ["*"]:  # "GET * HTTP/1.1": only OPTIONS may send *
            from governance.web import asterisk_refusal

            description = asterisk_refusal(line.split(" ")[0])
        status, headers, body = server_problem(code, reason, description, max_upload_bytes,
                                               path if isinstance(path, str) else None)
        head = "".join(f"{name}: {value}\r\n" for name, value in
                       [*headers, ("Content-Length", str(len(body))), ("Connection", "close")])
        if _gunicorn_method(request, line, exc) == "HEAD":
            # A HEAD's answer has no content (RFC 9110 section 9.3.2); its Content-Length says what a GET would get,
            # as RequireHost's and waitress's answers to a HEAD do.
            body = b""
        try:
            util.write_nonblock(client, f"HTTP/1.1 {status}\r\n{head}\r\n".encode("latin-1") + body)
        except Exception:  # the client went away: as gunicorn, nothing more to say
            self.log.debug("Failed to send error message.")

    worker: type[Any] = type("ProblemWorker", (ThreadWorker,), {"handle_error": handle_error,
                                                                "__module__": __name__})
    return worker


class BoundedBody:
    """WSGI middleware giving the app a chunked request's body as waitress does: read here, up to one byte past
    ``max_upload_bytes``, into a spooled file, with its ``CONTENT_LENGTH`` set. gunicorn hands the app a chunked body
    as a stream it terminates (``wsgi.input_terminated``), which werkzeug limits to ``MAX_CONTENT_LENGTH``; but
    ``request.get_data()`` (a JSON body, ``/sbr/v1/matches/byContent``) stops at the limit without raising, so a
    body over it was cut there and parsed (a 400 "malformed JSON at column 4097", or a truncated asset). With the
    length known (and ``Transfer-Encoding`` gone: the body is no longer chunked), a body over the limit gets the
    app's 413 like any other, and one at the limit is read whole. Requests that send a ``Content-Length`` pass
    through untouched. A transfer coding besides ``chunked`` (gunicorn passes ``gzip``, ``deflate`` and ``compress``
    on, undecoded, and the app reads no coded body) is a 501 problem, as waitress answers it. A malformed chunk
    raises gunicorn's parser error here, which its worker answers as a 400
    problem (:func:`problem_worker`)."""

    def __init__(self, app: Any, max_upload_bytes: int) -> None:
        self.app, self.max_upload_bytes = app, max_upload_bytes

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        codings = [c.strip().lower() for c in environ.get("HTTP_TRANSFER_ENCODING", "").split(",") if c.strip()]
        if codings and codings != ["chunked"]:  # gunicorn passes gzip, deflate and compress on, undecoded
            status, headers, page = server_problem(501, "Not Implemented", "Transfer-Encoding "
                                                   f"{', '.join(codings)!r} is not supported: send the body chunked "
                                                   "or with a Content-Length", self.max_upload_bytes,
                                                   environ.get("PATH_INFO") or None)
            start_response(status, [*headers, ("Content-Length", str(len(page))), ("Connection", "close")])
            return [page]
        if environ.get("CONTENT_LENGTH") or codings != ["chunked"]:
            return self.app(environ, start_response)
        body = tempfile.SpooledTemporaryFile(max_size=BODY_SLACK_BYTES)
        stream, left = environ["wsgi.input"], self.max_upload_bytes + 1
        while left > 0:
            data = stream.read(min(left, 65536))
            if not data:
                break
            body.write(data)
            left -= len(data)
        size = body.tell()
        body.seek(0)
        environ = {**environ, "wsgi.input": body, "CONTENT_LENGTH": str(size)}
        environ.pop("wsgi.input_terminated", None)
        environ.pop("HTTP_TRANSFER_ENCODING")  # werkzeug ignores a length sent with chunked (waitress drops it too)
        try:
            return self.app(environ, start_response)
        finally:
            body.close()


class RequireHost:
    """WSGI middleware in front of the app under both servers (:func:`create_server`, :func:`serve_many`): a 400
    problem (``bad-request``; the request was framed, so the connection may serve the next) for an HTTP/1.1 request
    without a ``Host`` header, and for any request whose ``Host`` holds more than one value. RFC 9112 section 3.2:
    "A server MUST respond with a 400 (Bad Request) status code to any HTTP/1.1 request message that lacks a Host
    header field and to any request message that contains more than one Host header field line or a Host header
    field with an invalid field value." Neither server refuses a missing ``Host``; gunicorn refuses a second
    ``Host`` line itself, waitress joins the lines with ``", "`` (a host never holds a comma: RFC 3986's
    ``reg-name`` admits one, no DNS name or address does). An HTTP/1.0 request may leave ``Host`` out; an empty
    ``Host`` (a target without an authority) is taken. A load balancer's health check must therefore send ``Host``
    over HTTP/1.1 (docs/operations.md). The answer to a ``HEAD`` is the same without its body.

    A refusal ends as the app's answers do: one record of the request log
    (:func:`governance.logs.log_request`: method, path, 400, its time, account ``-``: no token was read) and one
    count of ``consentgate_http_responses_total{status="400"}`` (:func:`governance.metrics.responded`)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        started = time.perf_counter()
        host = environ.get("HTTP_HOST")
        if host is None and environ.get("SERVER_PROTOCOL") == "HTTP/1.1":
            why = "an HTTP/1.1 request must carry a Host header (RFC 9112 section 3.2); none came"
        elif host is not None and "," in host:
            why = "a request must carry one Host header naming one host (RFC 9112 section 3.2); more came"
        else:
            return self.app(environ, start_response)
        target = "*" if asterisk_form(environ) else None  # "*" names no resource: no instance
        status, headers, body = server_problem(400, "Bad Request", why, max_upload_bytes=0,  # named on a 413 only
                                               path=None if target else environ.get("PATH_INFO") or None)
        start_response(status, [*headers, ("Content-Length", str(len(body)))])
        request = Request(environ)  # the method and path as the app's record has them (werkzeug's decoding)
        log_request(request.method, target or request.path, 400, started)
        metrics.responded(400)
        # A HEAD's answer has no content (RFC 9110 section 9.3.2; Content-Length still says what a GET would get).
        # werkzeug leaves it out of the app's answers; this one comes before werkzeug, and waitress would send it,
        # to be read as the start of the next answer on the connection (review s24, finding 2).
        return [] if environ.get("REQUEST_METHOD") == "HEAD" else [body]


def serve_many(settings: Settings, host: str, port: int, workers: int, threads: int) -> None:
    """Serve the app under gunicorn with ``workers`` processes of ``threads`` threads each, until stopped."""
    from gunicorn.app.base import BaseApplication

    from governance.app import create_app

    if workers < 1 or threads < 1:
        raise ValueError(f"workers and threads must be >= 1, got {workers} and {threads}")
    options: dict[str, Any] = {
        "bind": f"{host}:{port}",
        "workers": workers,
        "worker_class": problem_worker(settings.max_upload_bytes),  # gthread, its own errors problem+json
        "threads": threads,
        "preload_app": False,  # every worker builds its own app (connections, signer, threads) after the fork
        "timeout": 300,  # an upload being verified or enrolled may take minutes on a busy machine
        "graceful_timeout": 30,
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "warning",
    }

    class _Gunicorn(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            return RequireHost(BoundedBody(create_app({"data_dir": settings.data_dir}), settings.max_upload_bytes))

    _Gunicorn().run()
