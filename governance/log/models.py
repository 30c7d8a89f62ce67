"""The transparency log's tables: entries (a hash chain), Merkle nodes (RFC 9162) and signed tree heads."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from governance.columns import timestamp_field


class LogEntry(SQLModel, table=True):
    """The transparency log: an append-only hash chain of released content and of what happened to it later
    (taken down, an ancestor withdrawn, restored), and the leaves of its Merkle tree (:class:`LogNode`).

    ``kind`` is ``release`` (hash versions 1 and 2) or one of the later events (hash version 3, revision
    0014): ``takedown``, ``ancestor_withdrawn``, ``restore``. An event names the release entry it concerns
    (``release_index``, whose content id and hashes it repeats), for a lineage withdrawal the release entry of
    the ancestor it came from (``origin_index``), and a ``cause`` from a fixed vocabulary (never free text:
    the log is public)."""

    index: int = Field(primary_key=True)
    generation_id: str = Field(index=True)
    content_id: str = Field(index=True)
    video_sha256: str
    manifest_sha256: str
    prev_hash: str
    entry_hash: str
    created_at: datetime = timestamp_field()
    # 1: the hash covers neither the version nor created_at (entries made before revision 0006);
    # 2: it covers both (governance.log.services.translog.entry_hash)
    hash_version: int = Field(default=1, sa_column_kwargs={"server_default": "1"})
    # 3 (revision 0014): the hash also covers these (governance.log.services.translog.entry_hash)
    kind: str = Field(default="release", sa_column_kwargs={"server_default": "release"})
    release_index: int | None = Field(default=None, index=True)
    origin_index: int | None = None
    cause: str | None = None


class LogNode(SQLModel, table=True):
    """A complete, aligned subtree of the transparency log's Merkle tree (RFC 9162): ``level`` 0 holds the
    leaf hashes, level ``l`` the node over leaves ``[idx * 2**l, (idx + 1) * 2**l)``. Written once, when
    the subtree fills up, so any root, inclusion or consistency proof takes O(log n) lookups."""

    level: int = Field(primary_key=True)
    idx: int = Field(primary_key=True)
    digest: str  # hex SHA-256


class LogHead(SQLModel, table=True):
    """A signed tree head the service issued (:class:`provenance.treehead.SignedTreeHead`), kept so an
    audit can show that today's log still extends every head it ever signed: entries removed from its
    end, or rewritten, no longer give a root the service signed."""

    id: int | None = Field(default=None, primary_key=True)
    tree_size: int = Field(index=True, sa_type=sa.BigInteger)  # type: ignore[call-overload]
    root_hash: str
    timestamp: str  # as signed (ISO 8601, UTC)
    alg: str
    signature: str  # base64
    certificate_chain_pem: str = Field(sa_type=sa.Text)  # type: ignore[call-overload]
    created_at: datetime = timestamp_field()
