"""Restrictions on how a likeness may be used (likenessrestriction: categories, phrases, a note, per likeness)
and the owners' approvals of generations held by them (restrictionapproval), issue 16.

Revision ID: 0012
Revises: 0009
Created: 2026-11-29 12:39:57.007680
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = '0012'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('likenessrestriction',
    sa.Column('likeness_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('categories', sa.JSON(), nullable=False),
    sa.Column('phrases', sa.JSON(), nullable=False),
    sa.Column('note', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['likeness_id'], ['likeness.id'], ),
    sa.PrimaryKeyConstraint('likeness_id')
    )
    op.create_table('restrictionapproval',
    sa.Column('generation_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('likeness_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('owner_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('reasons', sa.JSON(), nullable=False),
    sa.Column('rules', sa.JSON(), nullable=False),
    sa.Column('decision', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['generation_id'], ['generation.id'], ),
    sa.ForeignKeyConstraint(['owner_id'], ['account.id'], ),
    sa.PrimaryKeyConstraint('generation_id', 'likeness_id')
    )
    with op.batch_alter_table('restrictionapproval', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_restrictionapproval_decision'), ['decision'], unique=False)
        batch_op.create_index(batch_op.f('ix_restrictionapproval_likeness_id'), ['likeness_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_restrictionapproval_owner_id'), ['owner_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('restrictionapproval', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_restrictionapproval_owner_id'))
        batch_op.drop_index(batch_op.f('ix_restrictionapproval_likeness_id'))
        batch_op.drop_index(batch_op.f('ix_restrictionapproval_decision'))

    op.drop_table('restrictionapproval')
    op.drop_table('likenessrestriction')
