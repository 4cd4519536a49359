"""The one ordered list of schema migrations, for both backends.

Never edit a migration that has shipped: add the next number. Each step is written once in the
SQL both backends share; PostgreSQL runs the same script through ``postgres_ddl`` (column types
and the byte-order collation SQLite uses), or its own text where the two differ (``postgres``).
The appliers are storage/migrate_sqlite.py (sqlite-utils) and storage/migrate_postgres.py;
tests/test_schema_parity.py checks both schemas hold the same tables and columns.

The building blocks are in storage/migrations/step.py; the steps, in order, in
storage/migrations/early.py (0001-0012) and storage/migrations/later.py (0013 on: a new step is
appended there).
"""

from __future__ import annotations

from storage.migrations.early import EARLY
from storage.migrations.later import LATER
from storage.migrations.step import Step, postgres_ddl

__all__ = ["STEPS", "Step", "postgres_ddl"]

STEPS: list[Step] = [*EARLY, *LATER]
