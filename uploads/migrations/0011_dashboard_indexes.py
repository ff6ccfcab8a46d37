"""Indexes for the staff service dashboard (uploads/services/dashboard.py; PostgreSQL only).

- `*_created_cover`: the upload tables by `created_at`, carrying `status`, `owner_id` and
  `credentials_issued`, so the dashboard's windows (48 hours, 30 days) are counted from the
  index alone. Rows are not stored in `created_at` order once they are updated, and the
  plain `*_created` index would send every row of a window to the table for its status.
- `*_in_flight_expiry`: rows still `uploading`, by credential expiry: the stuck count reads
  only them (a few in a healthy service), however large the table.
- `vodevent_rejected_received`: refused callbacks by time, for the last seven days.

Like 0010 the indexes live only in the database, not in the models' state: SQLite has no
INCLUDE, and its tables are small enough to scan. Built CONCURRENTLY (outside a
transaction) so a live table keeps taking writes while they are built.
"""

from django.db import migrations

from ._postgres_indexes import concurrently

_UPLOAD_TABLES = {"video": "uploads_videoupload", "image": "uploads_imageupload",
                  "attached": "uploads_attachedmediaupload"}
_INDEXES = [
    *(f"{prefix}_created_cover ON {table} (created_at) "
      "INCLUDE (status, owner_id, credentials_issued)"
      for prefix, table in _UPLOAD_TABLES.items()),
    # status INCLUDEd although fixed by the predicate: PostgreSQL serves a query from the
    # index alone only if every column it names is stored in the index.
    *(f"{prefix}_in_flight_expiry ON {table} (credential_expires_at) INCLUDE (status) "
      "WHERE status = 'uploading'"
      for prefix, table in _UPLOAD_TABLES.items()),
    "vodevent_rejected_received ON uploads_vodevent (received_at) INCLUDE (reason) "
    "WHERE status = 'rejected'",
]


class Migration(migrations.Migration):

    atomic = False  # CREATE INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [("uploads", "0010_admin_search_indexes")]

    operations = [concurrently(_INDEXES)]
