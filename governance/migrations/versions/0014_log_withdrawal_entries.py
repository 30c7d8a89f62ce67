"""The transparency log records what happens to a released video afterwards (logentry.kind, release_index,
origin_index, cause): taken down, an ancestor in its remix lineage withdrawn, restored. Those entries use
version 3 of the entry hash, which covers the new fields (governance.log.services.translog).

Existing entries are releases (``kind`` defaults to ``release``) and keep their hash versions 1 and 2.
Takedowns made before this revision were never logged: the audit asks for an entry only for takedowns made
after the log's first version 3 entry.

Downgrading refuses while the log holds version 3 entries: dropping their fields would leave hashes nobody can
recompute, in a log whose heads verifiers already hold.

Revision ID: 0014
Revises: 0011 (the chain is 0009 -> 0010 -> 0012 -> 0011 -> 0014 -> 0013)
Created: 2026-11-29 16:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = '0014'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('logentry', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(), server_default='release',
                                      nullable=False))
        batch_op.add_column(sa.Column('release_index', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('origin_index', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('cause', sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch_op.create_index(batch_op.f('ix_logentry_release_index'), ['release_index'], unique=False)


def downgrade() -> None:
    events = op.get_bind().execute(sa.text("SELECT COUNT(*) FROM logentry WHERE kind <> 'release'")).scalar_one()
    if events:
        raise RuntimeError(f"the transparency log holds {events} takedown/withdrawal entries (hash version 3), "
                           "which revision 0011 cannot store: downgrading would leave hashes nobody can recompute")
    with op.batch_alter_table('logentry', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_logentry_release_index'))
        batch_op.drop_column('cause')
        batch_op.drop_column('origin_index')
        batch_op.drop_column('release_index')
        batch_op.drop_column('kind')
