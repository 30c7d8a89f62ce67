"""Each release's C2PA manifest store, kept under its manifest id for the Soft Binding Resolution API, with the
SB 942 latent disclosure it states (releasemanifest); remix lineage as edges between generations
(generationedge).

Videos released before this revision have no stored manifest: they resolve by watermark and fingerprint to
no manifest id (the resolution API returns only what it can serve) and verify as before.

Revision ID: 0011
Revises: 0012 (0012 landed first; numbers are handed out, the chain is the order)
Created: 2026-11-29 12:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = '0011'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('releasemanifest',
    sa.Column('generation_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('manifest_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('content_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('store', sa.LargeBinary(), nullable=False),
    sa.Column('provider', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('system', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('system_version', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('disclosed_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['generation_id'], ['generation.id'], ),
    sa.PrimaryKeyConstraint('generation_id')
    )
    with op.batch_alter_table('releasemanifest', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_releasemanifest_content_id'), ['content_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_releasemanifest_manifest_id'), ['manifest_id'], unique=True)

    op.create_table('generationedge',
    sa.Column('child_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('parent_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('relationship', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('withdrawn_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('withdrawn_reason', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.ForeignKeyConstraint(['child_id'], ['generation.id'], ),
    sa.ForeignKeyConstraint(['parent_id'], ['generation.id'], ),
    sa.PrimaryKeyConstraint('child_id', 'parent_id')
    )
    with op.batch_alter_table('generationedge', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_generationedge_parent_id'), ['parent_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('generationedge', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_generationedge_parent_id'))
    op.drop_table('generationedge')

    with op.batch_alter_table('releasemanifest', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_releasemanifest_manifest_id'))
        batch_op.drop_index(batch_op.f('ix_releasemanifest_content_id'))
    op.drop_table('releasemanifest')
