"""Decisions and templates at scale (issue 12): two composite indexes for what every decision filters on, and the
reference face images move out of the template rows into the encrypted file store.

- ``ix_generation_requester_created`` (generation: requester_id, created_at): the daily quota's count;
- ``ix_grant_likeness_grantee`` (grant: likeness_id, grantee_id): consent's grant lookup.

Every likeness row whose template holds a ``reference`` image gets it written to the store bound to the database
(:mod:`governance.references`: ``var/references/<id>.ref``, AES-GCM, key ``var/keys/reference.key``) and keeps the
template without it (embeddings, backend, bins: ~3 KB instead of up to ~500 KB). Figures' rows just drop theirs
(a figure's photo is never composited). A database holding references that is migrated by a process that did not
bind a store (only a bare engine does that) is refused with a message, never left half moved. Downgrade puts
the likenesses' images back into the rows (a figure gets a 1 x 1 grey stand-in). The rows are read in batches of
200 by id, so memory stays small whatever the count.

Revision ID: 0010
Revises: 0009
Created: 2026-11-29 13:00:00.000000
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import numpy as np
import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

_BATCH = 200


def _members(blob: bytes) -> dict[str, np.ndarray] | None:
    """The arrays of a template blob, or None for one that is not a template (left as it is: the code that reads
    it reports it, as before this migration)."""
    try:
        with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except (OSError, ValueError, EOFError, KeyError):
        return None


def _blob(members: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, **members)  # type: ignore[arg-type]
    return buf.getvalue()


def _rows(conn: sa.Connection, table: str) -> Iterator[Any]:
    """(id, template) of every row of ``table``, in batches by id."""
    last = ""
    while True:
        batch = conn.execute(sa.text(f'SELECT id, template FROM "{table}" WHERE id > :last ORDER BY id LIMIT {_BATCH}'),
                             {"last": last}).all()
        if not batch:
            return
        yield from batch
        last = batch[-1][0]


def _move_out(conn: sa.Connection) -> None:
    from governance.references import store_of

    store = store_of(conn)
    for table, keep in (("likeness", True), ("figure", False)):
        for rid, template in _rows(conn, table):
            members = _members(bytes(template))
            if members is None or "reference" not in members:
                continue
            reference = members.pop("reference")
            if keep:
                if store is None:
                    raise RuntimeError("likenesses hold reference images that migration 0010 moves into the "
                                       "encrypted file store: run `consentgate init` (it binds the data dir's store)")
                store.put(rid, np.ascontiguousarray(reference))
            conn.execute(sa.text(f'UPDATE "{table}" SET template = :t WHERE id = :id'),
                         {"t": _blob(members), "id": rid})


def _move_in(conn: sa.Connection) -> None:
    from governance.references import store_of

    store = store_of(conn)
    for rid, template in _rows(conn, "likeness"):
        members = _members(bytes(template))
        if members is None or "reference" in members:
            continue
        if store is None or not store.has(rid):
            raise RuntimeError(f"likeness {rid} keeps its reference image in a file store this downgrade cannot "
                               "read: downgrade through `python -m governance.db` with the data dir's store bound")
        members["reference"] = store.get(rid)
        conn.execute(sa.text('UPDATE likeness SET template = :t WHERE id = :id'), {"t": _blob(members), "id": rid})
    # figures' photos were dropped (nothing composites them); code before 0010 needs a reference member to load a
    # template: a 1 x 1 grey one stands in
    for rid, template in list(_rows(conn, "figure")):
        members = _members(bytes(template))
        if members is not None and "reference" not in members:
            members["reference"] = np.full((1, 1, 3), 128, np.uint8)
            conn.execute(sa.text('UPDATE figure SET template = :t WHERE id = :id'), {"t": _blob(members), "id": rid})


def upgrade() -> None:
    op.create_index('ix_generation_requester_created', 'generation', ['requester_id', 'created_at'], unique=False)
    op.create_index('ix_grant_likeness_grantee', 'grant', ['likeness_id', 'grantee_id'], unique=False)
    _move_out(op.get_bind())


def downgrade() -> None:
    _move_in(op.get_bind())
    op.drop_index('ix_grant_likeness_grantee', table_name='grant')
    op.drop_index('ix_generation_requester_created', table_name='generation')
