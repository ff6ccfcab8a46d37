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

from ._postgres_indexes import concurrently

_UPLOAD_TABLES = {"video": "uploads_videoupload", "image": "uploads_imageupload",
                  "attached": "uploads_attachedmediaupload"}
_INDEXES = [
    *(f"{prefix}_{column}_trgm ON {table} USING gin ((UPPER({column}::text)) gin_trgm_ops)"
      for prefix, table in _UPLOAD_TABLES.items() for column in ("title", "file_name")),
    "audit_actor_label_seq ON uploads_auditevent (actor_label, sequence DESC)",
    "audit_created_at ON uploads_auditevent (created_at)",
]


class Migration(migrations.Migration):

    atomic = False  # CREATE INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [("uploads", "0009_identities_and_token_use")]

    # The extension stays when the indexes are dropped: other objects may depend on it.
    operations = [concurrently(_INDEXES, first=("CREATE EXTENSION IF NOT EXISTS pg_trgm",))]
