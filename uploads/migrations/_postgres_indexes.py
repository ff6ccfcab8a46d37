"""Indexes that live only in PostgreSQL, built CONCURRENTLY (migrations 0010, 0011, 0013).

Not a migration (the loader skips modules whose name starts with "_"): the one operation
those migrations share. On other databases it does nothing; their tables are small enough
to scan. CONCURRENTLY keeps a live table of millions of rows taking writes while an index is
built, and cannot run in a transaction: the migration must say `atomic = False`.
"""

from django.db import migrations


def concurrently(indexes: list[str], *, first: tuple[str, ...] = ()) -> migrations.RunPython:
    """Create each of `indexes` ("name ON table (...)") on PostgreSQL after running the
    statements `first`; dropping them reverses it (`first` is left in place)."""

    def create(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        for statement in first:
            schema_editor.execute(statement)
        for index in indexes:
            schema_editor.execute(f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {index}")

    def drop(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        for index in indexes:
            schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {index.split()[0]}")

    return migrations.RunPython(create, drop, atomic=False, elidable=False)
