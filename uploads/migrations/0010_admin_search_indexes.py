"""Indexes for the staff admin's searches and filters (PostgreSQL only).

- Substring search on upload titles and file names: `title__icontains` is
  `UPPER(title::text) LIKE UPPER('%term%')` on PostgreSQL, which a trigram GIN index on that
  exact expression serves (pg_trgm, a trusted extension since PostgreSQL 13).
- The audit trail by actor label (system actors, deleted users) and by date range.

The indexes live only in the database, not in the models' state: SQLite has neither GIN nor
pg_trgm, and its tables are small enough to scan, so on SQLite this migration does nothing.
Built CONCURRENTLY (outside a transaction): a live table of millions of rows keeps taking
writes while they are built.
"""

from django.db import migrations

_UPLOAD_TABLES = {"video": "uploads_videoupload", "image": "uploads_imageupload",
                  "attached": "uploads_attachedmediaupload"}
_INDEXES = [
    *(f"{prefix}_{column}_trgm ON {table} USING gin ((UPPER({column}::text)) gin_trgm_ops)"
      for prefix, table in _UPLOAD_TABLES.items() for column in ("title", "file_name")),
    "audit_actor_label_seq ON uploads_auditevent (actor_label, sequence DESC)",
    "audit_created_at ON uploads_auditevent (created_at)",
]


def _create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for index in _INDEXES:
        schema_editor.execute(f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {index}")


def _drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for index in _INDEXES:
        schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {index.split()[0]}")
    # The extension stays: other objects may have come to depend on it.


class Migration(migrations.Migration):

    atomic = False  # CREATE INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [("uploads", "0009_identities_and_token_use")]

    operations = [migrations.RunPython(_create, _drop, atomic=False, elidable=False)]
