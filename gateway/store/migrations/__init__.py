"""Alembic migrations for the store; applied by ``Store.migrate()`` at start-up."""
