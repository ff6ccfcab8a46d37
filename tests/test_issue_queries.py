"""The SQL one credential costs: every statement on the issuing path, named, so that a query
creeping back in (a second token lookup, a savepoint, a re-read) fails here rather than only
in bench/issue_throughput.py's figures."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

pytestmark = pytest.mark.django_db(transaction=True)

CREATES = {
    "video": ("/api/v1/videos/", {"title": "Clip", "file_name": "clip.mp4"},
              "uploads_videoupload"),
    "image": ("/api/v1/images/", {"image_type": "default"}, "uploads_imageupload"),
    "attached_media": ("/api/v1/attached-media/",
                       {"business_type": "watermark", "media_ext": "png"},
                       "uploads_attachedmediaupload"),
}


def statement(sql: str) -> str:
    """'SELECT knox_authtoken', 'INSERT uploads_videoupload', 'BEGIN', 'lock chain', ..."""
    if "uploads_audit_chain_head_locked" in sql:
        return "lock chain, SELECT its head"
    verb = sql.split(None, 1)[0].upper()
    table = re.search(r'(?:FROM|INTO|UPDATE)\s+"?(\w+)"?', sql)
    return f"{verb} {table.group(1)}" if table and verb != "BEGIN" else verb


@pytest.mark.parametrize("kind", CREATES)
def test_a_credential_costs_one_lookup_one_insert_and_one_transaction(kind, api, sandbox):
    path, body, table = CREATES[kind]
    assert api.post(path, body, format="json").status_code == 201  # warm: nothing cached

    with CaptureQueriesContext(connection) as queries:
        assert api.post(path, body, format="json").status_code == 201

    # PostgreSQL: the advisory lock and the head in one round trip. SQLite: BEGIN IMMEDIATE
    # holds the write lock already.
    head = ("lock chain, SELECT its head" if connection.vendor == "postgresql"
            else "SELECT uploads_auditevent")
    assert [statement(query["sql"]) for query in queries.captured_queries] == [
        "SELECT knox_authtoken",         # the token and its user, one query
        f"INSERT {table}",               # the `requesting` row, committed before VOD is called
        "BEGIN",
        f"UPDATE {table}",               # what VOD answered
        head,                            # the chain's head, under its lock
        "INSERT uploads_auditevent",
        "COMMIT",
    ]
