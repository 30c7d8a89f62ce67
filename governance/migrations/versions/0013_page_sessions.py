"""The pages' sign-in sessions (pagesession): one row per signed-in browser, ended by signing out.

Revision ID: 0013
Revises: 0014 (the chain is 0009 -> 0010 -> 0012 -> 0011 -> 0014 -> 0013)
Created: 2026-11-29 16:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = '0013'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('pagesession',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('account_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('token_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('pagesession', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pagesession_account_id'), ['account_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('pagesession', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_pagesession_account_id'))
    op.drop_table('pagesession')
