"""The ``consentgate`` command line. Errors print one line to stderr and exit non-zero."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, NoReturn

if TYPE_CHECKING:
    from sqlmodel import Session

    from governance.config import Settings
    from governance.container import Runtime

# Imports are made where they are used: ``consentgate verify --url`` is a client's start-up (docs/adr/0017,
# docs/performance.md section 4c), which the service's settings, ORM and media libraries would double.


#: What ``consentgate`` exits with (README, "Command line"): 0 done; 1 the command failed (one line on stderr
#: says why: a missing file, input refused, an error); 2 a finding or a configuration the service cannot run
#: with (``verify``: the manifest is Invalid; ``log audit``: the log was altered; a bad setting or command
#: line); 3 ``watermark detect`` found no watermark.
EXIT_OK, EXIT_FAILED, EXIT_FINDING, EXIT_NO_WATERMARK = 0, 1, 2, 3


def _settings(args: argparse.Namespace) -> Settings:
    from governance.config import Settings

    overrides: dict[str, Any] = {}
    if getattr(args, "data_dir", None):
        overrides["data_dir"] = Path(args.data_dir)
    return Settings.from_env(**overrides)


def cmd_init(args: argparse.Namespace) -> int:
    from governance.runtime import initialise

    s = _settings(args)
    initialise(s)
    print(f"initialised {s.data_dir.resolve()} (database, signing CA, watermark key)")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from governance import logs
    from governance.app import create_app

    s = _settings(args)
    host = args.host or s.host
    port = args.port or s.port
    many = args.workers is not None and args.workers > 1
    if many:  # production: several processes (governance/serving.py); each builds its app after the fork
        from governance.runtime import initialise

        initialise(s)  # migrations and keys once, before any worker starts
    else:
        app = create_app({"data_dir": s.data_dir})
    logs.configure(s.log_format, s.worker_name or f"api:{port}")
    print(f"ConsentGate listening on http://{host}:{port} (generator={s.generator}, faces={s.face_backend}, "
          f"jobs={s.queue}, processes={args.workers if many else 1})", flush=True)
    if many:
        from governance.serving import serve_many

        serve_many(s, host, port, args.workers, args.threads or 4)
        return 0
    from governance.serving import serve_one

    serve_one(app, s, host, port, args.threads or 8)  # waitress, its own error answers problem+json too
    return 0


def cmd_db_revision(args: argparse.Namespace) -> int:
    """The migration the database is at, and the newest this code has."""
    from governance.db import current_revision, head_revision, make_engine

    s = _settings(args)
    if s.sqlite_path is not None and not s.sqlite_path.exists():
        raise SystemExit(f"consentgate db revision: no database at {s.sqlite_path}")
    engine = make_engine(s.db_url)
    try:
        current = current_revision(engine)
    finally:
        engine.dispose()
    head = head_revision()
    state = "up to date" if current == head else "behind: the next start migrates it" if current else "not migrated"
    print(f"database at revision {current or 'none'}; newest {head} ({state})")
    return EXIT_OK


def cmd_db_downgrade(args: argparse.Namespace) -> int:
    """Undo migrations down to REVISION, for rolling a release back (run it with the older code's release
    notes at hand: what later migrations added is dropped)."""
    from governance.db import current_revision, downgrade, make_engine

    s = _settings(args)
    if not args.yes:
        raise SystemExit(f"consentgate db downgrade: dropping what the migrations after {args.revision} added cannot "
                         "be undone; back the database up, then pass --yes")
    if s.sqlite_path is not None and not s.sqlite_path.exists():
        raise SystemExit(f"consentgate db downgrade: no database at {s.sqlite_path}")
    engine = make_engine(s.db_url)
    try:
        downgrade(engine, args.revision)
        now = current_revision(engine)
    finally:
        engine.dispose()
    print(f"database at revision {now or 'none'}")
    return EXIT_OK


def cmd_worker(args: argparse.Namespace) -> int:
    """One worker process: one GPU (``--gpu``), one job at a time, taken from the broker (prefetch 1). SIGTERM
    or SIGINT: no new job; the current one finishes within ``shutdown_grace_s`` or goes back to the queue."""
    import os
    import signal

    from governance import logs, metrics
    from governance.container import Runtime

    s = _settings(args)
    overrides: dict[str, Any] = {"worker": "none"}
    if args.gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(args.gpu)  # before torch is loaded: this process sees one GPU
    name = args.name or (f"gpu{args.gpu}" if args.gpu is not None else "")
    if name:
        overrides["worker_name"] = name
    if args.metrics_port is not None:
        overrides["metrics_port"] = args.metrics_port
    elif args.gpu is not None and s.metrics_port:
        overrides["metrics_port"] = s.metrics_port + args.gpu
    s = s.with_overrides(overrides)
    if s.queue == "inprocess":
        raise SystemExit("consentgate worker: needs GOVERNANCE_QUEUE=redis or rabbitmq (the embedded engine runs "
                         "inside 'serve')")
    rt = Runtime(s)
    rt.start()
    logs.configure(s.log_format, rt.pipeline.worker_id)
    server = _serve_metrics(lambda: metrics.exposition(rt.engine, rt.indexes, rt.pipeline.engine), s.host,
                            s.metrics_port) if s.metrics_port else None

    def stop(signum: int, _frame: Any) -> None:
        import logging

        logging.getLogger("governance.worker").info("signal %d: finishing the current job, taking no new one",
                                                    signum)
        rt.pipeline.request_stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        from governance.urls import redact_url

        cleaned = rt.pipeline.clean_quarantine()
        broker = redact_url(s.redis_url if s.queue == "redis" else s.amqp_url)
        print(f"worker {rt.pipeline.worker_id!r} on {s.queue} {broker} (metrics on :{s.metrics_port or '-'}; "
              f"{cleaned} stale quarantine file(s) removed)", flush=True)
        done = rt.pipeline.run_worker(max_jobs=args.max_jobs)
        print(f"processed {done} job(s)", flush=True)
    finally:
        if server is not None:
            server.shutdown()
        rt.close()
    return 0


def _serve_metrics(exposition: Callable[[], bytes], host: str, port: int) -> Any:
    """``GET /metrics`` of a worker process (the bytes ``exposition`` returns) on its own port, in a thread."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            if self.path.split("?")[0] != "/metrics":
                self.send_error(404)
                return
            body = exposition()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, name="consentgate-metrics", daemon=True).start()
    return server


@contextmanager
def _database(args: argparse.Namespace) -> Iterator[Session]:
    """One unit of work on the service's database (migrated first), for the account commands."""
    from governance import references
    from governance.db import init_db, make_engine, unit_of_work
    from governance.runtime import check_database_present, private_dir

    s = _settings(args)
    private_dir(s.data_dir)
    check_database_present(s)
    engine = make_engine(s.db_url)
    references.bind(engine, references.store_for(s))
    init_db(engine)
    try:
        with unit_of_work(engine) as session:
            yield session
    finally:
        engine.dispose()


def _quota_arg(raw: str | None, command: str) -> int | None:
    """``--daily-quota``: a whole number of generations per UTC day, or ``default`` / absent (the service's).
    Anything else stops the command with one line."""
    from governance.accounts.services import MAX_DAILY_QUOTA

    if raw is None or raw == "default":
        return None
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 9) or int(raw) > MAX_DAILY_QUOTA:
        raise SystemExit(f"consentgate accounts {command}: --daily-quota must be a whole number from 0 to "
                         f"{MAX_DAILY_QUOTA} or 'default', got {raw!r}")
    return int(raw)


def cmd_accounts_create(args: argparse.Namespace) -> int:
    from governance.accounts.services import create_account
    from governance.guardians.services import create_minor_account

    daily_quota = _quota_arg(args.daily_quota, "create")
    with _database(args) as session:
        if args.guardian is not None:
            account, token, _ = create_minor_account(session, None, args.name, args.role, args.guardian,
                                                     daily_quota=daily_quota)
        else:
            account, token = create_account(session, args.name, args.role, daily_quota=daily_quota)
        account_id = account.id
    quota = "the default daily quota" if daily_quota is None else f"a daily quota of {daily_quota}"
    minor = f", a minor's account whose guardian is {args.guardian}" if args.guardian is not None else ""
    print(f"created {args.role} account {args.name} ({account_id}, {quota}{minor}); its API token, shown only "
          "once:")
    print(token)
    return 0


def cmd_accounts_majority(args: argparse.Namespace) -> int:
    from governance.guardians.services import end_minority

    with _database(args) as session:
        account = end_minority(session, None, args.account, args.reason)
        name = account.name
    print(f"{name} is no longer a minor's account; the guardian and the account holder are told")
    return 0


def cmd_accounts_rotate_token(args: argparse.Namespace) -> int:
    from governance.accounts.services import resolve_account, rotate_token

    with _database(args) as session:
        account = resolve_account(session, args.account)
        token = rotate_token(session, account, actor=None)
        name = account.name
    print(f"account {name}: the old API token no longer works; the new one, shown only once:")
    print(token)
    return 0


def cmd_accounts_list(args: argparse.Namespace) -> int:
    """Every account by name: id, role, daily quota (its own, or the service default) and when it was created;
    never a token (only their hashes are stored)."""
    from governance.accounts.services import list_accounts
    from governance.columns import iso

    default = _settings(args).daily_quota
    with _database(args) as session:
        rows: list[dict[str, Any]] = [{"id": a.id, "name": a.name, "role": a.role.value, "daily_quota": a.daily_quota,
                 "created_at": iso(a.created_at)} for a in list_accounts(session)]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    width = max([len(r["name"]) for r in rows] + [4])
    for r in rows:
        quota = f"{r['daily_quota']}/day" if r["daily_quota"] is not None else f"{default}/day (default)"
        print(f"{r['name']:<{width}}  {r['id']}  {r['role']:<13}  {quota:<20}  created {r['created_at']}")
    if not rows:
        print("no accounts yet (consentgate accounts create NAME --role ROLE)")
    return 0


def cmd_accounts_set_quota(args: argparse.Namespace) -> int:
    from governance.accounts.services import resolve_account, set_daily_quota

    daily_quota = _quota_arg(args.daily_quota, "set-quota")
    with _database(args) as session:
        account = resolve_account(session, args.account)
        set_daily_quota(session, account, daily_quota, actor=None)
        name = account.name
    quota = "the service default" if daily_quota is None else f"{daily_quota} generations a day (UTC)"
    print(f"account {name}: daily quota set to {quota}")
    return 0


def cmd_figures_add(args: argparse.Namespace) -> int:
    """Add a protected public figure from photos of them: prompts naming them and outputs showing their face
    are blocked unless a live-verified likeness an admin approved as them consents."""
    from governance.db import unit_of_work
    from governance.likenesses.services.figures import add_figure
    from governance.uploads import decode_image

    images = []
    for photo in args.photos:
        path = Path(photo)
        if not path.is_file():
            raise SystemExit(f"consentgate figures add: no such file: {path}")
        images.append(decode_image(path.read_bytes()))
    with _runtime(args) as rt, unit_of_work(rt.engine) as session:
        figure, reviews = add_figure(session, None, args.name, args.alias or [], images, rt.detectors.face_backend,
                                     lambda: rt.indexes.sync_index(session), rt.detectors.match_threshold)
        figure_id, embeddings = figure.id, figure.embeddings
    print(f"added protected figure {args.name} ({figure_id}) from {len(images)} photo(s), {embeddings} embedding(s)")
    for d in reviews:
        print(f"  likeness {d.likeness_id} shows this face: pending review {d.id}")
    return 0


@contextmanager
def _runtime(args: argparse.Namespace) -> Iterator[Runtime]:
    """The service's runtime (face backend, likeness index) on its database, migrated first."""
    from governance.container import Runtime
    from governance.db import init_db

    s = _settings(args)
    s.data_dir.mkdir(parents=True, exist_ok=True)
    rt = Runtime(s)
    try:
        init_db(rt.engine)
        yield rt
    finally:
        rt.close()


def cmd_figures_list(args: argparse.Namespace) -> int:
    from governance.likenesses.services.figures import list_figures
    from governance.likenesses.views import figure_view

    with _database(args) as session:
        figures = [figure_view(f) for f in list_figures(session)]
    if args.json:
        print(json.dumps(figures, indent=2))
    for f in [] if args.json else figures:
        aliases = f" (also: {', '.join(f['aliases'])})" if f["aliases"] else ""
        print(f"{f['id']}  {f['name']}{aliases}")
    return 0


def cmd_figures_remove(args: argparse.Namespace) -> int:
    from governance.likenesses.services.figures import get_figure, remove_figure

    with _database(args) as session:
        figure = get_figure(session, args.figure)
        name = figure.name
        remove_figure(session, None, figure)
    print(f"removed protected figure {name} ({args.figure})")
    return 0


def cmd_log_audit(args: argparse.Namespace) -> int:
    """Recompute the transparency log from its entries and hold everything stored against it: the hash
    chain, every Merkle node, every signed tree head the service kept, every released generation. Exit 0
    when all hold, 2 when anything was altered or removed (each problem is named)."""
    from governance.log.services import translog

    s = _settings(args)
    with _database(args) as session:
        report = translog.audit(session, _trust_anchors(s), videos_dir=s.videos_dir)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        latest = report.latest_signed_head
        heads = f"{report.signed_heads} kept" + (
            f", the newest of {latest['tree_size']} entries at {latest['timestamp']}" if latest else "")
        lines = [
            ("log", f"{report.tree_size} entries, Merkle root {report.root_hash}"),
            ("hash chain", _state(report.hash_chain_intact, "an entry was edited, removed or reordered")),
            ("Merkle tree", _state(report.merkle_tree_intact, "stored nodes no longer match the entries")),
            ("signed heads", heads if report.signed_heads_intact
             else f"{heads}: BROKEN (the log no longer extends a head the service signed)"),
            ("releases", f"{report.releases}, each in the log" if report.releases_intact
             else f"{report.releases}: BROKEN (releases and log entries disagree)"),
        ]
        for label, text in lines:
            print(f"{label + ':':<12} {text}")
        for problem in report.problems[:20]:
            print(f"  - {problem}")
        if len(report.problems) > 20:
            print(f"  ... and {len(report.problems) - 20} more (--json lists them all)")
    return EXIT_OK if report.intact else EXIT_FINDING


def cmd_log_verify_head(args: argparse.Namespace) -> int:
    """Check a signed tree head (the JSON of ``GET /v1/log``) offline, with nothing of the service but the
    trust anchor: the signature under the head's leaf certificate, the chain up to ``--anchor`` (the root
    certificate, ``GET /v1/log/trust-anchor``) and, with ``--sha256``, that the anchor is the one the operator
    published. Exit 0 when all hold, 2 (one line saying what failed) otherwise."""
    from provenance.errors import SigningError
    from provenance.keys import certificate_fingerprint
    from provenance.treehead import SignedTreeHead

    def fail(why: str) -> int:
        print(f"consentgate log verify-head: {why}", file=sys.stderr)
        return 2

    head_path, anchor_path = Path(args.head), Path(args.anchor)
    for p in (head_path, anchor_path):
        if not p.is_file():
            return fail(f"no such file: {p}")
    try:
        raw, anchor = head_path.read_bytes(), anchor_path.read_bytes()
    except OSError as e:
        return fail(f"cannot read {e.filename}: {e.strerror}")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        return fail(f"{head_path} is not JSON: {e}")
    try:
        head = SignedTreeHead.from_dict(data)
        fp = certificate_fingerprint(anchor)
        if args.sha256 is not None and fp != args.sha256.replace(":", "").strip().lower():
            return fail(f"the trust anchor's SHA-256 is {fp}, not the {args.sha256} you expected: it is not the "
                        "root the operator published")
        head.verify(anchor)
    except SigningError as e:
        return fail(f"the tree head does not verify: {e}")
    print(f"signed tree head OK: {head.tree_size} entries, Merkle root {head.root_hash}, signed {head.timestamp} "
          f"({head.alg}) under the trust anchor {fp}")
    return 0


def _state(intact: bool, why: str) -> str:
    return "intact" if intact else f"BROKEN ({why})"


def _trust_anchors(s: Settings) -> list[bytes]:
    """The roots signed tree heads are checked under: the current chain's and retired ones' (none: each
    head is checked under the chain it carries only)."""
    from governance.log.services.keys import c2pa_dir, retired_roots

    roots = [c2pa_dir(s) / "root-ca.pem", *retired_roots(s)]
    return [p.read_bytes() for p in roots if p.is_file()]


def cmd_keys_retire(args: argparse.Namespace) -> int:
    """Retire the signing chain or the watermark key on purpose (audited), so the next start makes a new one."""
    from governance.log.services import keys as keys_svc

    kind: keys_svc.Kind = "c2pa" if args.c2pa else "watermark"
    s = _settings(args)
    with _database(args) as session:
        retirement = keys_svc.retire(session, s, kind, reason=args.reason)
    retirement.move()  # after the record is committed: a failed commit leaves the key in place
    where = (f"moved to {retirement.destination}, where verification still reads it" if retirement.destination
             else "it was already gone")
    print(f"retired the {'C2PA signing chain' if kind == 'c2pa' else 'watermark key'} "
          f"{retirement.key_id or ''} ({where}; {retirement.releases} release(s) made before); "
          "the next start makes a new one")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    """The report ``POST /v1/verify`` gives for FILE, printed: computed here with the data dir's keys and records
    (the same function as the service; nothing is created or migrated that exists at the newest revision), or,
    with ``--url``, asked of a running service (docs/performance.md, section 4, says what each costs)."""
    path = Path(args.file)
    if not path.is_file():
        what = "a directory, not a file" if path.is_dir() else "no such file"
        raise SystemExit(f"consentgate verify: {what}: {path}")
    report = _verify_at(args.url, path) if args.url else _verify_here(args, path)
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        c = report["c2pa"]
        print(f"file:        {path}")
        print(f"c2pa:        {c['state']}" + (f" ({', '.join(c['failures'])})" if c["failures"] else ""))
        if c.get("claim_generator"):
            print(f"generator:   {c['claim_generator']}")
        wm = report["watermark"]
        print("watermark:   " + (f"content id {wm['payload']} (confidence {wm['confidence']})" if wm.get("found")
                                 else "not found" if wm.get("checked") else "not checked (no service keys here)"))
        if report.get("record"):
            r = report["record"]
            print(f"record:      generation {r['generation_id']} ({r['state']})")
        print(f"origin:      {report.get('origin')}")
        labels = report.get("labels") or {}
        for law in (v for v in labels.values() if isinstance(v, dict) and "law" in v):
            found = [e["element"] for e in law["elements"] if e["found"]]
            print(f"labels:      {law['law']}: " + ("all required elements found" if law["met"] else
                  f"found {', '.join(found) or 'none'}; missing {', '.join(law['missing'])}"))
        print(f"summary:     {report['summary']}")
    return EXIT_OK if report["c2pa"]["state"] != "Invalid" else EXIT_FINDING


def _verify_here(args: argparse.Namespace, path: Path) -> dict[str, Any]:
    """The report of ``path`` computed in this process, against the data dir's keys and records (none: offline)."""
    from governance.admission import decode_limits, keep_freed_memory
    from governance.container import Runtime
    from governance.verification.services import Records, verify_bytes
    from media.limits import Meter

    keep_freed_memory()  # one upload, then exit: no need to hand each frame's temporaries back to the kernel
    data = path.read_bytes()
    s = _settings(args)
    meter = Meter(decode_limits(s, "verify"))
    if not (s.keys_dir / "c2pa").exists():
        return verify_bytes(data, meter=meter)
    from governance.db import init_db, is_current
    from governance.runtime import check_database_present

    check_database_present(s)  # never build an empty database beside an earlier service's keys
    rt = Runtime(s, metrics=False)  # one report, then exit: no metrics to serve
    try:
        if not is_current(rt.engine):  # migrating loads Alembic: half a second a verify need not pay
            init_db(rt.engine)
        anchors, marks = rt.keys.present()
        with rt.session() as session:
            return verify_bytes(data, Records(session, rt.indexes, rt.heads), trust_anchors=anchors,
                                watermark_keys=marks, meter=meter)
    finally:
        rt.close()


#: Seconds ``consentgate verify --url`` waits to connect, and for the service's answer (a verification of a
#: large upload may wait for a free slot: GOVERNANCE_EXPENSIVE_SLOTS).
VERIFY_CONNECT_S, VERIFY_READ_S = 10.0, 300.0
#: The most of an answer ``consentgate verify --url`` reads (a report is kilobytes; its log proofs grow with log2 of
#: the log's size).
VERIFY_MAX_ANSWER = 16 * 2**20


def _verify_at(url: str, path: Path) -> dict[str, Any]:
    """The report a running service at ``url`` (``http(s)://host[:port][/prefix]``) gives for ``path``:
    ``POST {url}/v1/verify`` with the file in the multipart field ``media`` (the standard library's ``http.client``
    and ``ssl``, docs/adr/0017). No data dir, no models, no database here: a client's start-up. Exits with one line
    (no control bytes, never a password) when the file cannot be read, the service cannot be reached or answers
    with a problem (its title and detail)."""
    try:
        return _ask(url, path)
    except SystemExit as e:
        raise SystemExit(_one_line(str(e.code))) from e.__cause__


def _one_line(text: str) -> str:
    """``text`` with every character a terminal would act on (line breaks, escapes, bells) as ``?``."""
    return "".join(ch if ch.isprintable() else "?" for ch in text)


class _FileUnread(Exception):
    """The file being sent could not be read whole (unreadable, or it shrank): the file's fault, not the service's."""


def _ask(url: str, path: Path) -> dict[str, Any]:
    import http.client
    import ssl  # http.client has imported it already
    from urllib.parse import quote, unquote, urlsplit

    from governance.urls import redact_url

    base = url.rstrip("/")
    scheme, _, rest = base.partition("://")
    if scheme.lower() not in ("http", "https") or not rest or "?" in rest or "#" in rest:
        raise SystemExit(f"consentgate verify: --url must be an http:// or https:// address (no query or fragment), "
                         f"got {redact_url(url)!r}")
    base = f"{scheme.lower()}://{rest}"
    if base.endswith("/v1/verify"):  # the endpoint itself, as the README's curl example names it: the service is above
        base = base[: -len("/v1/verify")].rstrip("/")
    shown = redact_url(base)  # never a password in a line printed
    try:
        parts = urlsplit(base)
        host, port, password = parts.hostname, parts.port, parts.password or ""
    except ValueError as e:  # a port that is not a number or out of range
        raise SystemExit(f"consentgate verify: cannot reach {shown}: {e}") from e
    if not host:
        raise SystemExit(f"consentgate verify: --url must be an http:// or https:// address (no query or fragment), "
                         f"got {shown!r}")
    https = parts.scheme == "https"
    host = unquote(host)  # an IPv6 zone, [fe80::1%25eth0] (RFC 6874)
    target = quote(parts.path, safe="/%:@!$&'()*+,;=~") + "/v1/verify"  # as a browser sends a path: %-encoded
    try:
        upload = path.open("rb")
    except OSError as e:
        raise SystemExit(f"consentgate verify: cannot read {path}: {e.strerror or e}") from e
    conn = _connection(https, host, port)
    connected = False
    try:
        conn.connect()  # TCP, and for https the TLS handshake: VERIFY_CONNECT_S each
        connected = True
        with _deadline(VERIFY_READ_S):
            status, location, data = _post_file(conn, target, path, upload)
    except _FileUnread as e:
        raise SystemExit(f"consentgate verify: cannot read {path}: {e}") from e
    except TimeoutError as e:
        if connected:
            raise SystemExit(f"consentgate verify: {shown} gave no answer within {VERIFY_READ_S:g} s") from e
        if conn.sock is not None:  # connected, but no TLS answer: what waitress does with a TLS hello
            raise SystemExit(f"consentgate verify: {shown} did not answer the TLS handshake within "
                             f"{VERIFY_CONNECT_S:g} s (a plain-HTTP port? then use http://)") from e
        raise SystemExit(f"consentgate verify: cannot reach {shown}: no connection within "
                         f"{VERIFY_CONNECT_S:g} s") from e
    except ssl.SSLError as e:
        hint = " (a plain-HTTP port? then use http://)" if "WRONG_VERSION_NUMBER" in str(e) else ""
        raise SystemExit(f"consentgate verify: TLS with {shown} failed: {e}{hint}") from e
    except (OSError, http.client.HTTPException) as e:
        why = str(e) or type(e).__name__
        if isinstance(e, http.client.IncompleteRead):
            more = f", {e.expected} more expected" if e.expected is not None else ""
            why = f"the answer was cut short (IncompleteRead: {len(e.partial)} bytes read{more})"
        elif isinstance(e, http.client.BadStatusLine):  # not HTTP at all (an SSH or SMTP port): its first line
            why = f"not an HTTP answer: {why.strip()[:80]!r}"
        raise SystemExit(f"consentgate verify: cannot reach {shown}: "
                         f"{why.replace(password, '***') if password else why}") from e
    finally:
        conn.close()
        upload.close()
    if len(data) > VERIFY_MAX_ANSWER:
        raise SystemExit(f"consentgate verify: {shown} answered {status} with more than "
                         f"{VERIFY_MAX_ANSWER // 2**20} MiB: not a verification report")
    try:
        body = json.loads(data)
    except ValueError:
        body = None
    report = isinstance(body, dict) and all(isinstance(body.get(k), dict) for k in ("c2pa", "watermark")) \
        and "summary" in body  # what the printed report reads
    if status != 200 or not report:
        what = ""
        if isinstance(body, dict) and (body.get("title") or body.get("detail")):
            what = ": " + "; ".join(str(body[k]) for k in ("title", "detail") if body.get(k))
        elif status == 200:
            what = ": not a verification report (is this the service's address?)"
        elif 300 <= status < 400 and location:
            what = f": redirects to {redact_url(location)}"
        else:
            lines = data[:200].decode("utf-8", "replace").split()
            what = (": " + " ".join(lines)) if lines else ""
        raise SystemExit(f"consentgate verify: {shown} answered {status}{what}")
    assert isinstance(body, dict)
    return body


@contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    """Raise ``TimeoutError`` in the block once ``seconds`` have passed in all, however the service trickles its
    answer (each read's own timeout restarts with every byte). A timer signal, so only on the main thread (the
    command's); elsewhere each read's timeout alone applies."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(_signum: int, _frame: Any) -> None:
        raise TimeoutError(f"no whole answer within {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _connection(https: bool, host: str, port: int | None) -> Any:
    """An unopened ``http.client`` connection to ``host`` (a name, an IPv4 or a bare IPv6 address) on ``port``, by
    default the scheme's (80, 443): TLS with the system's trust store and hostname checks for ``https``;
    ``VERIFY_CONNECT_S`` to connect (and, for TLS, to shake hands)."""
    import http.client
    import ssl

    port = port or (443 if https else 80)  # never None: http.client would read "::1" as host ":" and port 1

    if not https:
        return http.client.HTTPConnection(host, port, timeout=VERIFY_CONNECT_S)
    return http.client.HTTPSConnection(host, port, timeout=VERIFY_CONNECT_S, context=ssl.create_default_context())


#: Bytes of the file sent at a time (the upload is streamed from disk, never held whole in memory).
_UPLOAD_CHUNK = 2**20


def _form_name(path: Path) -> str:
    """``path``'s name for the multipart header's ``filename`` (RFC 7578 4.2; escaped as HTML's form encoding does,
    and further): UTF-8, with ``"``, ``\\``, control characters and bytes that are not UTF-8 (a Linux name may hold
    any) %-escaped, so that any parser reads back the one quoted string. The service never reads the name."""
    out = []
    for ch in os.fsdecode(os.fsencode(path.name)):
        if ch in '"\\%' or not ch.isprintable() or "\udc80" <= ch <= "\udcff":
            out.append("".join(f"%{b:02X}" for b in ch.encode("utf-8", "surrogateescape")))
        else:
            out.append(ch)
    return "".join(out)


def _post_file(conn: Any, target: str, path: Path, upload: BinaryIO) -> tuple[int, str, bytes]:
    """``POST target`` on the connected ``conn`` with ``upload`` (``path``, opened) as the multipart/form-data field
    ``media`` (RFC 7578: one part, a random boundary, :func:`_form_name`), streamed with its length declared.
    Returns the status, the ``Location`` header ("" without one) and at most ``VERIFY_MAX_ANSWER`` + 1 bytes of the
    answer. Raises :class:`_FileUnread` when the file cannot be read whole, ``TimeoutError`` (no answer within
    ``VERIFY_READ_S``), ``http.client.IncompleteRead`` for an answer shorter than it declared, and ``OSError`` or
    ``http.client.HTTPException`` as the connection meets them.

    A service that refuses the upload before reading it all (413) may close while the body is still being sent (a
    broken pipe; over TLS an EOF): its answer is read all the same."""
    import http.client
    import ssl

    boundary = f"consentgate-{os.urandom(16).hex()}"  # what secrets.token_hex reads, without importing it (1 ms)
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"media\"; filename=\"{_form_name(path)}\"\r\n"
            f"Content-Type: application/octet-stream\r\n\r\n").encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    size = os.fstat(upload.fileno()).st_size

    def body() -> Iterator[bytes]:  # exactly the length declared, should the file grow meanwhile
        yield head
        left = size
        while left:
            try:
                chunk = upload.read(min(_UPLOAD_CHUNK, left))
            except OSError as e:
                raise _FileUnread(e.strerror or str(e)) from e
            if not chunk:
                raise _FileUnread(f"it shrank while it was being sent ({size - left} of {size} bytes sent)")
            left -= len(chunk)
            yield chunk
        yield tail

    conn.sock.settimeout(VERIFY_READ_S)  # connected (and TLS done): now the answer may take its time
    try:
        conn.request("POST", target, body=body(), headers={
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "Content-Length": str(len(head) + size + len(tail)), "Accept": "application/json",
            "User-Agent": "consentgate-cli"})
    except (BrokenPipeError, ConnectionResetError, ssl.SSLEOFError):
        pass  # the service stopped reading: its answer (a 413 problem) is what to show
    resp = conn.getresponse()
    data = resp.read(VERIFY_MAX_ANSWER + 1)  # a report is kilobytes: never hold an endless answer
    if resp.length and len(data) <= VERIFY_MAX_ANSWER:  # fewer bytes than its Content-Length said: cut short
        raise http.client.IncompleteRead(data, resp.length)
    return resp.status, resp.getheader("Location") or "", data


def _watermark_key(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from governance.runtime import load_or_create_watermark_key

    path = Path(args.key) if args.key else _settings(args).keys_dir / "watermark.key"
    if not path.is_file():
        raise SystemExit(f"consentgate watermark: no watermark key at {path}; run 'consentgate init' or pass --key")
    return load_or_create_watermark_key(path)


def _video_file(path: Path, what: str) -> Path:
    from media.video import MediaError, video_source

    if not path.is_file():
        raise SystemExit(f"consentgate watermark {what}: no such file: {path}")
    try:
        video_source(path)
    except MediaError as e:
        raise SystemExit(f"consentgate watermark {what}: {path}: {e}") from e
    return path


def cmd_scan(args: argparse.Namespace) -> int:
    from detectors.errors import DetectorError
    from detectors.scan import THOROUGH_EVERY_S, scan_path
    from governance.container import Runtime

    path = Path(args.file)
    if not path.is_file():
        raise SystemExit(f"consentgate scan: no such file: {path}")
    rt = Runtime(_settings(args))
    try:
        from governance.db import init_db
        from governance.runtime import check_database_present

        check_database_present(rt.settings)  # never build an empty database beside an earlier service's keys
        init_db(rt.engine)
        with rt.session() as session:
            index = rt.indexes.sync_index(session)
        try:
            every = THOROUGH_EVERY_S if args.thorough else rt.settings.scan_thorough_every_s
            result = scan_path(path, index, rt.detectors.face_backend, threshold=rt.detectors.match_threshold,
                               thorough_every_s=every)
        except DetectorError as e:
            raise SystemExit(f"consentgate scan: {e}") from e
    finally:
        rt.close()
    from governance.likenesses.models import is_figure_key

    figures = sum(1 for key in index.ids() if is_figure_key(key))  # the face index holds protected figures too
    report = {"file": str(path), "enrolled": len(index) - figures, "figures": figures, **result.to_dict()}
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        print(f"{path}: {result.frames_scanned} frames scanned, {result.faces_seen} faces seen, "
              f"{len(index) - figures} likenesses enrolled, {figures} protected figures")
        for m in result.matches:
            kind = "protected figure" if is_figure_key(m.likeness_id) else "likeness"
            print(f"  {kind} {m.likeness_id}: distance {m.distance:.3f}, frames {m.first_frame}-{m.last_frame}")
        if not result.matches:
            print("  no enrolled likeness found")
    return 0


def cmd_watermark_embed(args: argparse.Namespace) -> int:
    from provenance.errors import WatermarkError
    from provenance.watermark import embed_video, parse_payload

    try:
        payload = parse_payload(args.payload)
    except WatermarkError as e:
        raise SystemExit(f"consentgate watermark embed: --payload: {e}") from e
    key = _watermark_key(args)
    quality = embed_video(_video_file(Path(args.input), "embed"), Path(args.output), payload, key, crf=args.crf)
    print(f"embedded {payload.hex()} -> {args.output} (PSNR {quality:.1f} dB)")
    return 0


def cmd_watermark_detect(args: argparse.Namespace) -> int:
    from provenance.watermark import detect_video

    key = _watermark_key(args)
    found = detect_video(_video_file(Path(args.file), "detect"), key)
    result: dict[str, Any] = {"found": found is not None}
    if found is not None:
        result.update(payload=found.payload.hex(), confidence=round(found.confidence, 4),
                      frames_used=found.frames_used)
    if args.json:
        print(json.dumps(result))
    elif found is not None:
        print(f"payload {found.payload.hex()} (confidence {found.confidence:.3f}, {found.frames_used} frames)")
    else:
        print("no ConsentGate watermark found for this key")
    return EXIT_OK if found is not None else EXIT_NO_WATERMARK


#: The top-level commands, each with the function that adds its parser (and its own commands) to the
#: subparsers: :func:`build_parser` adds them all, or only the one a command line names.
_COMMANDS: dict[str, Callable[[Any], None]] = {}


def _command(name: str) -> Callable[[Callable[[Any], None]], Callable[[Any], None]]:
    def register(add: Callable[[Any], None]) -> Callable[[Any], None]:
        _COMMANDS[name] = add
        return add
    return register


@_command("init")
def _add_init(sub: Any) -> None:
    sub.add_parser("init", help="create the database, signing CA and watermark key (idempotent)").set_defaults(
        fn=cmd_init)


@_command("db")
def _add_db(sub: Any) -> None:
    db = sub.add_parser("db", help="the database's migrations").add_subparsers(dest="db_cmd", required=True)
    db.add_parser("revision", help="the migration the database is at, and the newest").set_defaults(
        fn=cmd_db_revision)
    down = db.add_parser("downgrade", help="undo migrations down to REVISION ('base': no tables)")
    down.add_argument("revision")
    down.add_argument("--yes", action="store_true", help="yes, drop what the later migrations added")
    down.set_defaults(fn=cmd_db_downgrade)


@_command("serve")
def _add_serve(sub: Any) -> None:
    serve = sub.add_parser("serve", help="run the HTTP API")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--workers", type=int, default=1,
                       help="API processes (default 1: one waitress process; more: gunicorn, docs/operations.md)")
    serve.add_argument("--threads", type=int, help="threads per process (default 8 with one process, 4 with more)")
    serve.set_defaults(fn=cmd_serve)


@_command("worker")
def _add_worker(sub: Any) -> None:
    worker = sub.add_parser("worker", help="run generation jobs from the broker (GOVERNANCE_QUEUE=redis or rabbitmq)")
    worker.add_argument("--gpu", type=int, help="the GPU this worker owns (sets CUDA_VISIBLE_DEVICES; metrics on "
                                                "GOVERNANCE_METRICS_PORT + GPU)")
    worker.add_argument("--name", help="a name for logs and metrics (default gpuN, or host:pid)")
    worker.add_argument("--metrics-port", type=int, help="serve /metrics here (0: not at all)")
    worker.add_argument("--max-jobs", type=int, help="stop after this many jobs")
    worker.set_defaults(fn=cmd_worker)


@_command("accounts")
def _add_accounts(sub: Any) -> None:
    accounts = sub.add_parser("accounts", help="manage accounts").add_subparsers(dest="accounts_cmd", required=True)
    create = accounts.add_parser("create", help="create an account and print its API token")
    create.add_argument("name")
    create.add_argument("--role", required=True, choices=["creator", "rights_holder", "regulator", "admin"])
    create.add_argument("--daily-quota", metavar="N",
                        help="generations a UTC day for this account (default: GOVERNANCE_DAILY_QUOTA)")
    create.add_argument("--guardian", metavar="ACCOUNT",
                        help="a minor's account, linked to this guardian's account (name or id; docs/guardians.md)")
    create.set_defaults(fn=cmd_accounts_create)
    alist = accounts.add_parser("list", help="list the accounts (no tokens)")
    alist.add_argument("--json", action="store_true")
    alist.set_defaults(fn=cmd_accounts_list)
    setq = accounts.add_parser("set-quota", help="change an account's daily generation quota")
    setq.add_argument("account", help="the account's name or id")
    setq.add_argument("--daily-quota", required=True, metavar="N|default",
                      help="generations a UTC day, or 'default' for GOVERNANCE_DAILY_QUOTA")
    setq.set_defaults(fn=cmd_accounts_set_quota)
    majority = accounts.add_parser("majority", help="a minor's account whose holder came of age: no longer a "
                                                    "minor's (docs/guardians.md)")
    majority.add_argument("account", help="the account's name or id")
    majority.add_argument("--reason", required=True, help="how the holder's age was checked (3-500 characters)")
    majority.set_defaults(fn=cmd_accounts_majority)
    rotate = accounts.add_parser("rotate-token", help="replace an account's API token (the old one stops working)")
    rotate.add_argument("account", help="the account's name or id")
    rotate.set_defaults(fn=cmd_accounts_rotate_token)


@_command("figures")
def _add_figures(sub: Any) -> None:
    figures = sub.add_parser("figures", help="the protected public-figure gallery").add_subparsers(
        dest="figures_cmd", required=True)
    fadd = figures.add_parser("add", help="add a figure from photos of them (one face each)")
    fadd.add_argument("name")
    fadd.add_argument("photos", nargs="+", metavar="PHOTO")
    fadd.add_argument("--alias", action="append", help="another name prompts may use (repeatable)")
    fadd.set_defaults(fn=cmd_figures_add)
    flist = figures.add_parser("list", help="list the figures")
    flist.add_argument("--json", action="store_true")
    flist.set_defaults(fn=cmd_figures_list)
    fremove = figures.add_parser("remove", help="remove a figure from the gallery")
    fremove.add_argument("figure", help="the figure's id")
    fremove.set_defaults(fn=cmd_figures_remove)


@_command("log")
def _add_log(sub: Any) -> None:
    log = sub.add_parser("log", help="the transparency log").add_subparsers(dest="log_cmd", required=True)
    audit = log.add_parser("audit", help="recompute the log and check every node, signed head and release against "
                                         "it (exit 2 when anything was altered or removed)")
    audit.add_argument("--json", action="store_true")
    audit.set_defaults(fn=cmd_log_audit)
    vhead = log.add_parser("verify-head", help="check a signed tree head (GET /v1/log) under the trust anchor "
                                               "(GET /v1/log/trust-anchor), offline (exit 2 when it does not hold)")
    vhead.add_argument("head", help="the JSON of GET /v1/log, in a file")
    vhead.add_argument("--anchor", required=True, help="the root certificate (PEM) the head's chain must lead to")
    vhead.add_argument("--sha256", help="the anchor's SHA-256 fingerprint as the operator published it (hex)")
    vhead.set_defaults(fn=cmd_log_verify_head)


@_command("keys")
def _add_keys(sub: Any) -> None:
    keys = sub.add_parser("keys", help="the signing chain and the watermark key").add_subparsers(
        dest="keys_cmd", required=True)
    retire = keys.add_parser("retire", help="retire a key on purpose (audited) so the next start makes a new one")
    which = retire.add_mutually_exclusive_group(required=True)
    which.add_argument("--c2pa", action="store_true", help="the C2PA signing chain in keys/c2pa")
    which.add_argument("--watermark", action="store_true", help="the watermark key keys/watermark.key")
    retire.add_argument("--reason", help="why, for the audit log")
    retire.set_defaults(fn=cmd_keys_retire)


@_command("verify")
def _add_verify(sub: Any) -> None:
    verify = _reads_a_file(sub, "verify", "verify a video or image: here, with the data dir's keys and records, or "
                                          "at a running service (--url)", cmd_verify)
    verify.add_argument("--url", default="", help="ask the service at this address (http://host:port) instead of "
                                                   "reading the data dir: the same report, a client's start-up")


@_command("scan")
def _add_scan(sub: Any) -> None:
    _reads_a_file(sub, "scan", "find enrolled likenesses in a video or image", cmd_scan).add_argument(
        "--thorough", action="store_true",
        help="also look for turned heads (three-quarter, profile) every 4 s and at cuts (slower)")


@_command("watermark")
def _add_watermark(sub: Any) -> None:
    wm = sub.add_parser("watermark", help="embed or detect the invisible watermark").add_subparsers(
        dest="watermark_cmd", required=True)
    emb = wm.add_parser("embed", help="mark a video with a 64-bit payload")
    emb.add_argument("input")
    emb.add_argument("output")
    emb.add_argument("--payload", required=True, help="16 hex digits")
    emb.add_argument("--crf", type=int, help="H.264 quality of the output (default 18, as releases: "
                     "media.video.DEFAULT_CRF)")
    emb.add_argument("--key", help="watermark key file (default: the service's, under the data dir)")
    emb.set_defaults(fn=cmd_watermark_embed)
    _reads_a_file(wm, "detect", "read the payload from a video (exit 3 when none is found)",
                  cmd_watermark_detect).add_argument(
        "--key", help="watermark key file (default: the service's, under the data dir)")


def build_parser(only: str | None = None,
                 parser_class: type[argparse.ArgumentParser] = argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The ``consentgate`` command line; ``only`` (a top-level command's name) leaves the other commands out, for
    :func:`main` to parse a command line that names it (argparse builds ~30 parsers for the whole tree, ~5 ms of
    every run's start-up; docs/performance.md 4e). ``parser_class`` is the class of every parser in the tree (its
    subparsers take their parent's class)."""
    p = parser_class(prog="consentgate", description="Consent, rights and provenance gate for AI video")
    p.add_argument("--data-dir", help="state folder (default: $GOVERNANCE_DATA_DIR or ./var)")
    sub = p.add_subparsers(dest="command", required=True)
    for name, add in _COMMANDS.items():
        if only is None or name == only:
            add(sub)
    return p


def _reads_a_file(sub: Any, name: str, help: str, fn: Callable[[argparse.Namespace], int]
                  ) -> argparse.ArgumentParser:
    """A command that reads FILE and prints a report (``--json``: all of it, as JSON)."""
    command: argparse.ArgumentParser = sub.add_parser(name, help=help)
    command.add_argument("file")
    command.add_argument("--json", action="store_true", help="print the full report as JSON")
    command.set_defaults(fn=fn)
    return command


class _Refused(Exception):
    """The one command's parser stopped where an ``ArgumentParser`` prints and exits (help, a usage error)."""


class _OneCommandParser(argparse.ArgumentParser):
    """A parser that prints nothing and never exits: where argparse would print help or usage, or exit, it raises
    :class:`_Refused`, for :func:`_parse` to hand the line to the whole parser. Nothing of the process is touched on
    the way (``sys.stdout``/``sys.stderr`` are not swapped: that is not thread-safe, and would swallow what the rest
    of the process prints meanwhile)."""

    def print_usage(self, file: Any = None) -> None:
        raise _Refused

    def print_help(self, file: Any = None) -> None:
        raise _Refused

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        raise _Refused

    def error(self, message: str) -> NoReturn:
        raise _Refused


def _parse(argv: list[str]) -> argparse.Namespace:
    """``argv`` parsed by the parser of the one command it names, the others left unbuilt; when that parser stops
    (help, a usage error: it prints nothing), the whole parser parses it again, so what it prints and exits with
    are the whole parser's. A command line the single parser accepts, the whole one reads alike: the other
    commands' parsers play no part in it."""
    command = _named_command(argv)
    if command is not None:
        try:
            return build_parser(command, _OneCommandParser).parse_args(argv)
        except _Refused:
            pass
    return build_parser().parse_args(argv)


def _named_command(argv: list[str]) -> str | None:
    """The top-level command ``argv`` names after the global ``--data-dir DIR`` (or ``--data-dir=DIR``), or None
    (none, an abbreviation or another option first: the whole parser reads it)."""
    i = 0
    while i < len(argv):
        if argv[i] == "--data-dir":
            i += 2
        elif argv[i].startswith("--data-dir="):
            i += 1
        else:
            return argv[i] if argv[i] in _COMMANDS else None
    return None


def main(argv: list[str] | None = None) -> int:
    args = _parse(sys.argv[1:] if argv is None else list(argv))
    try:
        return int(args.fn(args))
    except SystemExit:
        raise
    except Exception as e:  # one line, never a traceback, for the person at the terminal
        import logging

        from governance.errors import ConfigError, GovernanceError
        from media.errors import ConsentGateError

        if isinstance(e, ConfigError):
            print(f"consentgate: configuration error: {e}", file=sys.stderr)
            return EXIT_FINDING
        if isinstance(e, GovernanceError):
            print(f"consentgate: {e.detail}", file=sys.stderr)
        elif isinstance(e, ConsentGateError):
            print(f"consentgate: {e}", file=sys.stderr)
        else:
            logging.getLogger("governance.cli").debug("unexpected error", exc_info=e)
            print(f"consentgate: {type(e).__name__}: {e}", file=sys.stderr)
        return EXIT_FAILED
