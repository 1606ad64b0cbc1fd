"""Alembic environment: keelml runs migrations on a connection it already holds."""

from alembic import context

from keelml.core.catalog_schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
