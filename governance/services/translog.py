"""The transparency log: an append-only hash chain over released content.

Each entry commits to the previous one, so any edit or deletion of a past entry breaks every later hash;
``verify_chain`` recomputes it. (A Merkle tree with inclusion proofs is the next step.)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

from sqlmodel import Session, select

from governance.models import LogEntry

GENESIS = "0" * 64


def _entry_hash(index: int, generation_id: str, content_id: str, video_sha256: str, manifest_sha256: str,
                prev_hash: str) -> str:
    body = json.dumps([index, generation_id, content_id, video_sha256, manifest_sha256, prev_hash],
                      separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


def append(session: Session, generation_id: str, content_id: str, video_sha256: str, manifest_sha256: str) -> LogEntry:
    last = session.exec(select(LogEntry).order_by(LogEntry.index.desc()).limit(1)).first()  # type: ignore[attr-defined]
    index = 0 if last is None else last.index + 1
    prev = GENESIS if last is None else last.entry_hash
    entry = LogEntry(index=index, generation_id=generation_id, content_id=content_id, video_sha256=video_sha256,
                     manifest_sha256=manifest_sha256, prev_hash=prev,
                     entry_hash=_entry_hash(index, generation_id, content_id, video_sha256, manifest_sha256, prev))
    session.add(entry)
    return entry


def find(session: Session, content_id: str) -> LogEntry | None:
    return session.exec(select(LogEntry).where(LogEntry.content_id == content_id)).first()


def verify_chain(entries: Sequence[LogEntry]) -> bool:
    prev = GENESIS
    for i, e in enumerate(entries):
        if e.index != i or e.prev_hash != prev:
            return False
        if e.entry_hash != _entry_hash(e.index, e.generation_id, e.content_id, e.video_sha256, e.manifest_sha256, prev):
            return False
        prev = e.entry_hash
    return True


def all_entries(session: Session) -> Sequence[LogEntry]:
    return session.exec(select(LogEntry).order_by(LogEntry.index)).all()  # type: ignore[arg-type]
