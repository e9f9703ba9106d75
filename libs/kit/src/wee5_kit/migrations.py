"""Alembic per service: the migrations folder lives in the service package, the version table
in the service's own schema, and concurrent runs (two replicas, a Job and a pod) serialize on an
advisory lock.

A service's `migrations/env.py` is one call: `run_env(Base.metadata)`.
"""

from __future__ import annotations

import asyncio

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from wee5_kit.queries import create_schema, lock_schema_migrations


def alembic_config(package: str, database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", f"{package}:migrations")
    config.set_main_option("sqlalchemy.url", database_url)
    return config


def upgrade(package: str, database_url: str, revision: str = "head") -> None:
    """Migrates the service's schema to `revision`. Synchronous: call it outside an event loop
    (or through `asyncio.to_thread`)."""
    command.upgrade(alembic_config(package, database_url), revision)


def run_env(metadata: MetaData) -> None:
    """The body of every service's `migrations/env.py`."""
    schema = metadata.schema
    if schema is None:
        raise ValueError("service metadata must name its schema")
    url = context.config.get_main_option("sqlalchemy.url")
    if url is None:
        raise ValueError("sqlalchemy.url is not set")

    def run(connection: Connection) -> None:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            version_table_schema=schema,
            include_schemas=True,
            include_name=lambda name, type_, _parent: type_ != "schema" or name == schema,
        )
        with context.begin_transaction():
            context.run_migrations()

    async def run_async() -> None:
        engine = create_async_engine(url, poolclass=NullPool)
        try:
            async with engine.connect() as connection:
                await lock_schema_migrations(connection, schema)
                await create_schema(connection, schema)
                await connection.run_sync(run)
                await connection.commit()
        finally:
            await engine.dispose()

    asyncio.run(run_async())


def revision(package: str, database_url: str, message: str, rev_id: str | None = None) -> None:
    """Autogenerates a new revision of `package` against a database migrated to head."""
    config = alembic_config(package, database_url)
    command.upgrade(config, "head")
    command.revision(config, message=message, autogenerate=True, rev_id=rev_id)


if __name__ == "__main__":
    import argparse
    import os

    parser = argparse.ArgumentParser(description="Create a migration revision for one service")
    parser.add_argument("package", help="e.g. wee5_xp")
    parser.add_argument("message")
    parser.add_argument("--rev-id", help="e.g. 0002; alembic makes a random one otherwise")
    args = parser.parse_args()
    revision(args.package, os.environ["WEE5_DATABASE_URL"], args.message, args.rev_id)
