"""The daily quota's count reads its index alone: ``ix_generation_requester_created`` (generation: requester_id,
created_at; migration 0010) becomes ``ix_generation_quota`` (requester_id, created_at, state, claimed_by).

Every generation request counts the requester's generations of the day and, among them, those refused at the
precheck (blocked and never claimed: ``governance.generations.services.generations._COUNTS_SINCE``). With the old
index each counted row cost a lookup of the table row for its state and claim; with the state and the claim in
the index the count never leaves it (a covering index). Issue 12, ``python -m bench decisions --http``.

``ix_generation_requester_id`` (requester_id alone) goes: the new index begins with the requester and serves every
query by requester (a requester's generations newest first, the quota), and every decision inserts a generation
row, so each index it keeps up costs every decision a page write.

Revision ID: 0015
Revises: 0013 (the chain is 0009 -> 0010 -> 0012 -> 0011 -> 0014 -> 0013 -> 0015)
Created: 2026-11-29 23:05:00.000000
"""

from __future__ import annotations

from alembic import op

revision = '0015'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_generation_quota', 'generation', ['requester_id', 'created_at', 'state', 'claimed_by'],
                    unique=False)
    op.drop_index('ix_generation_requester_created', table_name='generation')
    op.drop_index('ix_generation_requester_id', table_name='generation')


def downgrade() -> None:
    op.create_index('ix_generation_requester_id', 'generation', ['requester_id'], unique=False)
    op.create_index('ix_generation_requester_created', 'generation', ['requester_id', 'created_at'], unique=False)
    op.drop_index('ix_generation_quota', table_name='generation')
