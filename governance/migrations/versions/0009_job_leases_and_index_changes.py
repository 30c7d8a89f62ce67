"""Generation jobs carry a lease (claimed_by, lease_until) and the time they were last handed to the broker
(enqueued_at), so that a dead worker's job is taken over by another and a job the broker never got is sent
again; the in-memory indexes follow a change feed (indexchange) instead of re-listing every id.

Existing likenesses and fingerprints need no rows: a process starting loads them all once, then follows the
feed from the counter's value it read.

Revision ID: 0009
Revises: 0006
Created: 2026-12-01 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('indexchange',
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('kind', 'version')
    )
    with op.batch_alter_table('generation', schema=None) as batch_op:
        batch_op.add_column(sa.Column('claimed_by', sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch_op.add_column(sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('enqueued_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('generation', schema=None) as batch_op:
        batch_op.drop_column('enqueued_at')
        batch_op.drop_column('lease_until')
        batch_op.drop_column('claimed_by')

    op.drop_table('indexchange')
