"""The transparency log: an append-only record of released content, verifiable by anyone.

Each entry commits to the previous one (a hash chain: editing or deleting a past entry breaks every later
hash; :func:`verify_chain`), and the entries are the leaves of a Merkle tree (RFC 9162; the leaf data is
the 32-byte entry hash). The tree lets a verifier check, with a handful of hashes and
:mod:`provenance.merkle`, that an entry is in the log (:func:`inclusion`) and that today's log extends
the one it saw before (:func:`consistency`), without downloading the log. The hashes of complete subtrees
are stored as they fill up (:class:`~governance.models.LogNode`), so proofs cost O(log n) lookups.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import Session, func, select

from governance.errors import InvalidInput, NotFound
from governance.models import LogEntry, LogNode, iso
from provenance import merkle

GENESIS = "0" * 64
_APPEND_LOCK = 0x436F6E74  # a PostgreSQL advisory lock key: one release appends at a time


@dataclass(frozen=True)
class TreeHead:
    size: int
    root_hash: str  # hex

    def to_dict(self) -> dict[str, object]:
        return {"tree_size": self.size, "root_hash": self.root_hash}


def _entry_hash(index: int, generation_id: str, content_id: str, video_sha256: str, manifest_sha256: str,
                prev_hash: str) -> str:
    body = json.dumps([index, generation_id, content_id, video_sha256, manifest_sha256, prev_hash],
                      separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


def leaf_hash(entry: LogEntry) -> bytes:
    """The entry's leaf in the Merkle tree: ``H(0x00 || entry_hash)``."""
    return merkle.leaf_hash(bytes.fromhex(entry.entry_hash))


def append(session: Session, generation_id: str, content_id: str, video_sha256: str, manifest_sha256: str) -> LogEntry:
    """Add an entry (and the Merkle nodes it completes) in the caller's transaction. On PostgreSQL an
    advisory lock held to the end of that transaction makes concurrent releases append one at a time."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _APPEND_LOCK})
    last = session.exec(select(LogEntry).order_by(LogEntry.index.desc()).limit(1)).first()  # type: ignore[attr-defined]
    index = 0 if last is None else last.index + 1
    prev = GENESIS if last is None else last.entry_hash
    entry = LogEntry(index=index, generation_id=generation_id, content_id=content_id, video_sha256=video_sha256,
                     manifest_sha256=manifest_sha256, prev_hash=prev,
                     entry_hash=_entry_hash(index, generation_id, content_id, video_sha256, manifest_sha256, prev))
    session.add(entry)
    for node in nodes_completed_by(index, leaf_hash(entry), lambda level, idx: _node(session, level, idx)):
        session.add(node)
    return entry


def nodes_completed_by(index: int, leaf: bytes, stored: Callable[[int, int], bytes]) -> list[LogNode]:
    """The nodes leaf ``index`` adds: itself, then every subtree it completes (its left siblings come from
    ``stored(level, idx)``). Migration 0002 keeps its own frozen copy of this rule for existing logs."""
    nodes = [LogNode(level=0, idx=index, digest=leaf.hex())]
    level, idx, digest = 0, index, leaf
    while idx % 2 == 1:  # a right child: its parent is complete now
        digest = merkle.node_hash(stored(level, idx - 1), digest)
        level, idx = level + 1, idx // 2
        nodes.append(LogNode(level=level, idx=idx, digest=digest.hex()))
    return nodes


def _node(session: Session, level: int, idx: int) -> bytes:
    node = session.get(LogNode, (level, idx))
    if node is None:
        raise RuntimeError(f"the transparency log's Merkle node ({level}, {idx}) is missing")
    return bytes.fromhex(node.digest)


def _subtree(session: Session) -> Callable[[int, int], bytes]:
    """Stored subtree hashes by leaf range, each read once per call site (a proof and its root share nodes)."""
    seen: dict[tuple[int, int], bytes] = {}

    def subtree(start: int, end: int) -> bytes:
        level = (end - start).bit_length() - 1
        key = (level, start >> level)
        if key not in seen:
            seen[key] = _node(session, *key)
        return seen[key]

    return subtree


def size(session: Session) -> int:
    return int(session.exec(select(func.count()).select_from(LogEntry)).one())


def head(session: Session) -> TreeHead:
    """The log's current size and Merkle root."""
    n = size(session)
    return TreeHead(n, merkle.root(_subtree(session), n).hex())


def _tree_size(session: Session, tree_size: int | None) -> int:
    n = size(session)
    if tree_size is None:
        return n
    if not 1 <= tree_size <= n:
        raise InvalidInput(f"tree_size must be between 1 and the log's size {n}, got {tree_size}")
    return tree_size


def inclusion(session: Session, index: int, tree_size: int | None = None) -> dict[str, object]:
    """Entry ``index``, its leaf hash and its audit path in the tree of ``tree_size`` entries (default:
    the whole log), with that tree's root: what :func:`provenance.merkle.verify_inclusion` takes."""
    n = _tree_size(session, tree_size)
    entry = session.get(LogEntry, index) if 0 <= index < size(session) else None  # no index beyond a BIGINT
    if entry is None:
        raise NotFound(f"no log entry {index}")
    if index >= n:
        raise InvalidInput(f"entry {index} is not in the first {n} entries")
    sub = _subtree(session)
    return {**entry_view(entry), "leaf_hash": leaf_hash(entry).hex(), "tree_size": n,
            "root_hash": merkle.root(sub, n).hex(),
            "inclusion_proof": [h.hex() for h in merkle.inclusion_proof(sub, index, n)]}


def consistency(session: Session, old_size: int, new_size: int | None = None) -> dict[str, object]:
    """The proof that the log's first ``old_size`` entries are the tree a verifier saw before, with both
    roots: what :func:`provenance.merkle.verify_consistency` takes."""
    n = _tree_size(session, new_size)
    if not 1 <= old_size <= n:
        raise InvalidInput(f"the old size must be between 1 and {n}, got {old_size}")
    sub = _subtree(session)
    return {"old_size": old_size, "old_root_hash": merkle.root(sub, old_size).hex(), "tree_size": n,
            "root_hash": merkle.root(sub, n).hex(),
            "consistency_proof": [h.hex() for h in merkle.consistency_proof(sub, old_size, n)]}


def entry_view(e: LogEntry) -> dict[str, object]:
    return {"index": e.index, "generation_id": e.generation_id, "content_id": e.content_id,
            "video_sha256": e.video_sha256, "manifest_sha256": e.manifest_sha256, "prev_hash": e.prev_hash,
            "entry_hash": e.entry_hash, "created_at": iso(e.created_at)}


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


def verify_tree(session: Session) -> bool:
    """Whether the stored Merkle nodes give the root of the entries as they are now (an audit)."""
    leaves = [leaf_hash(e) for e in all_entries(session)]
    return merkle.root_of(leaves).hex() == head(session).root_hash


def all_entries(session: Session) -> Sequence[LogEntry]:
    return session.exec(select(LogEntry).order_by(LogEntry.index)).all()  # type: ignore[arg-type]
