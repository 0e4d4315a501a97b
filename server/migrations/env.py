"""Alembic environment: the engine comes from ``config.attributes["engine"]``."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine

from sitewatch.server.db.tables import Base

config = context.config
engine = config.attributes.get("engine")
if not isinstance(engine, Engine):
    raise RuntimeError("run migrations through server.db.session.Database.migrate()")

with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    context.run_migrations()
