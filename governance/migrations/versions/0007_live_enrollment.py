"""Live enrollment: every likeness gets a verification level and a status; live challenges, disputes and the
protected public-figure gallery get their tables.

Existing likenesses become ``photo`` and ``active``: protective until their owners verify live, and each
owner is notified once. Their mode and grants are kept, dormant, and apply again after the upgrade.

Revision ID: 0007
Revises: 0006
Created: 2026-11-29 09:27:26.865087
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

_ENUMS = {
    "verification": ("PHOTO", "LIVE"),
    "likenessstatus": ("ACTIVE", "DISPUTED", "PENDING_REVIEW"),
}
NOTICE = ("Your likeness {lid} was enrolled from photos, which do not prove the face is yours. It now only protects "
          "your face: it blocks every video showing it, yours included, and its grants and mode are suspended. "
          "Verify it live to use and share it again: request a pose challenge (POST /v1/likenesses/challenges) and "
          "upload a selfie video performing it to POST /v1/likenesses/{lid}/verification.")


def upgrade() -> None:
    bind = op.get_bind()
    op.create_table('figure',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('aliases', sa.JSON(), nullable=False),
    sa.Column('backend', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('template', sa.LargeBinary(), nullable=False),
    sa.Column('embeddings', sa.Integer(), nullable=False),
    sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('challenge',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('account_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('poses', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('outcome', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('likeness_id', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('challenge', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_challenge_account_id'), ['account_id'], unique=False)

    op.create_table('dispute',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('kind', sa.Enum('DOUBLE_CLAIM', 'PUBLIC_FIGURE', 'IDENTITY', name='disputekind'), nullable=False),
    sa.Column('state', sa.Enum('OPEN', 'RESOLVED', name='disputestate'), nullable=False),
    sa.Column('likeness_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('claimant_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('holder_likeness_id', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('holder_id', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('figure_id', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('distance', sa.Float(), nullable=True),
    sa.Column('detail', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('outcome', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=True),
    sa.Column('resolved_by', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['claimant_id'], ['account.id'], ),
    sa.ForeignKeyConstraint(['holder_id'], ['account.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('dispute', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dispute_holder_likeness_id'), ['holder_likeness_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_dispute_likeness_id'), ['likeness_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_dispute_state'), ['state'], unique=False)

    # Existing rows are photo enrollments, undisputed. (PostgreSQL: ADD COLUMN does not make the enum types.)
    if bind.dialect.name == "postgresql":
        for name, values in _ENUMS.items():
            sa.Enum(*values, name=name).create(bind, checkfirst=True)
    # SQLite adds the columns in place: rebuilding the table would trip over the grants that reference it
    with op.batch_alter_table('likeness', schema=None, recreate='never') as batch_op:
        batch_op.add_column(sa.Column('verification', sa.Enum(*_ENUMS["verification"], name='verification',
                                                              create_type=False),
                                      nullable=False, server_default='PHOTO'))
        batch_op.add_column(sa.Column('status', sa.Enum(*_ENUMS["likenessstatus"], name='likenessstatus',
                                                        create_type=False),
                                      nullable=False, server_default='ACTIVE'))
        batch_op.add_column(sa.Column('verified_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('figure_id', sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch_op.add_column(sa.Column('identity', sa.JSON(), nullable=False, server_default="{}"))
        batch_op.create_index(batch_op.f('ix_likeness_figure_id'), ['figure_id'], unique=False)

    likeness = sa.table("likeness", sa.column("id", sa.String), sa.column("owner_id", sa.String))
    notification = sa.table(
        "notification", sa.column("id", sa.String), sa.column("account_id", sa.String), sa.column("kind", sa.String),
        sa.column("message", sa.String), sa.column("likeness_id", sa.String),
        sa.column("created_at", sa.DateTime(timezone=True)))
    now = datetime.now(UTC)
    rows = [{"id": f"ntf_{secrets.token_hex(8)}", "account_id": owner, "kind": "likeness:verify:needed",
             "message": NOTICE.format(lid=lid), "likeness_id": lid, "created_at": now}
            for lid, owner in bind.execute(sa.select(likeness.c.id, likeness.c.owner_id)).all()]
    if rows:
        op.bulk_insert(notification, rows)


def downgrade() -> None:
    # Before this revision every likeness could consent. A claim still under review must not become usable by
    # anyone else: it goes to only_me and its grants are revoked. (Its owner could use it again: the old rule.)
    op.execute("UPDATE \"grant\" SET revoked_at = CURRENT_TIMESTAMP WHERE revoked_at IS NULL AND likeness_id IN "
               "(SELECT id FROM likeness WHERE status <> 'ACTIVE')")
    op.execute("UPDATE likeness SET mode = 'ONLY_ME' WHERE status <> 'ACTIVE'")
    op.execute("DELETE FROM notification WHERE kind = 'likeness:verify:needed'")
    # SQLite drops the columns in place (3.35+): rebuilding the table would trip over the grants that reference it
    with op.batch_alter_table('likeness', schema=None, recreate='never') as batch_op:
        batch_op.drop_index(batch_op.f('ix_likeness_figure_id'))
        batch_op.drop_column('identity')
        batch_op.drop_column('figure_id')
        batch_op.drop_column('verified_at')
        batch_op.drop_column('status')
        batch_op.drop_column('verification')

    with op.batch_alter_table('dispute', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dispute_state'))
        batch_op.drop_index(batch_op.f('ix_dispute_likeness_id'))
        batch_op.drop_index(batch_op.f('ix_dispute_holder_likeness_id'))

    op.drop_table('dispute')
    with op.batch_alter_table('challenge', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_challenge_account_id'))

    op.drop_table('challenge')
    op.drop_table('figure')
    if op.get_bind().dialect.name == "postgresql":  # PostgreSQL keeps enum types
        for name in ("verification", "likenessstatus", "disputekind", "disputestate"):
            sa.Enum(name=name).drop(op.get_bind(), checkfirst=True)
