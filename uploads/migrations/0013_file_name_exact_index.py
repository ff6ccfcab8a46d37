"""An index for the admin's exact file-name lookup (uploads/admin_search.py; PostgreSQL only).

A pasted file name such as `IMG_2231.MOV` is looked up exactly before it is searched as a
substring: its trigrams (`img`, `.mo`, `mov`) are in most rows, and the trigram index has
to read them all (71 ms of SQL at 800,000 videos, bench/admin_scale.py), while an exact
match is one btree probe. Like 0010 the index lives only in the database; built
CONCURRENTLY so a live table keeps taking writes.
"""

from django.db import migrations

from ._postgres_indexes import concurrently

_INDEXES = [f"{prefix}_file_name ON {table} (file_name)" for prefix, table in (
    ("video", "uploads_videoupload"), ("image", "uploads_imageupload"),
    ("attached", "uploads_attachedmediaupload"))]


class Migration(migrations.Migration):

    atomic = False  # CREATE INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [("uploads", "0012_upload_policies")]

    operations = [concurrently(_INDEXES)]
