"""No secret ever lands in a log line or a database column."""

import logging

import pytest
from django.apps import apps
from django.db import connection

from tests.conftest import SANDBOX_ACCESS_KEY_SECRET

pytestmark = pytest.mark.django_db(transaction=True)


def every_stored_value():
    """Every value of every column of every table, as text."""
    with connection.cursor() as cursor:
        for model in apps.get_models():
            table = model._meta.db_table
            columns = [field.column for field in model._meta.concrete_fields]
            quoted = ", ".join(connection.ops.quote_name(column) for column in columns)
            cursor.execute(f"SELECT {quoted} FROM {connection.ops.quote_name(table)}")
            for row in cursor.fetchall():
                for value in row:
                    if value is not None:
                        yield str(value)


def test_a_full_flow_leaves_no_secret_in_logs_or_database(api, sandbox, caplog, settings):
    caplog.set_level(logging.DEBUG)
    settings.VOD_MAX_ATTEMPTS = 2
    created = api.post("/api/v1/videos/", {"title": "Clip", "file_name": "clip.mp4"},
                       format="json").json()
    refreshed = api.post(f"/api/v1/videos/{created['video_id']}/refresh/").json()
    image = api.post("/api/v1/images/", {"image_type": "default"}, format="json").json()
    media = api.post("/api/v1/attached-media/", {"business_type": "material",
                                                 "media_ext": "zip"}, format="json").json()
    sandbox.faults.add(action="*", code="InternalError")
    api.post("/api/v1/videos/", {"title": "Fails", "file_name": "clip.mp4"}, format="json")
    sandbox.faults.clear()
    settings.VOD_SANDBOX_ACCESS_KEY_SECRET = "wrong-secret-value-xyz"
    api.post("/api/v1/videos/", {"title": "Fails", "file_name": "clip.mp4"}, format="json")

    secrets = {SANDBOX_ACCESS_KEY_SECRET, "wrong-secret-value-xyz", api.token}
    for answer in (created, refreshed, image, media):
        secrets |= {answer["upload_auth"], answer["upload"]["access_key_secret"],
                    answer["upload"]["security_token"]}
    logged = caplog.text + "\n".join(str(record.__dict__) for record in caplog.records)
    stored = list(every_stored_value())
    assert stored and logged
    for secret in secrets:
        assert secret not in logged
        assert not any(secret in value for value in stored), "a secret is in the database"
