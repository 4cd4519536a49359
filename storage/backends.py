"""Which backend a database setting names: a ``postgresql://`` URL or a SQLite file path.

Kept apart from storage/db.py so the backends, which import the interface from there, never
import the module that picks them (issue 24, item 2).
"""

from __future__ import annotations

from pathlib import Path

from storage.db import Store


def open_store(database: str | Path) -> Store:
    """The store for a database setting: a ``postgresql://`` URL or a SQLite file path."""
    text = str(database)
    if text.startswith(("postgresql://", "postgres://")):
        from storage.postgres import PostgresStore

        return PostgresStore(text)
    from storage.sqlite import SqliteStore

    return SqliteStore(Path(text))
