"""The transparency log: an append-only record of released content, verifiable by anyone.

Each entry commits to the previous one (a hash chain: editing or deleting a past entry breaks every later
hash; :func:`verify_chain`), and the entries are the leaves of a Merkle tree (RFC 9162; the leaf data is
the 32-byte entry hash). The tree lets a verifier check, with a handful of hashes and
:mod:`provenance.merkle`, that an entry is in the log (:func:`inclusion`) and that today's log extends
the one it saw before (:func:`consistency`), without downloading the log. The hashes of complete subtrees
are stored as they fill up (:class:`~governance.log.models.LogNode`), so proofs cost O(log n) lookups.

Every tree head the service signs is kept (:class:`~governance.log.models.LogHead`, :func:`keep_head`), and
:func:`audit` recomputes everything from the entries: the chain, every stored node, every signed head
(its signature, and that today's log still gives its root), and every released generation's entry.

The entry hash, version 2 (entries made since revision 0006)::

    SHA-256(JSON [2, index, generation_id, content_id, video_sha256, manifest_sha256, prev_hash, created_at])

compact JSON (``separators=(",", ":")``), ``created_at`` as :func:`timestamp` writes it
(``2026-11-29T09:26:07.123456+00:00``). Version 1 (older entries) is the same without the leading ``2``
and without ``created_at``, so their dates are covered only by :func:`audit`'s ordering checks.

Releases are written in version 2. What happens to a released video afterwards is an entry of its own
(:func:`append_event`, revision 0014), in version 3, which adds the entry's kind, the release entry it
concerns, the ancestor's release entry for a lineage withdrawal, and the cause::

    SHA-256(JSON [3, index, kind, generation_id, content_id, video_sha256, manifest_sha256, prev_hash,
                  created_at, release_index, origin_index, cause])

``kind`` is one of :data:`EVENT_KINDS`, ``cause`` one of :data:`CAUSES`, ``origin_index`` ``null`` unless the
cause is ``lineage``; ``content_id``, ``video_sha256`` and ``manifest_sha256`` repeat the release entry's. So
the log alone proves that a released file was later withdrawn: the release entry and the event entry, each
with its inclusion proof under one signed head, and the event naming the release's index and file hash.
``tests/governance/test_log_format.py`` freezes all three versions, and the leaf encoding, as test vectors.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlmodel import Session, func, select

from governance.columns import iso, utcnow
from governance.db import logging_events_since
from governance.errors import InvalidInput, LogDamaged, NotFound
from governance.generations.models import GenerationState
from governance.log.models import LogEntry, LogHead, LogNode
from provenance import merkle

if TYPE_CHECKING:
    from provenance.treehead import SignedTreeHead

GENESIS = "0" * 64
ENTRY_HASH_VERSION = 2  # what new release entries use
EVENT_HASH_VERSION = 3  # what entries of the kinds below use
RELEASE = "release"
#: What an entry after a release records: the video taken down, something up its remix lineage withdrawn
#: while it stays up, or a takedown reversed (a takedown notice decided ``restore``: cause ``notice`` for its video,
#: ``lineage`` for each descendant whose "ancestor withdrawn" mark that restore lifted).
EVENT_KINDS = ("takedown", "ancestor_withdrawn", "restore")
#: Why, in a fixed vocabulary (the log is public: never a name or a free-text reason): one of the video's
#: owners (its requester, a person in it, a guardian), an administrator, a takedown notice, its remix lineage
#: (``origin_index`` names the ancestor's release), a likeness withdrawn from it (a grant revoked).
CAUSES = ("owner", "admin", "notice", "lineage", "likeness_withdrawn")
#: How far clocks may disagree (hosts appending to one log, the signer's clock) before dates are reported.
CLOCK_SKEW = dt.timedelta(seconds=60)
_APPEND_LOCK = 0x436F6E74  # a PostgreSQL advisory lock key: one release appends at a time


@dataclass(frozen=True)
class TreeHead:
    size: int
    root_hash: str  # hex

    def to_dict(self) -> dict[str, object]:
        return {"tree_size": self.size, "root_hash": self.root_hash}


def _entry_hash(index: int, generation_id: str, content_id: str, video_sha256: str, manifest_sha256: str,
                prev_hash: str) -> str:
    """Version 1 of the entry hash (entries made before revision 0006): ``created_at`` is not covered."""
    body = json.dumps([index, generation_id, content_id, video_sha256, manifest_sha256, prev_hash],
                      separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


def timestamp(when: dt.datetime) -> str:
    """An entry's ``created_at`` as version 2 hashes it and :func:`entry_view` shows it: UTC, microseconds
    always written (SQLite hands back naive datetimes, which are UTC here by construction)."""
    aware = when if when.tzinfo else when.replace(tzinfo=dt.UTC)
    return aware.astimezone(dt.UTC).isoformat(timespec="microseconds")


def entry_hash(version: int, index: int, generation_id: str, content_id: str, video_sha256: str,
               manifest_sha256: str, prev_hash: str, created_at: dt.datetime, *, kind: str = RELEASE,
               release_index: int | None = None, origin_index: int | None = None, cause: str | None = None) -> str:
    """The entry hash in ``version`` (1, 2 or 3; see the module docstring). Versions 1 and 2 are releases
    only; version 3 is an event (``kind`` in :data:`EVENT_KINDS`) and needs ``release_index`` and ``cause``.

    Raises ValueError for an unknown version, or fields the version cannot hold."""
    if version in (1, 2) and (kind != RELEASE or release_index is not None or origin_index is not None
                              or cause is not None):
        raise ValueError(f"entry hash version {version} holds releases only, not a {kind!r} entry")
    if version == 1:
        return _entry_hash(index, generation_id, content_id, video_sha256, manifest_sha256, prev_hash)
    if version == 2:
        body = json.dumps([2, index, generation_id, content_id, video_sha256, manifest_sha256, prev_hash,
                           timestamp(created_at)], separators=(",", ":"))
        return hashlib.sha256(body.encode()).hexdigest()
    if version != 3:
        raise ValueError(f"unknown entry hash version {version}")
    _check_event(kind, release_index, origin_index, cause)
    body = json.dumps([3, index, kind, generation_id, content_id, video_sha256, manifest_sha256, prev_hash,
                       timestamp(created_at), release_index, origin_index, cause], separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


def _check_event(kind: str, release_index: int | None, origin_index: int | None, cause: str | None) -> None:
    """Raises ValueError unless the fields make a version 3 entry (see the module docstring)."""
    if kind not in EVENT_KINDS or cause not in CAUSES or release_index is None or \
            (origin_index is None) != (cause != "lineage"):
        raise ValueError(f"a version 3 entry is one of {EVENT_KINDS} with a release index and one of {CAUSES} "
                         f"(an origin index for lineage only), got kind {kind!r}, release index {release_index}, "
                         f"origin index {origin_index}, cause {cause!r}")


def recompute(e: LogEntry) -> str | None:
    """What ``e.entry_hash`` should be, from its fields (None for a version this code does not know, or
    fields that version cannot hold)."""
    try:
        return entry_hash(e.hash_version, e.index, e.generation_id, e.content_id, e.video_sha256,
                          e.manifest_sha256, e.prev_hash, e.created_at, kind=e.kind, release_index=e.release_index,
                          origin_index=e.origin_index, cause=e.cause)
    except ValueError:
        return None


def leaf_hash(entry: LogEntry) -> bytes:
    """The entry's leaf in the Merkle tree: ``H(0x00 || entry_hash)``."""
    return merkle.leaf_hash(bytes.fromhex(entry.entry_hash))


def append(session: Session, generation_id: str, content_id: str, video_sha256: str, manifest_sha256: str) -> LogEntry:
    """Add a release entry (and the Merkle nodes it completes) in the caller's transaction. On PostgreSQL an
    advisory lock held to the end of that transaction makes concurrent releases append one at a time."""
    return _append(session, ENTRY_HASH_VERSION, generation_id, content_id, video_sha256, manifest_sha256)


def append_event(session: Session, generation_id: str, kind: str, cause: str, *,
                 origin_generation_id: str | None = None) -> LogEntry | None:
    """Add a version 3 entry saying that released generation ``generation_id`` was taken down, marked (an
    ancestor withdrawn) or restored (``kind``, one of :data:`EVENT_KINDS`), and why (``cause``, one of
    :data:`CAUSES`; ``origin_generation_id``, the withdrawn ancestor, for ``lineage`` only), in the caller's
    transaction. It repeats the release entry's content id and hashes and names its index. Returns None, and
    adds nothing, for a generation the log never released (nothing public to withdraw).

    Raises ValueError for a kind or cause outside the vocabulary, or an origin given without ``lineage`` (or
    missing with it): a caller's bug, never a request's; LogDamaged when the origin's release entry is gone."""
    _check_event(kind, 0, 0 if cause == "lineage" else None, cause)  # before any read: a caller's bug stops here
    if (origin_generation_id is None) != (cause != "lineage"):
        raise ValueError(f"an origin generation goes with the cause 'lineage' only, got {origin_generation_id!r} "
                         f"with {cause!r}")
    release = release_entry(session, generation_id)
    if release is None:
        return None
    origin_index = None
    if origin_generation_id is not None:
        origin = release_entry(session, origin_generation_id)
        if origin is None:  # a remix is made only from a released parent: its entry was lost
            raise LogDamaged(f"the withdrawn ancestor {origin_generation_id} has no release entry in the "
                             "transparency log")
        origin_index = origin.index
    return _append(session, EVENT_HASH_VERSION, generation_id, release.content_id, release.video_sha256,
                   release.manifest_sha256, kind=kind, release_index=release.index, origin_index=origin_index,
                   cause=cause)


def _append(session: Session, version: int, generation_id: str, content_id: str, video_sha256: str,
            manifest_sha256: str, *, kind: str = RELEASE, release_index: int | None = None,
            origin_index: int | None = None, cause: str | None = None) -> LogEntry:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _APPEND_LOCK})
    last = session.exec(select(LogEntry).order_by(LogEntry.index.desc()).limit(1)).first()  # type: ignore[attr-defined]
    index = 0 if last is None else last.index + 1
    prev = GENESIS if last is None else last.entry_hash
    now = utcnow()  # what the database keeps: microseconds, in UTC
    entry = LogEntry(index=index, generation_id=generation_id, content_id=content_id, video_sha256=video_sha256,
                     manifest_sha256=manifest_sha256, prev_hash=prev, created_at=now, hash_version=version,
                     kind=kind, release_index=release_index, origin_index=origin_index, cause=cause,
                     entry_hash=entry_hash(version, index, generation_id, content_id, video_sha256,
                                           manifest_sha256, prev, now, kind=kind, release_index=release_index,
                                           origin_index=origin_index, cause=cause))
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
        raise LogDamaged(f"the transparency log's Merkle node ({level}, {idx}) is missing")
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
    """An entry as the API shows it: every field its hash covers (version 3 adds ``release_index``,
    ``origin_index`` and ``cause``), and ``kind`` (``release`` for versions 1 and 2)."""
    view: dict[str, object] = {
        "index": e.index, "kind": e.kind, "generation_id": e.generation_id, "content_id": e.content_id,
        "video_sha256": e.video_sha256, "manifest_sha256": e.manifest_sha256, "prev_hash": e.prev_hash,
        "entry_hash": e.entry_hash, "hash_version": e.hash_version, "created_at": timestamp(e.created_at)}
    if e.hash_version >= EVENT_HASH_VERSION:
        view.update(release_index=e.release_index, origin_index=e.origin_index, cause=e.cause)
    return view


def find(session: Session, content_id: str) -> LogEntry | None:
    """The release entry of ``content_id`` (None: never released here)."""
    return session.exec(select(LogEntry).where(LogEntry.content_id == content_id, LogEntry.kind == RELEASE)
                        .order_by(LogEntry.index).limit(1)).first()  # type: ignore[arg-type]


def release_entry(session: Session, generation_id: str) -> LogEntry | None:
    """The release entry of ``generation_id`` (None: never released here)."""
    return session.exec(select(LogEntry).where(LogEntry.generation_id == generation_id, LogEntry.kind == RELEASE)
                        .order_by(LogEntry.index).limit(1)).first()  # type: ignore[arg-type]


def events_of(session: Session, release: LogEntry) -> Sequence[LogEntry]:
    """The entries after ``release`` that concern it (taken down, ancestor withdrawn, restored), oldest first."""
    return session.exec(select(LogEntry).where(LogEntry.release_index == release.index)
                        .order_by(LogEntry.index)).all()  # type: ignore[arg-type]


def verify_chain(entries: Sequence[LogEntry]) -> bool:
    return not _chain_problems(entries)


def verify_tree(session: Session) -> bool:
    """Whether the stored Merkle nodes give the root of the entries as they are now (:func:`audit` checks
    every node)."""
    leaves = [leaf_hash(e) for e in all_entries(session)]
    return merkle.root_of(leaves).hex() == head(session).root_hash


def all_entries(session: Session) -> Sequence[LogEntry]:
    return session.exec(select(LogEntry).order_by(LogEntry.index)).all()  # type: ignore[arg-type]


# -- signed tree heads ---------------------------------------------------------------------------------------


def keep_head(session: Session, signed: SignedTreeHead) -> LogHead:
    """Keep a head the service signed (in the caller's transaction)."""
    row = LogHead(tree_size=signed.tree_size, root_hash=signed.root_hash, timestamp=signed.timestamp,
                  alg=signed.alg, signature=signed.signature, certificate_chain_pem=signed.certificate_chain_pem)
    session.add(row)
    return row


def latest_head(session: Session) -> LogHead | None:
    """The kept head of the largest log (the newest of those)."""
    return session.exec(select(LogHead).order_by(LogHead.tree_size.desc(), LogHead.id.desc())  # type: ignore[attr-defined, union-attr]
                        .limit(1)).first()


def kept_head(row: LogHead) -> SignedTreeHead:
    """The signed tree head ``row`` keeps, as it was signed (its signature is not checked here)."""
    from provenance.treehead import SignedTreeHead

    return SignedTreeHead(row.tree_size, row.root_hash, row.timestamp, row.alg, row.signature,
                          row.certificate_chain_pem)


def departs_from(session: Session, row: LogHead) -> str | None:
    """Why today's log does not extend the signed head ``row`` (None when it does): O(log n) lookups, so
    the service checks it before signing a new head."""
    n = size(session)
    if row.tree_size > n:
        return (f"the service signed a head of {row.tree_size} entries at {row.timestamp}, but the log holds {n}: "
                "entries were removed from its end")
    try:
        root = merkle.root(_subtree(session), row.tree_size).hex()
    except LogDamaged as e:  # a stored node is missing
        return f"the log's first {row.tree_size} entries cannot be hashed: {e.detail}"
    if root != row.root_hash:
        return (f"the log's first {row.tree_size} entries no longer give the root the service signed at "
                f"{row.timestamp}: the log was rewritten")
    return None


# -- the audit -------------------------------------------------------------------------------------------------


@dataclass
class LogAudit:
    """What :func:`audit` found; ``problems`` name each entry, node, head or generation at fault."""

    tree_size: int
    root_hash: str  # recomputed from the entries
    hash_chain_intact: bool
    merkle_tree_intact: bool
    signed_heads: int
    signed_heads_intact: bool
    latest_signed_head: dict[str, object] | None
    releases: int
    releases_intact: bool
    problems: list[str] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "intact": self.intact}


def audit(session: Session, trust_anchors_pem: Iterable[bytes] = (), *, skew: dt.timedelta = CLOCK_SKEW,
          videos_dir: Path | None = None) -> LogAudit:
    """Recompute the log from its entries and hold everything stored against it:

    - the hash chain: every entry's hash from its fields (for version 2 its ``created_at`` too), each
      entry linked to the one before, no index missing; dates never running backwards by more than ``skew``;
    - every stored Merkle node against the tree built from the entries, and no node beyond the entries;
    - every signed head kept: its signature (under one of ``trust_anchors_pem`` when given), that the log
      still holds at least its size and gives its root, that the newest one's consistency proof from the
      stored nodes verifies, and that no entry is dated after the first head that included it;
    - every generation released here has its entry (same content id and file hash), and every entry a
      generation released here; every generation's state is one this service knows;
    - with ``videos_dir``, every released file still served (not taken down) hashes to its entry's
      ``video_sha256``: a file replaced on disk would otherwise be served under the logged hash.
    """
    entries = list(all_entries(session))
    chain_problems = _chain_problems(entries, skew)
    leaves = [leaf_hash(e) for e in entries]
    heads = list(session.exec(select(LogHead).order_by(LogHead.tree_size, LogHead.id)).all())  # type: ignore[arg-type]
    nodes, roots = _recompute(leaves, {h.tree_size for h in heads})
    tree_problems = _node_problems(session, nodes, len(leaves))
    head_problems = _head_problems(session, entries, heads, roots, list(trust_anchors_pem), skew,
                                   stored_nodes_ok=not tree_problems)
    release_problems, releases = _release_problems(session, entries, videos_dir)
    latest = latest_head(session)
    return LogAudit(
        tree_size=len(leaves), root_hash=merkle.root_of(leaves).hex(), hash_chain_intact=not chain_problems,
        merkle_tree_intact=not tree_problems, signed_heads=len(heads), signed_heads_intact=not head_problems,
        latest_signed_head=None if latest is None else {"tree_size": latest.tree_size, "root_hash": latest.root_hash,
                                                        "timestamp": latest.timestamp},
        releases=releases, releases_intact=not release_problems,
        problems=chain_problems + tree_problems + head_problems + release_problems)


def _chain_problems(entries: Sequence[LogEntry], skew: dt.timedelta = CLOCK_SKEW) -> list[str]:
    problems = []
    prev: LogEntry | None = None
    for i, e in enumerate(entries):
        expected_index = 0 if prev is None else prev.index + 1
        if e.index > expected_index:
            problems.append(f"entries {expected_index}..{e.index - 1} are missing from the log")
        elif e.index < expected_index:
            problems.append(f"entry {e.index} is out of order")
        if e.prev_hash != (GENESIS if i == 0 else entries[i - 1].entry_hash):
            problems.append(f"entry {e.index} does not link to the entry before it (prev_hash)")
        if recompute(e) != e.entry_hash:
            problems.append(f"entry {e.index}'s fields no longer give its hash (hash version {e.hash_version}): "
                            "it was edited")
        if prev is not None and _utc(e.created_at) < _utc(prev.created_at) - skew:
            problems.append(f"entry {e.index} is dated {timestamp(e.created_at)}, before entry {prev.index} "
                            f"({timestamp(prev.created_at)}): a date was edited")
        prev = e
    return problems


def _utc(when: dt.datetime) -> dt.datetime:
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def _recompute(leaves: Sequence[bytes], sizes: set[int]) -> tuple[dict[tuple[int, int], bytes], dict[int, bytes]]:
    """Every complete subtree of the tree over ``leaves`` by (level, idx), and the root of each prefix
    whose size is in ``sizes``: one pass, keeping the frontier of complete subtrees."""
    nodes: dict[tuple[int, int], bytes] = {}
    roots: dict[int, bytes] = {0: merkle.EMPTY_ROOT}
    frontier: list[tuple[int, bytes]] = []  # (level, digest), levels strictly decreasing
    for i, leaf in enumerate(leaves):
        level, idx, digest = 0, i, leaf
        nodes[(0, i)] = leaf
        while frontier and frontier[-1][0] == level:
            digest = merkle.node_hash(frontier.pop()[1], digest)
            level, idx = level + 1, idx // 2
            nodes[(level, idx)] = digest
        frontier.append((level, digest))
        if i + 1 in sizes:
            root = frontier[-1][1]
            for _, left in reversed(frontier[:-1]):
                root = merkle.node_hash(left, root)
            roots[i + 1] = root
    return nodes, roots


def _node_problems(session: Session, expected: dict[tuple[int, int], bytes], n: int) -> list[str]:
    problems = []
    stored = {(node.level, node.idx): node.digest for node in session.exec(select(LogNode)).all()}
    for (level, idx), digest in sorted(stored.items()):
        want = expected.get((level, idx))
        if want is None:
            problems.append(f"Merkle node ({level}, {idx}) covers entries beyond the log's {n}: entries were removed")
        elif want.hex() != digest:
            problems.append(f"Merkle node ({level}, {idx}) differs from the hash of the entries under it: "
                            "it was edited")
    missing = sorted(set(expected) - set(stored))
    if missing:
        problems.append(f"{len(missing)} Merkle node(s) are missing, the first ({missing[0][0]}, {missing[0][1]})")
    return problems


def _head_problems(session: Session, entries: Sequence[LogEntry], heads: Sequence[LogHead], roots: dict[int, bytes],
                   anchors: list[bytes], skew: dt.timedelta, *, stored_nodes_ok: bool) -> list[str]:
    from provenance.errors import SigningError

    problems = []
    n = len(entries)
    first_dated = 0  # entries before this index were compared with an earlier head's time
    for row in heads:
        what = f"the head signed at {row.timestamp} ({row.tree_size} entries)"
        try:
            _verify_head(kept_head(row), anchors)
        except SigningError as err:
            problems.append(f"{what} does not verify: {err}")
        if row.tree_size > n:
            problems.append(f"{what} is larger than the log, which holds {n}: entries were removed from its end")
            continue
        if roots.get(row.tree_size, b"").hex() != row.root_hash:
            problems.append(f"the log's first {row.tree_size} entries no longer give the root of {what}: "
                            "the log was rewritten")
        try:
            signed_at = dt.datetime.fromisoformat(row.timestamp)
        except ValueError:
            problems.append(f"{what} has an unreadable time")
            continue
        for entry in entries[first_dated:row.tree_size]:
            if _utc(entry.created_at) > signed_at + dt.timedelta(seconds=1) + skew:  # heads are signed to the second
                problems.append(f"entry {entry.index} is dated {timestamp(entry.created_at)}, after {what} that "
                                "included it: a date was edited")
        first_dated = max(first_dated, row.tree_size)
    latest = heads[-1] if heads else None
    if latest is not None and 0 < latest.tree_size <= n and stored_nodes_ok:
        # what an outside auditor holding that head would check, from the stored nodes alone
        proof = consistency(session, latest.tree_size, n)
        if not merkle.verify_consistency(latest.tree_size, n, bytes.fromhex(latest.root_hash),
                                         bytes.fromhex(str(proof["root_hash"])),
                                         [bytes.fromhex(h) for h in proof["consistency_proof"]]):  # type: ignore[attr-defined]
            problems.append(f"the consistency proof from the newest signed head ({latest.tree_size} entries) to "
                            f"today's log ({n}) does not verify")
    return problems


def _verify_head(head: SignedTreeHead, anchors: list[bytes]) -> None:
    """The head's signature, under one of ``anchors`` (each a root certificate) when any are given."""
    from provenance.errors import SigningError

    if not anchors:
        head.verify()
        return
    errors = []
    for anchor in anchors:
        try:
            head.verify(anchor)
            return
        except SigningError as e:
            errors.append(str(e))
    raise SigningError("; ".join(dict.fromkeys(errors)))


def _release_problems(session: Session, entries: Sequence[LogEntry], videos_dir: Path | None = None
                      ) -> tuple[list[str], int]:
    problems = []
    known = {s.value for s in GenerationState}
    # plain columns, not the model: a state edited to a value the enum does not know must be reported, not crash
    rows = session.execute(sa.text("SELECT id, state, content_id, video_sha256, released_at, taken_down_at "
                                   "FROM generation")).all()
    for gid, state, *_ in rows:
        if str(state) not in known and str(state).lower() not in known:
            problems.append(f"generation {gid} has the state {state!r}, which no release or block writes")
    released = {r[0]: r for r in rows if r[4] is not None}
    logged = {e.generation_id: e for e in entries if e.kind == RELEASE}
    for gid, _state, content_id, video_sha, released_at, taken_down_at in sorted(
            released.values(), key=lambda r: (str(r[4]), r[0])):
        e = logged.get(gid)
        if e is None:
            problems.append(f"generation {gid} (content id {content_id}) was released at "
                            f"{iso(_as_datetime(released_at))} but is missing from the transparency log")
            continue
        if (e.content_id, e.video_sha256) != (content_id, video_sha):
            problems.append(f"log entry {e.index} does not match generation {gid}'s content id and file hash")
        if videos_dir is not None and taken_down_at is None:
            path = videos_dir / f"{gid}.mp4"
            if not path.is_file():
                problems.append(f"the released file of generation {gid} (log entry {e.index}) is missing")
            elif file_sha256(path) != e.video_sha256:
                problems.append(f"the released file of generation {gid} no longer hashes to log entry {e.index}'s "
                                "video_sha256: it was replaced or altered on disk")
    for e in entries:
        if e.kind == RELEASE and e.generation_id not in released:
            problems.append(f"log entry {e.index} names generation {e.generation_id}, which was not released here")
    return problems + _event_problems(entries, released, logging_events_since(session)), len(released)


def _event_problems(entries: Sequence[LogEntry], released: dict[str, Any],
                    logged_since: dt.datetime | None = None) -> list[str]:
    """Every version 3 entry names an earlier release entry of its generation and repeats its content id and
    hashes (and, for a lineage withdrawal, an earlier release as its origin); the last takedown or restore
    logged for a generation is its state here; and once the log records takedowns (revision 0014:
    ``logged_since``, :func:`governance.db.logging_events_since`, or without that marker the first version 3
    entry), every generation taken down since has its entry, whether or not any entry was logged yet (older
    takedowns were never logged: they are not asked for)."""
    problems = []
    by_index = {e.index: e for e in entries}
    down: dict[str, tuple[bool, int]] = {}  # generation -> (taken down, by entry)
    first_event: dt.datetime | None = None
    for e in entries:
        if e.kind == RELEASE:
            continue
        first_event = first_event or _utc(e.created_at)
        rel = by_index.get(e.release_index) if e.release_index is not None else None
        if rel is None or rel.kind != RELEASE or rel.index >= e.index or rel.generation_id != e.generation_id or \
                (rel.content_id, rel.video_sha256, rel.manifest_sha256) != (e.content_id, e.video_sha256,
                                                                              e.manifest_sha256):
            problems.append(f"log entry {e.index} ({e.kind}) does not name an earlier release entry of generation "
                            f"{e.generation_id} with its content id and hashes")
        origin = by_index.get(e.origin_index) if e.origin_index is not None else None
        if e.origin_index is not None and (origin is None or origin.kind != RELEASE or origin.index >= e.index):
            problems.append(f"log entry {e.index} ({e.kind}) names entry {e.origin_index} as the withdrawn ancestor's "
                            "release, which is not an earlier release entry")
        if e.kind in ("takedown", "restore"):
            down[e.generation_id] = (e.kind == "takedown", e.index)
    for gid, (is_down, index) in sorted(down.items()):
        row = released.get(gid)
        if row is not None and is_down != (row[5] is not None):
            problems.append(f"log entry {index} says generation {gid} was "
                            f"{'taken down' if is_down else 'restored'}, but it is "
                            f"{'up' if is_down else 'taken down'} here")
    since = min((t for t in (logged_since, first_event) if t is not None), default=None)
    for gid, row in sorted(released.items()):
        taken_down_at = _as_datetime(row[5])
        if taken_down_at is not None and gid not in down and since is not None and _utc(taken_down_at) >= since:
            problems.append(f"generation {gid} was taken down at {iso(taken_down_at)} but the transparency log has "
                            "no takedown entry for it")
    return problems


def _as_datetime(value: object) -> dt.datetime | None:
    """A timestamp column read as plain SQL: a datetime on PostgreSQL, ISO text on SQLite."""
    if value is None or isinstance(value, dt.datetime):
        return value
    return dt.datetime.fromisoformat(str(value))


def file_sha256(path: Path) -> str:
    """The hex SHA-256 of a file, read in 1 MiB chunks: what a log entry's ``video_sha256`` holds."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
