"""Reference face images of enrolled likenesses, encrypted at rest in the file store (issue 12).

A likeness row holds its template's embeddings and a few names only (:meth:`detectors.enroll.Template.
without_reference`: 3.3 KB for five 128-d poses). The reference face crop the generator composites (up to 518 x 518
px; ~500 KB when it sat in the row) is biometric data: it lives in ``var/references/<likeness id>.ref``,
encrypted with AES-256-GCM (``cryptography``), and is read back only where the generator needs it (the gate's
generation stage). File layout::

    b"CGREF1" | 12-byte random nonce | AES-GCM(key, nonce, PNG bytes, associated data = b"cg-ref-v1/" + id)

The associated data binds each file to its likeness: a file copied over another likeness's does not decrypt.
The key is 32 random bytes in ``var/keys/reference.key`` (mode 0600), created on first use the way the
watermark key is (never replaced once it exists: losing it loses every reference, which only means the
owners re-enroll). Files are written atomically with mode 0600; a failed write leaves nothing behind.

    >>> import numpy as np, tempfile
    >>> from pathlib import Path
    >>> d = Path(tempfile.mkdtemp())
    >>> store = ReferenceStore(d / "references", d / "reference.key")
    >>> face = np.full((8, 8, 3), 200, np.uint8)
    >>> store.put("lk_1", face)
    >>> bool((store.get("lk_1") == face).all()), store.has("lk_2")
    (True, False)
"""

from __future__ import annotations

import os
import re
import secrets
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from governance.errors import GovernanceError
from governance.keyfiles import load_or_create_secret

if TYPE_CHECKING:
    from sqlmodel import Session

    from detectors.enroll import Template
    from governance.config import Settings

__all__ = ["ReferenceStore", "ReferenceUnavailable", "bind", "forget", "keep", "load_or_create_key", "reference_of",
           "store_for", "store_of"]

_MAGIC = b"CGREF1"
_NONCE = 12
_AAD = b"cg-ref-v1/"
_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class ReferenceUnavailable(GovernanceError):
    """A reference image is missing, unreadable or fails its integrity check."""

    status = 500
    type_ = "reference-unavailable"
    title = "Reference image unavailable"


def load_or_create_key(path: Path) -> bytes:
    """The 32-byte AES key in ``path``, created (mode 0600, never replacing one another process made) if absent."""
    path.parent.mkdir(parents=True, exist_ok=True)
    key = load_or_create_secret(path, lambda: secrets.token_bytes(32))
    if len(key) != 32:
        raise ReferenceUnavailable(f"the reference key {path.name} must hold 32 bytes, it holds {len(key)}")
    return key


class ReferenceStore:
    """Encrypted reference images by likeness id, in ``directory`` with the key in ``key_path``."""

    def __init__(self, directory: Path, key_path: Path) -> None:
        self.directory = Path(directory)
        self.key_path = Path(key_path)
        self._aead: object | None = None

    def __repr__(self) -> str:
        return f"ReferenceStore({str(self.directory)!r}, key=<hidden>)"

    def _cipher(self):  # type: ignore[no-untyped-def]
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        if self._aead is None:
            self._aead = AESGCM(load_or_create_key(self.key_path))
        return self._aead

    def path(self, likeness_id: str) -> Path:
        if not isinstance(likeness_id, str) or not _ID.match(likeness_id):
            raise ReferenceUnavailable(f"not a likeness id: {likeness_id!r}")
        return self.directory / f"{likeness_id}.ref"

    def has(self, likeness_id: str) -> bool:
        return self.path(likeness_id).is_file()

    def put(self, likeness_id: str, rgb: np.ndarray) -> None:
        """Encrypt and store ``rgb`` ((H, W, 3) uint8) for ``likeness_id``, replacing any earlier one atomically."""
        import cv2

        if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
            got = getattr(rgb, "shape", type(rgb).__name__)
            raise ReferenceUnavailable(f"a reference must be an (H, W, 3) uint8 image, got {got}")
        ok, png = cv2.imencode(".png", np.ascontiguousarray(rgb[..., ::-1]))
        if not ok:
            raise ReferenceUnavailable("the reference image could not be encoded")
        nonce = secrets.token_bytes(_NONCE)
        blob = _MAGIC + nonce + self._cipher().encrypt(nonce, png.tobytes(), _AAD + likeness_id.encode())
        dest = self.path(likeness_id)
        if not self.directory.is_dir():
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.chmod(self.directory, 0o700)  # whatever the umask
        tmp = dest.with_name(f".{dest.name}.{os.getpid()}.part")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(blob)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)

    def get(self, likeness_id: str) -> np.ndarray:
        """The reference of ``likeness_id`` as (H, W, 3) uint8 RGB; :class:`ReferenceUnavailable` when it is missing,
        altered, or stored for another likeness."""
        import cv2
        from cryptography.exceptions import InvalidTag

        try:
            blob = self.path(likeness_id).read_bytes()
        except FileNotFoundError as e:
            raise ReferenceUnavailable(f"likeness {likeness_id} has no reference image in the store") from e
        if not blob.startswith(_MAGIC) or len(blob) < len(_MAGIC) + _NONCE + 16:
            raise ReferenceUnavailable(f"the reference image of likeness {likeness_id} is not a ConsentGate "
                                       "reference file")
        nonce = blob[len(_MAGIC):len(_MAGIC) + _NONCE]
        try:
            png = self._cipher().decrypt(nonce, blob[len(_MAGIC) + _NONCE:], _AAD + likeness_id.encode())
        except InvalidTag as e:
            raise ReferenceUnavailable(f"the reference image of likeness {likeness_id} fails its integrity check "
                                  "(altered, another likeness's, or another key's)") from e
        bgr = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
        if bgr is None:
            raise ReferenceUnavailable(f"the reference image of likeness {likeness_id} does not decode")
        return np.ascontiguousarray(bgr[..., ::-1])

    def delete(self, likeness_id: str) -> None:
        self.path(likeness_id).unlink(missing_ok=True)


# -- the store a database's rows point into ----------------------------------------------------------------------
# Each engine (database) is bound to its data dir's store by whoever opens it for the service (the runtime, the
# CLI, ``initialise``); an engine bound to none (a bare test database) keeps references in the rows, as before.
_stores: weakref.WeakKeyDictionary[Any, ReferenceStore] = weakref.WeakKeyDictionary()


def store_for(settings: Settings) -> ReferenceStore:
    """The store of a data dir: ``var/references/`` with the key ``var/keys/reference.key``."""
    return ReferenceStore(settings.data_dir / "references", settings.keys_dir / "reference.key")


def bind(engine: Any, store: ReferenceStore) -> None:
    _stores[engine] = store


def store_of(session_or_engine: Any) -> ReferenceStore | None:
    """The store bound to a session's (or connection's, or engine's) engine, or ``None``."""
    bind_ = session_or_engine.get_bind() if hasattr(session_or_engine, "get_bind") else session_or_engine
    engine = getattr(bind_, "engine", bind_)
    return _stores.get(engine)


def keep(session: Session, likeness_id: str, template: Template) -> bytes:
    """What a likeness row stores for ``template``: with a store bound, the reference goes into the store (undone
    if the unit of work rolls back: a new file is removed, a replaced one restored) and the row gets the
    template without it; without a store, the whole template."""
    store = store_of(session)
    if store is None or template.reference is None:
        return template.to_bytes()
    path = store.path(likeness_id)
    before = path.read_bytes() if path.is_file() else None
    store.put(likeness_id, template.reference)
    _on(session, "after_rollback", lambda: _restore(path, before))
    return template.without_reference().to_bytes()


def forget(session: Session, likeness_id: str) -> None:
    """Delete ``likeness_id``'s reference once the unit of work deleting the likeness commits."""
    store = store_of(session)
    if store is not None:
        _on(session, "after_commit", lambda: store.delete(likeness_id))


def reference_of(session: Session, likeness_id: str, template: Template) -> np.ndarray:
    """The reference face of a likeness for the generator: the row's own (rows from before issue 12 kept it, or
    no store was bound) or the store's."""
    if template.reference is not None:
        return template.reference
    store = store_of(session)
    if store is None:
        raise ReferenceUnavailable(f"likeness {likeness_id} keeps its reference image in a file store this "
                                   "database is not bound to")
    return store.get(likeness_id)


def _restore(path: Path, before: bytes | None) -> None:
    if before is None:
        path.unlink(missing_ok=True)
        return
    tmp = path.with_name(f".{path.name}.restore.part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(before)
    os.replace(tmp, path)


def _on(session: Session, event: str, fn: Any) -> None:
    """Run ``fn`` once, when the session's current transaction commits (``after_commit``) or ends any other way:
    rolled back, or closed uncommitted (``after_rollback``); the other outcome drops it."""
    from sqlalchemy import event as sa_event

    if not session.in_transaction():
        session.begin()  # the outcome to wait for
    pending: dict[str, list[Any]] | None = session.info.get("reference_hooks")
    if pending is None:
        pending = session.info["reference_hooks"] = {"after_commit": [], "after_rollback": []}

        def run(which: str) -> None:
            hooks = session.info.get("reference_hooks") or {}
            todo = list(hooks.get(which, []))
            for k in ("after_commit", "after_rollback"):
                hooks.get(k, []).clear()
            for f in todo:
                f()

        def committed(_session: Any) -> None:
            run("after_commit")

        def ended(_session: Any, transaction: Any) -> None:
            if transaction.parent is None:  # the outermost: committed ones ran their hooks already
                run("after_rollback")

        sa_event.listen(session, "after_commit", committed)
        sa_event.listen(session, "after_transaction_end", ended)
    pending[event].append(fn)
