"""Issue 16: restrictions on how a likeness may be used (likenessrestriction: categories, phrases, a note, per
likeness, and whether its owner approves drafts), the owners' approvals of generations held by them
(restrictionapproval) and of drafts (draftapproval), and takedown notices from
anyone (notice), minors' accounts and their guardians (guardianship, guardianapproval).

Revision ID: 0012
Revises: 0010 (0009 on main before issue 12's 0010 joined the chain)
Created: 2026-11-29 12:39:57.007680
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = '0012'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('likenessrestriction',
    sa.Column('likeness_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('categories', sa.JSON(), nullable=False),
    sa.Column('phrases', sa.JSON(), nullable=False),
    sa.Column('note', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('draft_approval', sa.Boolean(), nullable=False),
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
    op.create_table('notice',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('token_hash', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('contact', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('on_behalf_of', sa.Enum('SELF', 'MINOR_IN_CARE', 'DECEASED_RELATIVE', 'UNABLE_TO_FILE',
                                      name='onbehalfof'), nullable=False),
    sa.Column('statement', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
    sa.Column('generation_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('state', sa.Enum('OPEN', 'TAKEN_DOWN', 'REJECTED', 'COUNTERED', 'RESTORED', name='noticestate'),
              nullable=False),
    sa.Column('facts', sa.JSON(), nullable=False),
    sa.Column('events', sa.JSON(), nullable=False),
    sa.Column('account_id', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('protective_likeness_id', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('counter_statement', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
    sa.Column('counter_deadline', sa.DateTime(timezone=True), nullable=True),
    sa.Column('decided_by', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], ),
    sa.ForeignKeyConstraint(['generation_id'], ['generation.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('notice', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_notice_generation_id'), ['generation_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_notice_state'), ['state'], unique=False)
        batch_op.create_index(batch_op.f('ix_notice_token_hash'), ['token_hash'], unique=True)
    op.create_table('guardianapproval',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('likeness_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('grantee_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('minor_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('guardian_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('grant_id', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['grantee_id'], ['account.id'], ),
    sa.ForeignKeyConstraint(['guardian_id'], ['account.id'], ),
    sa.ForeignKeyConstraint(['minor_id'], ['account.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('guardianapproval', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_guardianapproval_guardian_id'), ['guardian_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_guardianapproval_likeness_id'), ['likeness_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_guardianapproval_minor_id'), ['minor_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_guardianapproval_state'), ['state'], unique=False)

    op.create_table('guardianship',
    sa.Column('minor_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('guardian_id', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('marked_by', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['guardian_id'], ['account.id'], ),
    sa.ForeignKeyConstraint(['minor_id'], ['account.id'], ),
    sa.PrimaryKeyConstraint('minor_id')
    )
    with op.batch_alter_table('guardianship', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_guardianship_guardian_id'), ['guardian_id'], unique=False)
    op.create_table('draftapproval',
    sa.Column('generation_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('likeness_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('owner_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('decision', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['generation_id'], ['generation.id'], ),
    sa.ForeignKeyConstraint(['owner_id'], ['account.id'], ),
    sa.PrimaryKeyConstraint('generation_id', 'likeness_id')
    )
    with op.batch_alter_table('draftapproval', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_draftapproval_decision'), ['decision'], unique=False)
        batch_op.create_index(batch_op.f('ix_draftapproval_likeness_id'), ['likeness_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_draftapproval_owner_id'), ['owner_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('draftapproval', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_draftapproval_owner_id'))
        batch_op.drop_index(batch_op.f('ix_draftapproval_likeness_id'))
        batch_op.drop_index(batch_op.f('ix_draftapproval_decision'))

    op.drop_table('draftapproval')
    with op.batch_alter_table('guardianship', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_guardianship_guardian_id'))

    op.drop_table('guardianship')
    with op.batch_alter_table('guardianapproval', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_guardianapproval_state'))
        batch_op.drop_index(batch_op.f('ix_guardianapproval_minor_id'))
        batch_op.drop_index(batch_op.f('ix_guardianapproval_likeness_id'))
        batch_op.drop_index(batch_op.f('ix_guardianapproval_guardian_id'))

    op.drop_table('guardianapproval')
    with op.batch_alter_table('notice', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_notice_token_hash'))
        batch_op.drop_index(batch_op.f('ix_notice_state'))
        batch_op.drop_index(batch_op.f('ix_notice_generation_id'))

    op.drop_table('notice')
    if op.get_bind().dialect.name == "postgresql":  # the enum types the table made
        for name in ("onbehalfof", "noticestate"):
            sa.Enum(name=name).drop(op.get_bind(), checkfirst=True)
    with op.batch_alter_table('restrictionapproval', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_restrictionapproval_owner_id'))
        batch_op.drop_index(batch_op.f('ix_restrictionapproval_likeness_id'))
        batch_op.drop_index(batch_op.f('ix_restrictionapproval_decision'))

    op.drop_table('restrictionapproval')
    op.drop_table('likenessrestriction')
