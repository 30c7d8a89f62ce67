"""Alembic environment for ConsentGate: run by :func:`governance.db.migrate` on the connection it
passes in ``config.attributes["connection"]`` (there is no alembic.ini)."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

from governance import models  # noqa: F401  (registers the tables)

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through governance.db.migrate(engine), which passes the connection")
context.configure(connection=connection, target_metadata=SQLModel.metadata, render_as_batch=True,
                  compare_type=True)
with context.begin_transaction():
    context.run_migrations()
