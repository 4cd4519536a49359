"""Storage: the one SQLite writer, migrations, and one module of SQL per table."""
