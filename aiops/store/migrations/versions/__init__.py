"""Alembic revisions of the durable store, oldest first; alembic finds them by file, not by import."""
