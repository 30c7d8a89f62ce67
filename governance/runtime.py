"""The service's resources, each built once from settings and passed to the functions that use it (never a
container): :class:`Keys` (the C2PA signer, trust anchors and watermark keys), :class:`Detectors` (the face
backend, its match threshold, the character encoder), :class:`Indexes` (the in-memory likeness and fingerprint
indexes, kept in step with the database's change feed) and :func:`load_generator`; plus the start-up checks
(:func:`initialise`). The database is a SQLAlchemy ``Engine`` (:func:`governance.db.make_engine`); limits and
slots are :class:`governance.admission.Limits`; the transparency log's signed heads are
:class:`governance.log.services.heads.TreeHeads`. :mod:`governance.container` wires them for the app, the worker
and the CLI. Heavy libraries load on first use, not at import."""

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
from governance.keyfiles import load_or_create_secret
from governance.likenesses.models import Figure, Likeness, is_figure_key
from governance.verification.models import ContentFingerprint

if TYPE_CHECKING:
    from detectors.faces import FaceBackend
    from detectors.index import LikenessIndex
    from detectors.visual import OnnxImageEmbedder
    from generator.base import VideoGenerator
    from governance.jobs import JobEngine
    from provenance.fingerprint import FingerprintIndex
    from provenance.keys import SignerMaterial, SignFn
    from provenance.watermark import WatermarkKey


def initialise(settings: Settings, keys: Keys | None = None) -> None:
    """Create var/ folders (mode 0700), the database, the development signing CA and the watermark key.
    Idempotent. With ``keys`` (those of the process about to serve), the signer loaded here is the one it
    keeps: a KMS/HSM callback is built and checked once per start.

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
        if keys is not None:
            keys.material  # noqa: B018  (loads and keeps it)
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


def load_or_create_watermark_key(path: Path) -> WatermarkKey:
    from provenance.watermark import WatermarkKey

    return WatermarkKey(load_or_create_secret(path, lambda: WatermarkKey.generate().secret))


#: Bytes of the key that signs pagination cursors (``keys/cursor.key``): 256 bits, HMAC-SHA1 in itsdangerous'
#: Signer keys its derivation with it.
CURSOR_KEY_BYTES = 32


def load_or_create_cursor_key(path: Path) -> bytes:
    """The service's key for pagination cursors (:mod:`governance.pagination`), made on first use. Losing it
    only invalidates the cursors handed out so far (clients start their list again)."""
    return load_or_create_secret(path, lambda: os.urandom(CURSOR_KEY_BYTES))


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


def require_free_space(settings: Settings) -> None:
    """Refuse new work (``InsufficientStorage``, 507) while the data directory has less free space than
    ``min_free_bytes``: a generation needs room for its raw frames and its sealed video."""
    from governance.errors import InsufficientStorage

    floor = settings.min_free_bytes
    if floor and shutil.disk_usage(settings.data_dir).free < floor:
        raise InsufficientStorage("the service is short of storage space for new generations; try again later",
                                  retry_after=60)


def load_generator(settings: Settings) -> VideoGenerator:
    """The generator ``settings`` name (``generator``, ``generator_dir``, ``generator_steps``); a diffusers
    model loads on its first generation, not here."""
    from generator.backends import get_generator

    if settings.generator == "diffusers":
        return get_generator("diffusers", model_dir=settings.generator_dir, steps=settings.generator_steps)
    return get_generator(settings.generator)


class Keys:
    """The C2PA signer (certificate chain and key file, or the operator's KMS/HSM callback), the roots
    verification trusts and the watermark keys, all under ``settings.keys_dir``, each loaded on first use and
    kept. Thread-safe for reading once loaded."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._probed: tuple[float, str] | None = None  # (when, state) of the last readiness probe

    @cached_property
    def _signer(self) -> tuple[SignerMaterial, SignFn | None]:
        return load_signer(self.settings)

    @property
    def material(self) -> SignerMaterial:
        """The C2PA certificate chain and root (and the key, unless a KMS/HSM callback signs)."""
        return self._signer[0]

    @property
    def sign_fn(self) -> SignFn | None:
        """The KMS/HSM signing callback (``c2pa_signer``), or ``None`` to sign with the key file."""
        return self._signer[1]

    def signer(self) -> SignFn:
        """What signs bytes now: the KMS/HSM callback, or one made from the key file."""
        from provenance.keys import callback_signer_from_key

        return self.sign_fn or callback_signer_from_key(self.material)

    @cached_property
    def trust_anchor_pem(self) -> bytes:
        """The root certificate verification trusts, ``keys/c2pa/root-ca.pem`` as stored: the same bytes the signer
        loads (:func:`load_signer`), read without the key, the KMS or a certificate parser, and never making a CA
        (the signer itself is loaded and checked at start, :func:`initialise`, and where it signs). So an offline
        verification (``consentgate verify``) pays no ~0.1 s for the signer. Raises ``SigningError`` when the
        file is missing or holds no PEM certificate."""
        from provenance.errors import SigningError

        pem = self._stored("root-ca.pem", "the trust anchor")
        if b"-----BEGIN CERTIFICATE-----" not in pem:
            raise SigningError(f"{self.settings.keys_dir / 'c2pa' / 'root-ca.pem'} must hold a PEM certificate "
                               "(the trust anchor), got none")
        return pem

    @cached_property
    def chain_pem(self) -> bytes:
        """The signing certificate chain (leaf first) as stored, ``keys/c2pa/signer-chain.pem``: what the signer
        embeds, read without the key or the KMS. Raises ``SigningError`` when it cannot be read."""
        return self._stored("signer-chain.pem", "the signing chain")

    def _stored(self, name: str, what: str) -> bytes:
        """``keys/c2pa/<name>`` as stored; ``SigningError`` naming ``what`` when it cannot be read."""
        from provenance.errors import SigningError

        path = self.settings.keys_dir / "c2pa" / name
        try:
            return path.read_bytes()
        except OSError as e:
            raise SigningError(f"cannot read {what} {path}: {e}") from e

    @cached_property
    def trust_anchors(self) -> list[bytes]:
        """Every root verification trusts: the current one, then those of retired signing chains
        (``keys/c2pa-retired/*/root-ca.pem``, newest first), so releases signed before a retirement stay
        Trusted. Delete a retired folder whose key was compromised."""
        from governance.log.services.keys import retired_roots

        return [self.trust_anchor_pem, *(p.read_bytes() for p in retired_roots(self.settings))]

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

    def present(self) -> tuple[list[bytes], list[WatermarkKey]]:
        """The trust anchors and watermark keys that exist on disk (none when ``keys/`` was never made): what
        an offline verification may read without creating anything."""
        anchors = self.trust_anchors if (self.settings.keys_dir / "c2pa").exists() else []
        marks = self.watermark_keys if (self.settings.keys_dir / "watermark.key").exists() else []
        return anchors, marks

    def probe(self) -> str:
        """``ok``, or why the signer cannot sign now (``unreachable (TimeoutError)``): it is asked to sign a probe
        (a KMS/HSM callback may be down while the process runs); its answer is kept for 15 seconds."""
        now = time.monotonic()
        cached = self._probed
        if cached is not None and now - cached[0] < 15.0:
            return cached[1]
        from governance import metrics

        try:
            if not self.signer()(b"consentgate readiness probe"):
                raise ValueError("empty signature")
            state = "ok"
        except Exception as e:
            metrics.SIGNER_FAILURES.inc()
            state = f"unreachable ({type(e).__name__})"
        self._probed = (now, state)
        return state


class Detectors:
    """The face backend a deployment configured, the match threshold in use with it, and the operator's image
    encoder for visual character detection (or None), each built on first use."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @cached_property
    def face_backend(self) -> FaceBackend:
        from detectors.backends import backend_from_settings
        from detectors.errors import DetectorError

        try:
            return backend_from_settings(self.settings.face_backend, self.settings.insightface_dir or None,
                                         detector=self.settings.face_detector)
        except DetectorError as e:
            raise ConfigError(str(e)) from e

    @property
    def match_threshold(self) -> float:
        """``match_threshold`` when set, else the one measured for the backend (docs/face-matching.md)."""
        from detectors.matching import threshold_for

        return self.settings.match_threshold or threshold_for(self.face_backend)

    @cached_property
    def character_encoder(self) -> OnnxImageEmbedder | None:
        """The operator's image encoder for visual character detection, or None (characters by name only)."""
        if not self.settings.character_model_dir:
            return None
        from detectors.visual import OnnxImageEmbedder

        return OnnxImageEmbedder(self.settings.character_model_dir)


class Indexes:
    """This process's in-memory likeness index (enrolled likenesses and protected figures) and fingerprint
    index (released videos), each brought up to the database through its change feed when asked
    (:meth:`sync_index`, :meth:`sync_fingerprints`): O(changes), not O(rows), after the first time."""

    def __init__(self, detectors: Detectors, *, on_sync: Callable[[str, int, float], None] | None = None) -> None:
        """``on_sync(kind, applied, seconds)`` is told of every sync (``kind``: ``likenesses`` or ``fingerprints``;
        ``applied``: changes applied, every row the first time): the process's metrics
        (:func:`governance.metrics.index_synced`), or None for a one-shot command that serves none."""
        self.detectors = detectors
        self.on_sync = on_sync
        self._lock = threading.Lock()
        self._indexed: set[str] = set()
        self._fingerprinted: set[str] = set()
        self._versions: dict[str, int] = {}  # counter value each in-memory index was last synced at

    @cached_property
    def index(self) -> LikenessIndex:
        from detectors.index import LikenessIndex

        return LikenessIndex(dim=self.detectors.face_backend.dim)

    @cached_property
    def fingerprint_index(self) -> FingerprintIndex:
        from provenance.fingerprint import FingerprintIndex

        return FingerprintIndex()

    def sync_index(self, session: Session) -> LikenessIndex:
        """Make the in-memory index hold exactly the enrolled likenesses and the protected public figures
        (keys ``fig_...``: :func:`is_figure_key`), other processes' changes included: the first time every
        one, then only those the change feed names (O(changes), not O(enrolled))."""
        from detectors.template import Template

        def load(key: str) -> Template | None:
            model: Any = Figure if is_figure_key(key) else Likeness
            row = session.get(model, key, populate_existing=True)
            return Template.from_bytes(row.template) if row is not None else None

        with self._lock:
            self._indexed = self._follow(
                session, "likenesses", self.index, self._indexed, load,
                lambda: set(session.exec(select(Likeness.id)).all()) | set(session.exec(select(Figure.id)).all()))
            return self.index

    def sync_fingerprints(self, session: Session) -> FingerprintIndex:
        """Make the fingerprint index hold exactly the stored fingerprints of released videos (change feed)."""
        from provenance.fingerprint import Fingerprint

        def load(gid: str) -> Fingerprint | None:
            row = session.get(ContentFingerprint, gid, populate_existing=True)
            return Fingerprint.from_bytes(row.data) if row is not None else None

        with self._lock:
            self._fingerprinted = self._follow(
                session, "fingerprints", self.fingerprint_index, self._fingerprinted, load,
                lambda: set(session.exec(select(ContentFingerprint.generation_id)).all()))
            return self.fingerprint_index

    def _follow(self, session: Session, kind: str, index: Any, known: set[str], load: Callable[[str], Any],
                every_id: Callable[[], set[str]]) -> set[str]:
        """Bring ``index`` (holding ``known`` keys) up to the database through the change feed ``kind``; the
        first call (or a counter that went back: another database) loads every row. Returns the keys held."""
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
        if self.on_sync is not None:
            self.on_sync(kind, applied, time.perf_counter() - started)
        return known

    def lag(self, session: Session) -> dict[str, int]:
        """How many versions each in-memory index is behind the database's change feed (-1: never synced)."""
        out = {}
        for kind in ("likenesses", "fingerprints"):
            last = self._versions.get(kind)
            out[kind] = -1 if last is None else max(0, counter(session, kind) - last)
        return out


def readiness(engine: sa.Engine, jobs: JobEngine, keys: Keys) -> dict[str, str]:
    """Whether this process can serve, check by check: ``ok`` or why not (the database, the job broker, the
    signer: :meth:`Keys.probe`)."""
    checks: dict[str, str] = {}
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as e:
        checks["database"] = f"unreachable ({type(e).__name__})"
    try:
        jobs.ping()
        checks["broker"] = "ok"
    except Exception as e:
        checks["broker"] = f"unreachable ({type(e).__name__})"
    checks["signer"] = keys.probe()
    return checks
