"""Which signing chain and watermark key the service's releases depend on, and their deliberate retirement.

Every release is signed under the C2PA chain in ``keys/c2pa`` and marked with ``keys/watermark.key``.
Lose either and every earlier release verifies as untrusted or unmarked; worse, the next start used to
make new keys without a word. So the audit log records which key is in use from which release on
(``keys:in-use``, written at start when the key changes), and a start refuses when the key that marked or
signed releases is gone, unless it was retired on purpose (``consentgate keys retire``, ``keys:retire``) or
moved aside by hand into the retired folder, where verification still reads it:

- ``keys/watermark-retired/*.key``: retired watermark keys, tried after the current one;
- ``keys/c2pa-retired/<when>/``: retired signing chains; their ``root-ca.pem`` stays a trust anchor.

Like every service, nothing here commits; moving files happens after the caller commits
(:meth:`Retirement.move`), so a failed commit leaves the key where it was.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sqlmodel import Session, func, select

from governance.audit import Tag, record
from governance.bookkeeping import AuditEvent
from governance.config import ConfigError, Settings
from governance.generations.models import Generation

Kind = Literal["c2pa", "watermark"]
KINDS: tuple[Kind, ...] = ("c2pa", "watermark")
_C2PA_FILES = ("signer-chain.pem", "signer-key.pem", "root-ca.pem")


def c2pa_dir(settings: Settings) -> Path:
    return settings.keys_dir / "c2pa"


def watermark_path(settings: Settings) -> Path:
    return settings.keys_dir / "watermark.key"


def retired_dir(settings: Settings, kind: Kind) -> Path:
    return settings.keys_dir / ("c2pa-retired" if kind == "c2pa" else "watermark-retired")


def retired_roots(settings: Settings) -> list[Path]:
    """The root certificates of retired signing chains, newest first."""
    folder = retired_dir(settings, "c2pa")
    roots = folder.glob("*/root-ca.pem") if folder.is_dir() else []
    return sorted(roots, key=lambda p: p.parent.name, reverse=True)


def retired_watermark_keys(settings: Settings) -> list[Path]:
    """Retired watermark key files, newest first."""
    folder = retired_dir(settings, "watermark")
    keys = folder.glob("*.key") if folder.is_dir() else []
    return sorted(keys, key=lambda p: p.stat().st_mtime, reverse=True)


def key_id(settings: Settings, kind: Kind, path: Path | None = None) -> str | None:
    """A public name for the key at ``path`` (default: the current one), or None when it is not there:
    a watermark key's id, or the SHA-256 of the signing chain's root certificate."""
    if kind == "watermark":
        from provenance.watermark import WatermarkKey

        path = path or watermark_path(settings)
        return WatermarkKey(path.read_bytes()).key_id if path.is_file() else None
    root = path or c2pa_dir(settings) / "root-ca.pem"
    if not root.is_file():
        return None
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    try:
        der = x509.load_pem_x509_certificate(root.read_bytes()).public_bytes(Encoding.DER)
    except ValueError:
        return None  # not a certificate: load_signer_material says so when the service starts
    return "sha256:" + hashlib.sha256(der).hexdigest()[:16]


def _present(settings: Settings, kind: Kind) -> bool:
    if kind == "watermark":
        return watermark_path(settings).exists()
    return any((c2pa_dir(settings) / name).exists() for name in _C2PA_FILES)


def _retired_ids(settings: Settings, kind: Kind) -> set[str]:
    paths = retired_roots(settings) if kind == "c2pa" else retired_watermark_keys(settings)
    return {i for i in (key_id(settings, kind, p) for p in paths) if i is not None}


def released_count(session: Session) -> int:
    return int(session.exec(select(func.count()).select_from(Generation)
                            .where(Generation.released_at != None)).one())  # type: ignore[arg-type]  # noqa: E711


def _last_event(session: Session, kind: Kind) -> AuditEvent | None:
    rows = session.exec(select(AuditEvent).where(AuditEvent.subject == f"keys/{kind}",
                                                 AuditEvent.tag.in_([Tag.KEY_IN_USE.value, Tag.KEY_RETIRE.value]))  # type: ignore[attr-defined]
                        .order_by(AuditEvent.id.desc()).limit(1)).all()  # type: ignore[union-attr]
    return rows[0] if rows else None


def check_present(session: Session, settings: Settings) -> None:
    """Refuse (:class:`ConfigError`, one line) to start when a key that releases depend on is missing and
    was neither retired with ``consentgate keys retire`` nor moved into its retired folder."""
    for kind in KINDS:
        if _present(settings, kind):
            continue
        last = _last_event(session, kind)
        if last is not None and last.tag == Tag.KEY_RETIRE.value:
            continue  # retired on purpose: a new key may be made
        if last is not None and last.data.get("key_id") in _retired_ids(settings, kind):
            continue  # moved aside by hand (a rotation): verification still reads it there
        used = released_count(session) - (int(last.data.get("releases", 0)) if last is not None else 0)
        if used > 0:
            raise ConfigError(_missing(settings, kind, used))


def _missing(settings: Settings, kind: Kind, used: int) -> str:
    what = (f"the C2PA signing chain {c2pa_dir(settings)} is missing, but {used} release(s) were signed under it"
            if kind == "c2pa" else
            f"the watermark key {watermark_path(settings)} is missing, but {used} release(s) were marked with it")
    after = "verify as Valid instead of Trusted" if kind == "c2pa" else "verify as unmarked"
    return (f"{what}: restore it from your backup, or run 'consentgate keys retire --{kind}' to retire it on "
            f"purpose (those releases then {after}) and start again to make a new one")


def note_in_use(session: Session, settings: Settings) -> None:
    """Record, when it changed, which key each kind uses from the next release on (``keys:in-use``)."""
    for kind in KINDS:
        current = key_id(settings, kind)
        if current is None:
            continue
        last = _last_event(session, kind)
        if last is not None and last.tag == Tag.KEY_IN_USE.value and last.data.get("key_id") == current:
            continue
        # the first record (a service older than these records) assumes the key made every earlier release
        since = released_count(session) if last is not None else 0
        record(session, Tag.KEY_IN_USE, actor_id=None, subject=f"keys/{kind}", kind=kind, key_id=current,
               releases=since)


@dataclass(frozen=True)
class Retirement:
    """What ``consentgate keys retire`` recorded, and the move to make once that is committed."""

    kind: Kind
    key_id: str | None  # None: the key was already gone
    source: Path | None
    destination: Path | None
    releases: int

    def move(self) -> None:
        """Move the key into its retired folder (mode 0700), where verification still reads it."""
        if self.source is None or self.destination is None:
            return
        self.destination.parent.mkdir(mode=0o700, exist_ok=True)
        os.chmod(self.destination.parent, 0o700)
        os.replace(self.source, self.destination)


def retire(session: Session, settings: Settings, kind: Kind, *, reason: str | None = None,
           actor_id: str | None = None) -> Retirement:
    """Record (``keys:retire``) that the current key of ``kind`` is retired on purpose, so the next start
    may make a new one. A key still there moves into its retired folder (:meth:`Retirement.move`)."""
    if kind not in KINDS:
        raise ConfigError(f"a key kind is one of {KINDS}, got {kind!r}")
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    current = key_id(settings, kind)
    source: Path | None = None
    destination: Path | None = None
    if _present(settings, kind):
        source = c2pa_dir(settings) if kind == "c2pa" else watermark_path(settings)
        name = stamp if kind == "c2pa" else f"{stamp}-{current}.key"
        destination = retired_dir(settings, kind) / name
        if destination.exists():
            raise ConfigError(f"{destination} already exists: retire again in a second")
    releases = released_count(session)
    record(session, Tag.KEY_RETIRE, actor_id=actor_id, subject=f"keys/{kind}", kind=kind, key_id=current,
           releases=releases, moved_to=None if destination is None else str(destination.relative_to(settings.keys_dir)),
           reason=reason)
    return Retirement(kind, current, source, destination, releases)
