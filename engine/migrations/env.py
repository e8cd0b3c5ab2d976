"""Alembic environment: the engine passes its own connection (see engine.schema)."""
from alembic import context

from engine.models import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
