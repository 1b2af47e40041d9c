"""Alembic environment of the forexgrid schema.

forexgrid runs Alembic from code (:meth:`forexgrid.storage.database.Database.upgrade`), which
passes an open connection in ``config.attributes["connection"]``; the migrations then run in
that connection's transaction. For developers, ``sqlalchemy.url`` works too, e.g. to write a
new revision::

    from alembic import command
    from forexgrid.storage.database import alembic_config

    cfg = alembic_config()
    cfg.set_main_option("sqlalchemy.url", "sqlite:////tmp/dev.db")
    command.upgrade(cfg, "head")
    command.revision(cfg, "add a column", autogenerate=True, rev_id="0002")

Logging is never configured here: only forexgrid's fronts configure logging.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool

from forexgrid.storage.tables import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things; batch mode copies the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    """Emit the SQL to stdout (``alembic upgrade --sql``) without a database."""
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run the migrations on the given connection, or on ``sqlalchemy.url``."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url"), poolclass=NullPool)
    try:
        with engine.connect() as connection:
            _run(connection)
            connection.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
