"""The SQL one credential costs: every statement on the issuing path, named, so that a query
creeping in (a third token lookup, a savepoint, a re-read) fails here rather than only
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
    """'SELECT knox_authtoken', 'INSERT uploads_videoupload', 'BEGIN', ..."""
    verb = sql.split(None, 1)[0].upper()
    table = re.search(r'(?:FROM|INTO|UPDATE)\s+"?(\w+)"?', sql)
    return f"{verb} {table.group(1)}" if table and verb != "BEGIN" else verb


@pytest.mark.parametrize("kind", CREATES)
def test_a_credential_costs_one_lookup_one_insert_and_one_transaction(kind, api, sandbox,
                                                                      settings):
    # The request path as deployed on PostgreSQL: the audit event is inserted unsealed and
    # this process's sealer chains it afterwards, on a connection of its own (not counted).
    settings.AUDIT_SEAL_INLINE = False
    path, body, table = CREATES[kind]
    assert api.post(path, body, format="json").status_code == 201  # warm: nothing cached

    with CaptureQueriesContext(connection) as queries:
        assert api.post(path, body, format="json").status_code == 201

    assert [statement(query["sql"]) for query in queries.captured_queries] == [
        "SELECT knox_authtoken",         # the token and its user (knox)
        "SELECT knox_authtoken",         # the user's other tokens, to sweep expired ones (knox)
        "SELECT uploads_uploadpolicy",   # the owner's upload policy (none here: no limits)
        f"INSERT {table}",               # the `requesting` row, committed before VOD is called
        "BEGIN",
        f"UPDATE {table}",               # what VOD answered
        "INSERT uploads_auditevent",     # unsealed: no lock, no read of the chain's head
        "COMMIT",
    ]
