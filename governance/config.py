"""Configuration: read from the environment in this one module, with safe embedded defaults.

Every setting has a ``GOVERNANCE_`` variable; ``Settings.from_env()`` reads them, ``create_app(test_config)``
overrides them. Secrets never appear in ``repr``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from governance.errors import ConfigError
from governance.urls import redact_url

__all__ = ["MB", "QUEUES", "ConfigError", "Settings", "redact_url", "sqlite_file"]

MB = 1024 * 1024
QUEUES = ("inprocess", "redis", "rabbitmq")
SQLITE_SYNCHRONOUS = ("full", "normal")  # PRAGMA synchronous in WAL mode (governance.db.make_engine)
REQUEST_COMMITS = ("asynchronous", "synchronous")  # how a generation request's transaction commits (ADR 0018)


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("var")
    database_url: str = ""  # empty: sqlite file under data_dir
    # SQLite only (WAL journal): "full" syncs the log at every commit (a committed decision survives a power cut);
    # "normal" syncs it at checkpoints only: durable against a crash of the process, but a power cut or an OS crash
    # may lose the last commits (docs/performance.md, section 1; docs/operations.md)
    sqlite_synchronous: str = "full"
    # how the transaction of a generation request (its precheck's decision, rows and audit event) commits:
    # "asynchronous" does not wait for the disk (governance.db.commit_asynchronously: a power cut may lose the last
    # requests, never a consent change, release, log entry or notice to a likeness owner, and nothing that depends
    # on a lost request survives it; a request that notifies anyone but its requester waits); "synchronous" waits as
    # every other transaction does (docs/adr/0018-asynchronous-request-commits.md)
    request_commit: str = "asynchronous"
    host: str = "127.0.0.1"
    port: int = 8080
    daily_quota: int = 30
    max_upload_bytes: int = 50 * MB
    verify_max_seconds: float = 300.0  # uploads to /v1/verify longer than this are refused (counted while decoding)
    verify_per_minute: int = 30  # /v1/verify requests per client (token or address) per minute; 0: unlimited
    # decoding limits (media.limits, governance/admission.py; docs/limits.md says where each number comes from)
    verify_megapixels_per_minute: int = 6000  # decoded megapixels per verify client per minute; 0: unlimited
    enroll_max_seconds: float = 60.0  # longest selfie video decoded for enrollment
    max_image_pixels: int = 50_000_000
    max_frame_pixels: int = 3840 * 2160
    max_frames: int = 18_000
    max_tracks: int = 16
    max_photos: int = 8  # files per enrollment or reference request
    decode_memory_mb: int = 256  # estimated working memory of one decode
    expensive_slots: int = 2  # verifications and enrollments decoding at once per process; more get 503
    simulate_per_minute: int = 10  # POST /v1/characters/simulate per account per minute; 0: unlimited
    generator: str = "procedural"  # or "diffusers" with generator_dir holding a local text-to-video model
    generator_dir: str = ""
    generator_steps: int = 30  # the diffusers sampler's steps
    face_backend: str = "dlib"  # or "insightface" with insightface_dir holding the operator's ONNX files
    # what finds faces in scanned video (dlib backend): "auto" = BlazeFace when `make models` fetched its model
    # (it finds heads turned to profile), else dlib's HOG; "blazeface" (required) or "hog" (docs/face-matching.md)
    face_detector: str = "auto"
    # a face in the uncertain band of a likeness the requester may not use (detectors.pose): "held" for that
    # likeness owner's review (POST /v1/generations/<id>/review), or "block" at once with the reason
    scan_uncertain: str = "held"
    insightface_dir: str = ""
    match_threshold: float | None = None  # None: the threshold measured for the face backend
    # seconds between the keyframes on which the scan also looks for turned heads (dlib's CNN); 0: off
    scan_thorough_every_s: float = 0.0
    # the operator's ONNX image encoder for visual character detection (detectors/visual.py); empty: by name only
    character_model_dir: str = ""
    character_threshold: float | None = None  # cosine similarity; measured on the operator's model, no default
    # restriction screening's sentence-embedding hold (docs/restrictions.md): a prompt with no listed term of a
    # restricted category is held for the owner when its similarity to the category reaches this; None: off
    restriction_model_hold: float | None = None
    # how long an owner who approves drafts has to approve one before the generation is blocked (seconds)
    draft_approval_ttl_s: float = 7 * 24 * 3600.0
    # the visible label's text after the "AI" mark: "en" ("AI-generated") or "zh" ("人工智能生成", GB 45438-2025),
    # drawn with label_font, a font file (for zh with CJK glyphs; empty: provenance.label.label_font, the first
    # installed of CJK_FONT_CANDIDATES for zh, e.g. Debian's fonts-wqy-microhei, of LATIN_FONT_CANDIDATES for en);
    # characters' credits must be drawable with it (checked when registered)
    label_language: str = "en"
    label_font: str = ""
    duration_s: float = 4.0
    frame_size: int = 256
    fps: float = 24.0
    tsa_url: str = ""  # no RFC 3161 timestamp authority by default
    # "package.module:factory" returning the KMS/HSM signing callback; empty: the key file in keys/c2pa
    c2pa_signer: str = ""
    challenge_ttl_s: float = 180.0  # how long a live challenge may be answered (seconds)
    # "package.module:factory" returning the operator's identity proof (a KYC vendor); empty: none
    identity_proof: str = ""
    worker: str = "thread"  # "thread": a worker thread in this process; "none": enqueue only
    # the job engine (docs/adr/0008-job-engine-dramatiq.md): "inprocess" (embedded, no broker), or Dramatiq on
    # "redis" (redis_url) or "rabbitmq" (amqp_url) with separate `consentgate worker` processes, one per GPU
    queue: str = "inprocess"
    redis_url: str = "redis://127.0.0.1:6379/0"  # also holds the shared rate limits whenever queue is not inprocess
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/%2F"
    queue_prefix: str = "consentgate"
    worker_name: str = ""  # a label for logs and metrics (default: host and process id)
    # a worker holds a job under a lease it renews every third of this; a job whose worker stops renewing is
    # taken over by another worker once it runs out (and Redis re-delivers a dead worker's message after it)
    job_lease_s: float = 60.0
    # per million broker commands, how many also re-queue dead workers' messages (Dramatiq's Redis maintenance)
    broker_maintenance_chance: int = 50_000
    # each stage's time limit, sized for real generators (Wan 2.1 14B: tens of minutes for a 5 s 720p clip);
    # a stage over its limit is interrupted and the job blocked with the reason
    stage_limit_generate_s: float = 3600.0
    stage_limit_scan_s: float = 900.0
    stage_limit_seal_s: float = 900.0
    stage_limit_release_s: float = 120.0
    # SIGTERM: a worker takes no new job and finishes the current one within this, else hands it back
    shutdown_grace_s: float = 300.0
    # workers put back on the queue, every sweep_every_s, jobs the broker lost or never got: waiting jobs never
    # handed to it (it was down), and jobs whose worker's lease ran out without a re-delivery
    sweep_every_s: float = 15.0
    resubmit_after_s: float = 300.0
    metrics_port: int = 9400  # `consentgate worker` serves /metrics here (0: not at all)
    log_format: str = "text"  # or "json": one object a line, with the generation id on every stage line
    # POST /v1/generations answers 507 while the data directory has less free space than this
    min_free_bytes: int = 512 * MB
    # a job failing transiently (a full disk or an I/O error, a busy generator, a signer or database that timed
    # out) is run again this many times, after io_retry_base_s, then twice that, and so on; then it is blocked
    # with the reason
    io_retries: int = 3
    io_retry_base_s: float = 1.0
    # threads a worker's watermark embed spreads a clip's frames over (0: the cores, at most 4; the output is the
    # same for any count: provenance.watermark.embed)
    embed_threads: int = 0

    def __post_init__(self) -> None:
        if self.face_detector not in ("auto", "blazeface", "hog"):
            raise ConfigError(f"face_detector must be 'auto', 'blazeface' or 'hog', got {self.face_detector!r}")
        if self.scan_uncertain not in ("held", "block"):
            raise ConfigError(f"scan_uncertain must be 'held' or 'block', got {self.scan_uncertain!r}")
        if not self.scan_thorough_every_s >= 0:
            raise ConfigError(f"scan_thorough_every_s must be >= 0, got {self.scan_thorough_every_s}")
        for name in ("max_image_pixels", "max_frame_pixels", "max_frames", "max_tracks", "max_photos",
                     "decode_memory_mb", "expensive_slots"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not (self.enroll_max_seconds > 0 and self.verify_max_seconds > 0):
            raise ConfigError("enroll_max_seconds and verify_max_seconds must be > 0")
        if self.verify_megapixels_per_minute < 0:
            raise ConfigError(f"verify_megapixels_per_minute must be >= 0, got {self.verify_megapixels_per_minute}")
        if not 0 <= self.embed_threads <= 64:  # provenance.watermark.MAX_EMBED_THREADS
            raise ConfigError(f"embed_threads must be from 0 (the cores, at most 4) to 64, got {self.embed_threads}")
        if self.daily_quota < 0:
            raise ConfigError(f"daily_quota must be >= 0, got {self.daily_quota}")
        if self.max_upload_bytes < 1024:
            raise ConfigError(f"max_upload_bytes must be at least 1024, got {self.max_upload_bytes}")
        if not (0 < self.port < 65536):
            raise ConfigError(f"port must be 1..65535, got {self.port}")
        if self.queue not in QUEUES:
            raise ConfigError(f"queue must be one of {QUEUES}, got {self.queue!r}")
        for name in ("job_lease_s", "stage_limit_generate_s", "stage_limit_scan_s", "stage_limit_seal_s",
                     "stage_limit_release_s", "shutdown_grace_s", "sweep_every_s", "resubmit_after_s"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be > 0 seconds, got {getattr(self, name)}")
        if not 0 <= self.broker_maintenance_chance <= 1_000_000:
            raise ConfigError(f"broker_maintenance_chance is per million, got {self.broker_maintenance_chance}")
        if not 0 <= self.metrics_port < 65536:
            raise ConfigError(f"metrics_port must be 0..65535, got {self.metrics_port}")
        if self.sqlite_synchronous not in SQLITE_SYNCHRONOUS:
            raise ConfigError(f"sqlite_synchronous must be 'full' or 'normal', got {self.sqlite_synchronous!r}")
        if self.request_commit not in REQUEST_COMMITS:
            raise ConfigError(f"request_commit must be 'asynchronous' or 'synchronous', got {self.request_commit!r}")
        if self.log_format not in ("text", "json"):
            raise ConfigError(f"log_format must be 'text' or 'json', got {self.log_format!r}")
        if self.worker not in ("thread", "none"):
            raise ConfigError(f"worker must be 'thread' or 'none', got {self.worker!r}")
        if self.character_model_dir and self.character_threshold is None:
            raise ConfigError("character_model_dir needs character_threshold: the similarity at which a frame shows "
                              "a character depends on the model, and must be measured on it (docs/characters.md)")
        if self.character_threshold is not None and not 0 < self.character_threshold <= 1:
            raise ConfigError(f"character_threshold is a cosine similarity in (0, 1], got {self.character_threshold}")
        if self.restriction_model_hold is not None and not 0 < self.restriction_model_hold <= 1:
            raise ConfigError(f"restriction_model_hold is a cosine similarity in (0, 1], "
                              f"got {self.restriction_model_hold}")
        if not self.draft_approval_ttl_s > 0:
            raise ConfigError(f"draft_approval_ttl_s must be > 0 seconds, got {self.draft_approval_ttl_s}")
        if self.c2pa_signer and (":" not in self.c2pa_signer or self.c2pa_signer.strip() != self.c2pa_signer):
            raise ConfigError(f"c2pa_signer must name a factory as 'package.module:factory', got {self.c2pa_signer!r}")
        if not 10 <= self.challenge_ttl_s <= 3600:
            raise ConfigError(f"challenge_ttl_s must be 10..3600 seconds, got {self.challenge_ttl_s}")
        if self.identity_proof and (":" not in self.identity_proof
                                    or self.identity_proof.strip() != self.identity_proof):
            raise ConfigError(f"identity_proof must name a factory as 'package.module:factory', "
                              f"got {self.identity_proof!r}")
        if self.generator not in ("procedural", "diffusers"):
            raise ConfigError(f"generator must be 'procedural' or 'diffusers', got {self.generator!r}")
        if self.generator == "diffusers" and not self.generator_dir:
            raise ConfigError("generator 'diffusers' needs generator_dir: the local model directory (nothing is "
                              "downloaded)")
        if not 1 <= self.generator_steps <= 500:
            raise ConfigError(f"generator_steps must be 1..500, got {self.generator_steps}")
        if self.min_free_bytes < 0:
            raise ConfigError(f"min_free_bytes must be >= 0, got {self.min_free_bytes}")
        if not 0 <= self.io_retries <= 10:
            raise ConfigError(f"io_retries must be 0..10, got {self.io_retries}")
        if not 0 <= self.io_retry_base_s <= 60:
            raise ConfigError(f"io_retry_base_s must be 0..60 seconds, got {self.io_retry_base_s}")
        if self.label_language not in ("en", "zh"):
            raise ConfigError(f"label_language must be 'en' or 'zh', got {self.label_language!r}")
        if self.label_language != "en" or self.label_font:  # a missing font is found at start, not at a release
            from provenance.errors import WatermarkError
            from provenance.label import LabelSpec

            try:
                LabelSpec("check", language=self.label_language, font=self.label_font or None)
            except WatermarkError as e:
                raise ConfigError(f"label_language {self.label_language!r}: {e}") from e
        if self.frame_size % 16 or not (64 <= self.frame_size <= 1024):
            raise ConfigError(f"frame_size must be a multiple of 16 in 64..1024, got {self.frame_size}")

    def __repr__(self) -> str:
        """Every setting, with the password of each URL (``database_url``, ``redis_url``, ``amqp_url``) replaced
        by ``***`` (:func:`redact_url`)."""
        shown = []
        for f in fields(self):
            value = getattr(self, f.name)
            shown.append(f"{f.name}={redact_url(value) if f.name in _URLS else value!r}")
        return f"Settings({', '.join(shown)})"

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'consentgate.db').resolve()}"

    @property
    def io_retry_delays(self) -> tuple[float, ...]:
        """The waits before each retry of a job that failed on storage: base, 2 x base, 4 x base, ..."""
        return tuple(self.io_retry_base_s * 2**i for i in range(self.io_retries))

    @property
    def stage_limits(self) -> dict[str, float]:
        """Each stage's time limit in seconds, by the name the pipeline gives the stage."""
        return {"generating": self.stage_limit_generate_s, "scanning": self.stage_limit_scan_s,
                "sealing": self.stage_limit_seal_s, "release": self.stage_limit_release_s}

    @property
    def job_time_limit_s(self) -> float:
        """The longest one try of a job may take: every stage at its limit."""
        return sum(self.stage_limits.values())

    @property
    def shared_limits(self) -> bool:
        """Whether several API processes serve (a broker carries the jobs): rate limits then live in Redis."""
        return self.queue != "inprocess"

    @property
    def sqlite_path(self) -> Path | None:
        """The SQLite database file (absolute, :func:`sqlite_file`), or None on another database or in memory."""
        return sqlite_file(self.db_url)

    @property
    def keys_dir(self) -> Path:
        return self.data_dir / "keys"

    @property
    def quarantine_dir(self) -> Path:
        return self.data_dir / "quarantine"

    @property
    def videos_dir(self) -> Path:
        return self.data_dir / "videos"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """The settings ``env`` (default: ``os.environ``) gives through its ``GOVERNANCE_*`` variables, each parsed to
        its field's type (an empty value keeps the default), then ``overrides``. Raises :class:`ConfigError` for a
        value that does not parse or a combination the service cannot run with; a password never shows::

            >>> s = Settings.from_env({"GOVERNANCE_DAILY_QUOTA": "5",
            ...                        "GOVERNANCE_REDIS_URL": "redis://:s3cret@127.0.0.1:6379/0"})
            >>> s.daily_quota, "s3cret" in repr(s)
            (5, False)
            >>> Settings.from_env({"GOVERNANCE_DAILY_QUOTA": "-1"})
            Traceback (most recent call last):
            governance.errors.ConfigError: daily_quota must be >= 0, got -1
        """
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(f"GOVERNANCE_{f.name.upper()}")
            if raw is None or raw == "":
                continue
            values[f.name] = _parse(f.name, f.type, raw)
        values.update(overrides)
        return cls(**values)

    def with_overrides(self, overrides: Mapping[str, Any]) -> Settings:
        known = {f.name for f in fields(self)}
        unknown = set(overrides) - known
        if unknown:
            raise ConfigError(f"unknown settings: {sorted(unknown)}")
        values = dict(overrides)
        if "data_dir" in values:
            values["data_dir"] = Path(values["data_dir"])
        return replace(self, **values)


_URLS = frozenset({"database_url", "redis_url", "amqp_url"})


def sqlite_file(url: str) -> Path | None:
    """The file a SQLite database ``url`` names, absolute, exactly as SQLite opens it; None for a database in memory,
    a temporary one (SQLite's empty name), a name SQLite or SQLAlchemy refuses to open (an authority other than
    ``localhost``, a host in the URL) or another database.

    The name is the one SQLAlchemy hands to ``sqlite3.connect`` (the dialect's ``create_connect_args``: the URL's
    path %-decoded, and with ``uri=true`` the other options appended as ``?key=value&...``), read by SQLite's own
    rules (https://www.sqlite.org/uri.html):

    - without ``uri=true``, or with it on a name that does not start ``file:``, the name is a file name, taken
      literally: ``sqlite:////srv/cg.db``; ``sqlite:///relative.db`` (to the working directory);
      ``sqlite:////srv/cg.db?uri=true&mode=rwc`` is the file ``/srv/cg.db?mode=rwc``, as SQLite makes it;
    - with ``uri=true``, a name starting ``file:`` is a URI: its path runs to the first ``?`` or ``#`` and is
      %-decoded once more by SQLite (``%HH`` with two hex digits; ``%00`` ends it), after ``//`` an authority that
      must be empty or ``localhost`` (``file:///srv/cg.db``, ``file://localhost/srv/cg.db``); a relative
      ``file:cg.db`` is to the working directory; ``file::memory:``, the last ``mode=memory`` and the last
      ``vfs=memdb`` are in memory. A ``?`` in the file's name must reach SQLite as ``%3F``: in the URL, ``%253F``.

    ::

        >>> str(sqlite_file("sqlite:///file:/srv/cg%20data/cg.db?mode=rwc&uri=true"))
        '/srv/cg data/cg.db'
        >>> str(sqlite_file("sqlite:////srv/cg.db?uri=true&mode=rwc"))
        '/srv/cg.db?mode=rwc'
        >>> sqlite_file("sqlite:///file:mem?mode=memory&uri=true"), sqlite_file("postgresql://db/cg")
        (None, None)
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    try:
        args, options = parsed.get_dialect()().create_connect_args(parsed)
    except ArgumentError:  # (a host, a port or a user in the URL: no file is opened)
        return None
    name = os.fsencode(args[0])
    if options.get("uri") and name.startswith(b"file:"):
        found = _sqlite_uri_file(name[len(b"file:"):])
        if found is None:
            return None
        name = found
    if name in (b"", b":memory:"):
        return None
    return Path(os.path.abspath(os.fsdecode(name)))


def _sqlite_uri_file(uri: bytes) -> bytes | None:
    """The file name SQLite reads from a ``file:`` URI (``uri``: what follows ``file:``, as bytes), as its
    ``sqlite3ParseUri`` does; None for a database in memory or an authority it refuses."""
    uri = uri.partition(b"#")[0]
    if uri.startswith(b"//"):
        authority, slash, rest = uri[2:].partition(b"/")
        if authority not in (b"", b"localhost"):
            return None
        uri = slash + rest
    path, _, query = uri.partition(b"?")
    mode = vfs = b""
    for option in query.split(b"&"):
        key, _, value = option.partition(b"=")
        key, value = _sqlite_unquote(key), _sqlite_unquote(value)
        if key == b"mode":
            mode = value
        elif key == b"vfs":
            vfs = value
    if mode == b"memory" or vfs == b"memdb":
        return None
    return _sqlite_unquote(path)


def _sqlite_unquote(part: bytes) -> bytes:
    """``part`` with SQLite's decoding of a URI's path, option name or value: ``%HH`` (two hex digits) is the byte,
    another ``%`` is kept (the standard library's ``unquote_to_bytes``); a ``%00`` ends the part."""
    from urllib.parse import unquote_to_bytes

    return unquote_to_bytes(part).partition(b"\0")[0]


def _parse(name: str, type_: Any, raw: str) -> Any:
    t = str(type_)
    try:
        if t == "Path":
            return Path(raw)
        if t == "int":
            return int(raw)
        if t.startswith("float"):
            return float(raw)
    except ValueError as e:
        what = "a whole number" if t == "int" else "a number"
        raise ConfigError(f"GOVERNANCE_{name.upper()} must be {what}, got {raw!r}") from e
    return raw
