"""The service's backends, wired once from settings: database, face backend and likeness index, generator,
signing material, watermark key, and the job pipeline. Heavy libraries load on first use, not at import."""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlmodel import Session, select

from governance import references
from governance.config import ConfigError, Settings
from governance.db import changes_since, counter, init_db, make_engine, unit_of_work
from governance.likenesses.models import Figure, Likeness, is_figure_key
from governance.ratelimit import Limiter, RateLimiter, RedisRateLimiter
from governance.verification.models import ContentFingerprint

if TYPE_CHECKING:
    from detectors.faces import FaceBackend
    from detectors.index import LikenessIndex
    from detectors.visual import OnnxImageEmbedder
    from generator.base import VideoGenerator
    from governance.admission import Slots
    from governance.generations.pipeline import Pipeline
    from governance.identity import IdentityProof
    from provenance.fingerprint import FingerprintIndex
    from provenance.keys import SignerMaterial, SignFn
    from provenance.treehead import SignedTreeHead
    from provenance.watermark import WatermarkKey


def initialise(settings: Settings, rt: Runtime | None = None) -> None:
    """Create var/ folders (mode 0700), the database, the development signing CA and the watermark key.
    Idempotent. With ``rt`` (the runtime about to serve), the signer loaded here is the one it keeps: a
    KMS/HSM callback is built and checked once per start.

    Refuses to start (:class:`ConfigError`, one line) on a database that is missing or empty while the data
    dir holds an earlier service's key or videos, and when the key earlier releases were signed or marked
    with is gone without having been retired (:mod:`governance.log.services.keys`)."""
    from governance.log.services import keys as keys_svc

    for d in (settings.data_dir, settings.quarantine_dir, settings.videos_dir, settings.keys_dir):
        private_dir(d)
    check_database_present(settings)
    engine = make_engine(settings.db_url)
    references.bind(engine, references.store_for(settings))  # migration 0010 moves face images there
    try:
        init_db(engine)
        with unit_of_work(engine) as session:
            keys_svc.check_present(session, settings)  # before anything makes a new key
        # the signer is made (dev CA) or checked (KMS/HSM) at start, not at the first release
        if rt is not None:
            rt.signer_material  # noqa: B018  (loads and keeps it)
            rt.identity_proof  # noqa: B018  (an operator's identity proof that cannot load stops the start)
        else:
            load_signer(settings)
        load_or_create_watermark_key(settings.keys_dir / "watermark.key")
        load_or_create_cursor_key(settings.keys_dir / "cursor.key")
        with unit_of_work(engine) as session:
            keys_svc.note_in_use(session, settings)
    finally:
        engine.dispose()


def private_dir(path: Path) -> None:
    """Make ``path`` (and missing parents) with mode 0700 whatever the umask; an existing folder is left as
    the operator made it."""
    if path.is_dir():
        return
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)


def check_database_present(settings: Settings) -> None:
    """Refuse a database that is missing, empty or without tables while the data dir holds the watermark key
    or videos of an earlier service: starting would make a brand-new, empty service that the old keys
    vouch for. Reads nothing and creates nothing when the data dir holds neither."""
    earlier = _earlier_service(settings)
    if not earlier:
        return
    path = settings.sqlite_path
    state = None
    if path is not None:
        if not path.exists():
            state = "is missing"
        elif path.stat().st_size == 0:
            state = "is empty (0 bytes)"
        else:
            state = _sqlite_state(path)
        where = str(path)
    else:
        engine = make_engine(settings.db_url)
        try:
            state = None if sa.inspect(engine).get_table_names() else "has no tables"
        finally:
            engine.dispose()
        where = "at GOVERNANCE_DATABASE_URL"
    if state is not None:
        raise ConfigError(f"the database {where} {state}, but {settings.data_dir} holds {' and '.join(earlier)} of an "
                          "earlier service: restore the database from its backup; to start a new service on purpose, "
                          "move keys/ and videos/ out of the data dir first")


def _earlier_service(settings: Settings) -> list[str]:
    found = []
    if (settings.keys_dir / "watermark.key").exists():
        found.append("the watermark key")
    videos = sum(1 for _ in settings.videos_dir.glob("*.mp4")) if settings.videos_dir.is_dir() else 0
    if videos:
        found.append(f"{videos} video(s)")
    return found


def _sqlite_state(path: Path) -> str | None:
    import sqlite3

    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            tables = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        finally:
            conn.close()
    except sqlite3.DatabaseError:
        return "is not a SQLite database"
    return None if tables else "has no tables"


def load_signer(settings: Settings) -> tuple[SignerMaterial, SignFn | None]:
    """The C2PA signer: the certificate chain in ``keys/c2pa`` and, with ``c2pa_signer`` set, the
    operator's KMS/HSM signing callback (checked against the leaf certificate); without it the key
    file there (a development CA is made on first start). Raises ``SigningError`` saying what is wrong."""
    from provenance.errors import SigningError
    from provenance.keys import check_sign_fn, ensure_dev_ca, import_signer_factory, load_signer_material

    directory = settings.keys_dir / "c2pa"
    if not settings.c2pa_signer:
        return ensure_dev_ca(directory), None
    material = load_signer_material(directory, with_key=False)
    factory = import_signer_factory(settings.c2pa_signer)
    try:
        sign_fn = factory(material)
    except Exception as e:  # the operator's code: any failure is a configuration error
        raise SigningError(f"the signer factory {settings.c2pa_signer!r} failed: {type(e).__name__}: {e}") from e
    if not callable(sign_fn):
        raise SigningError(f"the signer factory {settings.c2pa_signer!r} must return a callable, "
                           f"got {type(sign_fn).__name__}")
    check_sign_fn(material, sign_fn)
    return material, sign_fn


def _load_or_create_secret(path: Path, make: Callable[[], bytes]) -> bytes:
    """The secret in ``path``, made with ``make`` and written mode 0600 when there is none. Never replaces a
    file another process created meanwhile (written aside, then hard-linked into place)."""
    if path.exists():
        return path.read_bytes()
    tmp = path.with_name(path.name + ".part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(make())
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return path.read_bytes()


def load_or_create_watermark_key(path: Path) -> WatermarkKey:
    from provenance.watermark import WatermarkKey

    return WatermarkKey(_load_or_create_secret(path, lambda: WatermarkKey.generate().secret))


#: Bytes of the key that signs pagination cursors (``keys/cursor.key``): 256 bits, HMAC-SHA1 in itsdangerous'
#: Signer keys its derivation with it.
CURSOR_KEY_BYTES = 32


def load_or_create_cursor_key(path: Path) -> bytes:
    """The service's key for pagination cursors (:mod:`governance.pagination`), made on first use. Losing it
    only invalidates the cursors handed out so far (clients start their list again)."""
    return _load_or_create_secret(path, lambda: os.urandom(CURSOR_KEY_BYTES))
    key = WatermarkKey.generate()
    tmp = path.with_name(path.name + ".part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key.secret)
    try:
        os.link(tmp, path)  # never replace a key another process created meanwhile
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return WatermarkKey(path.read_bytes())


def _sync(index: Any, known: set[str], wanted: set[str], load: Callable[[str], Any]) -> set[str]:
    """Bring an in-memory index (``add``/``remove`` by key) from ``known`` keys to ``wanted`` keys."""
    for key in known - wanted:
        index.remove(key)
    present = set(known & wanted)
    for key in wanted - known:
        item = load(key)
        if item is not None:
            index.add(key, item)
            present.add(key)
    return present


class Runtime:
    def __init__(self, settings: Settings, engine: sa.Engine | None = None) -> None:
        self.settings = settings
        self.engine = engine or make_engine(settings.db_url)
        references.bind(self.engine, references.store_for(settings))  # likenesses' face images, encrypted
        self._index_lock = threading.Lock()
        self._indexed: set[str] = set()
        self._fingerprinted: set[str] = set()
        self._versions: dict[str, int] = {}  # counter value each in-memory index was last synced at
        self._head_lock = threading.Lock()
        self._signed_head: SignedTreeHead | None = None  # the newest, re-signed only when the log grows
        self._signer_checked: tuple[float, str] | None = None  # (when, state) of the last readiness probe

    def close(self) -> None:
        """Stop the worker and release database connections."""
        if "pipeline" in self.__dict__:
            self.pipeline.stop()
        for limiter in ("verify_limiter", "verify_cost_limiter", "simulate_limiter"):
            close = getattr(self.__dict__.get(limiter), "close", None)
            if close is not None:
                close()
        self.engine.dispose()

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    def require_free_space(self) -> None:
        """Refuse new work (``InsufficientStorage``, 507) while the data directory has less free space than
        ``min_free_bytes``: a generation needs room for its raw frames and its sealed video."""
        from governance.errors import InsufficientStorage

        floor = self.settings.min_free_bytes
        if floor and shutil.disk_usage(self.settings.data_dir).free < floor:
            raise InsufficientStorage("the service is short of storage space for new generations; try again later",
                                      retry_after=60)

    @cached_property
    def face_backend(self) -> FaceBackend:
        from detectors.errors import DetectorError
        from detectors.faces import backend_from_settings
        from governance.config import ConfigError

        try:
            return backend_from_settings(self.settings.face_backend, self.settings.insightface_dir or None,
                                         detector=self.settings.face_detector)
        except DetectorError as e:
            raise ConfigError(str(e)) from e

    @property
    def match_threshold(self) -> float:
        from detectors.scan import threshold_for

        return self.settings.match_threshold or threshold_for(self.face_backend)

    @cached_property
    def index(self) -> LikenessIndex:
        from detectors.index import LikenessIndex

        return LikenessIndex(dim=self.face_backend.dim)

    def sync_index(self, session: Session) -> LikenessIndex:
        """Make the in-memory index hold exactly the enrolled likenesses and the protected public figures
        (keys ``fig_...``: :func:`is_figure_key`), other processes' changes included: the first time every
        one, then only those the change feed names (O(changes), not O(enrolled))."""
        from detectors.enroll import Template

        def load(key: str) -> Template | None:
            model: Any = Figure if is_figure_key(key) else Likeness
            row = session.get(model, key, populate_existing=True)
            return Template.from_bytes(row.template) if row is not None else None

        with self._index_lock:
            self._indexed = self._follow(
                session, "likenesses", self.index, self._indexed, load,
                lambda: set(session.exec(select(Likeness.id)).all()) | set(session.exec(select(Figure.id)).all()))
            return self.index

    def _follow(self, session: Session, kind: str, index: Any, known: set[str], load: Callable[[str], Any],
                every_id: Callable[[], set[str]]) -> set[str]:
        """Bring ``index`` (holding ``known`` keys) up to the database through the change feed ``kind``; the
        first call (or a counter that went back: another database) loads every row. Returns the keys held."""
        from governance import metrics

        started = time.perf_counter()
        version = counter(session, kind)  # read first: changes committed later are past it and read next time
        last = self._versions.get(kind)
        if last is not None and 0 <= last <= version:
            if last == version:
                return known
            keys = changes_since(session, kind, last, version)
            for key in keys:
                item = load(key)
                if item is None:
                    if key in known:
                        index.remove(key)
                        known.discard(key)
                else:
                    index.add(key, item)
                    known.add(key)
            applied = len(keys)
        else:
            known = _sync(index, known, every_id(), load)
            applied = len(known)
        self._versions[kind] = version
        metrics.index_synced(kind, applied, time.perf_counter() - started)
        return known

    def index_lag(self, session: Session) -> dict[str, int]:
        """How many versions each in-memory index is behind the database's change feed (-1: never synced)."""
        out = {}
        for kind in ("likenesses", "fingerprints"):
            last = self._versions.get(kind)
            out[kind] = -1 if last is None else max(0, counter(session, kind) - last)
        return out

    @cached_property
    def identity_proof(self) -> IdentityProof:
        """The operator's identity proof (``identity_proof``), or the null one that checks nothing."""
        from governance.identity import load_identity_proof

        return load_identity_proof(self.settings.identity_proof)

    @cached_property
    def fingerprint_index(self) -> FingerprintIndex:
        from provenance.fingerprint import FingerprintIndex

        return FingerprintIndex()

    def sync_fingerprints(self, session: Session) -> FingerprintIndex:
        """Make the fingerprint index hold exactly the stored fingerprints of released videos (change feed)."""
        from provenance.fingerprint import Fingerprint

        def load(gid: str) -> Fingerprint | None:
            row = session.get(ContentFingerprint, gid, populate_existing=True)
            return Fingerprint.from_bytes(row.data) if row is not None else None

        with self._index_lock:
            self._fingerprinted = self._follow(
                session, "fingerprints", self.fingerprint_index, self._fingerprinted, load,
                lambda: set(session.exec(select(ContentFingerprint.generation_id)).all()))
            return self.fingerprint_index

    @cached_property
    def verify_limiter(self) -> Limiter:
        """Per process with the in-process engine; shared through Redis (``redis_url``) when a broker carries the
        jobs (then several API processes run, and each must count every request)."""
        s = self.settings
        if s.shared_limits and s.verify_per_minute > 0:
            return RedisRateLimiter(s.verify_per_minute, s.redis_url, prefix=s.queue_prefix)
        return RateLimiter(s.verify_per_minute)

    @cached_property
    def verify_cost_limiter(self) -> Limiter:
        """Decoded megapixels per verify client per minute (``verify_megapixels_per_minute``), shared like
        :attr:`verify_limiter`: a request is charged what it decoded, and a client in debt waits."""
        s = self.settings
        if s.shared_limits and s.verify_megapixels_per_minute > 0:
            return RedisRateLimiter(s.verify_megapixels_per_minute, s.redis_url, prefix=s.queue_prefix,
                                    name="verify-cost")
        return RateLimiter(s.verify_megapixels_per_minute)

    @cached_property
    def slots(self) -> Slots:
        """Slots for expensive work in this process (verification, enrollment): ``expensive_slots``."""
        from governance.admission import Slots

        return Slots(self.settings.expensive_slots)

    @cached_property
    def simulate_limiter(self) -> Limiter:
        """Rule simulations per rights-holder account, shared like :attr:`verify_limiter`."""
        s = self.settings
        if s.shared_limits and s.simulate_per_minute > 0:
            return RedisRateLimiter(s.simulate_per_minute, s.redis_url, prefix=s.queue_prefix, name="simulate")
        return RateLimiter(s.simulate_per_minute)

    @cached_property
    def character_encoder(self) -> OnnxImageEmbedder | None:
        """The operator's image encoder for visual character detection, or None (characters by name only)."""
        if not self.settings.character_model_dir:
            return None
        from detectors.visual import OnnxImageEmbedder

        return OnnxImageEmbedder(self.settings.character_model_dir)

    @cached_property
    def generator(self) -> VideoGenerator:
        from generator.base import get_generator

        s = self.settings
        if s.generator == "diffusers":
            return get_generator("diffusers", model_dir=s.generator_dir, steps=s.generator_steps)
        return get_generator(s.generator)

    @cached_property
    def _signer(self) -> tuple[SignerMaterial, SignFn | None]:
        return load_signer(self.settings)

    @property
    def signer_material(self) -> SignerMaterial:
        """The C2PA certificate chain and root (and the key, unless a KMS/HSM callback signs)."""
        return self._signer[0]

    def signed_log_head(self, session: Session) -> SignedTreeHead:
        """The transparency log's current size and root, signed with the C2PA signer (key or KMS). Every
        head signed is kept (:func:`governance.log.services.translog.keep_head`); a log that no longer extends
        the last head kept (entries removed or rewritten) gets no new signature: ``Unavailable`` says why."""
        from governance.errors import Unavailable
        from governance.log.services import translog
        from provenance.errors import SigningError
        from provenance.keys import callback_signer_from_key
        from provenance.treehead import SignedTreeHead

        head = translog.head(session)
        with self._head_lock:
            cached = self._signed_head
            if cached is None or (cached.tree_size, cached.root_hash) != (head.size, head.root_hash):
                last = translog.latest_head(session)
                why = translog.departs_from(session, last) if last is not None else None
                if why is not None:
                    raise Unavailable(f"the transparency log's head is not signed: {why} (run 'consentgate log audit')")
                material = self.signer_material
                sign = self.sign_fn or callback_signer_from_key(material)
                try:
                    cached = SignedTreeHead.sign(head.size, head.root_hash, sign, material.alg,
                                                 material.cert_chain_pem)
                except SigningError as e:  # a KMS that is down: say so, retry on the next request
                    from governance import metrics

                    metrics.SIGNER_FAILURES.inc()
                    raise Unavailable(f"the transparency log's head cannot be signed now: {e}") from e
                with unit_of_work(self.engine) as s:  # its own transaction: the caller's may only read
                    translog.keep_head(s, cached)
                self._signed_head = cached
            return cached

    def readiness(self) -> dict[str, str]:
        """Whether this process can serve, check by check: ``ok`` or why not. The signer is asked to sign a
        probe (a KMS/HSM callback may be down while the process runs); its answer is kept for 15 seconds."""
        checks: dict[str, str] = {}
        try:
            with self.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
            checks["database"] = "ok"
        except Exception as e:
            checks["database"] = f"unreachable ({type(e).__name__})"
        try:
            self.pipeline.engine.ping()
            checks["broker"] = "ok"
        except Exception as e:
            checks["broker"] = f"unreachable ({type(e).__name__})"
        checks["signer"] = self._signer_state()
        return checks

    def _signer_state(self) -> str:
        now = time.monotonic()
        cached = self._signer_checked
        if cached is not None and now - cached[0] < 15.0:
            return cached[1]
        from governance import metrics
        from provenance.keys import callback_signer_from_key

        try:
            material = self.signer_material
            sign = self.sign_fn or callback_signer_from_key(material)
            if not sign(b"consentgate readiness probe"):
                raise ValueError("empty signature")
            state = "ok"
        except Exception as e:
            metrics.SIGNER_FAILURES.inc()
            state = f"unreachable ({type(e).__name__})"
        self._signer_checked = (now, state)
        return state

    @cached_property
    def trust_anchor_pem(self) -> bytes:
        """The root certificate verification trusts (no key and no KMS needed to read it)."""
        if self.settings.c2pa_signer:
            from provenance.keys import load_signer_material

            return load_signer_material(self.settings.keys_dir / "c2pa", with_key=False).root_pem
        return self.signer_material.root_pem

    @cached_property
    def trust_anchors(self) -> list[bytes]:
        """Every root verification trusts: the current one, then those of retired signing chains
        (``keys/c2pa-retired/*/root-ca.pem``, newest first), so releases signed before a retirement stay
        Trusted. Delete a retired folder whose key was compromised."""
        from governance.log.services.keys import retired_roots

        return [self.trust_anchor_pem, *(p.read_bytes() for p in retired_roots(self.settings))]

    @property
    def sign_fn(self) -> SignFn | None:
        """The KMS/HSM signing callback (``c2pa_signer``), or ``None`` to sign with the key file."""
        return self._signer[1]

    @cached_property
    def watermark_key(self) -> WatermarkKey:
        """The key new releases are marked with."""
        return load_or_create_watermark_key(self.settings.keys_dir / "watermark.key")

    @cached_property
    def cursor_key(self) -> bytes:
        """The key pagination cursors are signed with (``keys/cursor.key``)."""
        return load_or_create_cursor_key(self.settings.keys_dir / "cursor.key")

    @cached_property
    def watermark_keys(self) -> list[WatermarkKey]:
        """Every key detection tries: the current one, then retired ones (``keys/watermark-retired/*.key``,
        newest file first), so videos marked before a key rotation still verify (docs/adr/0004)."""
        from governance.log.services.keys import retired_watermark_keys
        from provenance.watermark import WatermarkKey

        retired = retired_watermark_keys(self.settings)
        return [self.watermark_key, *(WatermarkKey(p.read_bytes()) for p in retired)]

    @cached_property
    def pipeline(self) -> Pipeline:
        from governance.generations.pipeline import Pipeline

        return Pipeline(self)
