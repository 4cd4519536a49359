"""Storage: one ``Store`` over SQLite or PostgreSQL, migrations for both, SQL per table.

SQLite: one writer connection with group commits (one hub process per file). PostgreSQL:
several hub processes on one database, with leases, advisory locks and LISTEN/NOTIFY.
"""
