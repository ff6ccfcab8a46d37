"""uploads/statements.py writes and reads rows exactly as the ORM would, on SQLite and
PostgreSQL: what it stores is what the ORM reads back, and what it reads is what the ORM
returns."""

import uuid
from datetime import timedelta

import pytest
from django.db import DatabaseError
from django.utils import timezone
from knox.models import AuthToken

from tests.factories import UserFactory, VideoUploadFactory
from uploads import statements
from uploads.models import AuditEvent, ImageUpload, UploadStatus, VideoUpload

pytestmark = pytest.mark.django_db


def test_insert_stores_every_field_as_the_orm_reads_it():
    owner = UserFactory()
    row = VideoUpload(owner=owner, title="Clip ✓", file_name="clip.mp4", file_size=12,
                      tags="a,b", cate_id=7, extend={"k": ["v", 1]}, status=UploadStatus.REQUESTING)

    statements.insert(row)

    assert row._state.adding is False and row._state.db == "default"
    assert row.created_at is not None and row.updated_at is not None  # auto_now(_add) applied
    stored = VideoUpload.objects.get(pk=row.pk)
    assert (stored.owner_id, stored.title, stored.file_size, stored.tags, stored.cate_id,
            stored.extend, stored.status, stored.vod_id) == (
        owner.pk, "Clip ✓", 12, "a,b", 7, {"k": ["v", 1]}, UploadStatus.REQUESTING, None)
    assert stored.created_at == row.created_at


def test_insert_hands_back_a_database_generated_key():
    first = statements.insert(AuditEvent(sequence=1, created_at=timezone.now(), action="a",
                                         outcome="success", data={"n": 1}, hash="0" * 64))
    second = statements.insert(AuditEvent(sequence=2, created_at=timezone.now(), action="a",
                                          outcome="success", hash="1" * 64))

    assert isinstance(first.pk, int) and second.pk > first.pk
    assert AuditEvent.objects.get(pk=first.pk).data == {"n": 1}
    assert AuditEvent.objects.get(pk=second.pk).data == {}


def test_insert_of_a_duplicate_key_fails_like_the_orm():
    row = VideoUploadFactory()
    with pytest.raises(DatabaseError):
        statements.insert(VideoUpload(id=row.pk, owner=row.owner, title="again"))


def test_update_writes_only_the_named_fields_and_refreshes_auto_now():
    row = VideoUploadFactory(status=UploadStatus.REQUESTING, vod_id=None, title="Before")
    before = VideoUpload.objects.get(pk=row.pk).updated_at
    row.status, row.vod_id, row.title = UploadStatus.UPLOADING, "v" * 32, "Not saved"

    statements.update(row, ["status", "vod_id", "updated_at"])

    stored = VideoUpload.objects.get(pk=row.pk)
    assert (stored.status, stored.vod_id, stored.title) == (UploadStatus.UPLOADING, "v" * 32,
                                                            "Before")
    assert stored.updated_at > before


def test_update_of_a_missing_row_raises():
    ghost = ImageUpload(id=uuid.uuid4(), owner=UserFactory(), image_type="default",
                        image_ext="png")
    with pytest.raises(DatabaseError, match="was not updated"):
        statements.update(ghost, ["status"])


def test_select_with_related_returns_what_the_orm_returns():
    user = UserFactory(first_name="Ada")
    token, _ = AuthToken.objects.create(user, expiry=timedelta(hours=1))
    AuthToken.objects.create(UserFactory())  # another key: not matched

    found = statements.select_with_related(AuthToken, "user", "token_key", token.token_key)
    expected = AuthToken.objects.select_related("user").get(token_key=token.token_key)

    assert len(found) == 1
    row = found[0]
    assert row._state.adding is False
    for field in AuthToken._meta.concrete_fields:
        assert getattr(row, field.attname) == getattr(expected, field.attname), field.name
    for field in type(user)._meta.concrete_fields:
        assert getattr(row.user, field.attname) == getattr(expected.user, field.attname), field.name
    assert row.expiry.tzinfo is not None  # converted like the ORM on SQLite too


def test_select_with_related_finds_nothing_for_an_unknown_value():
    assert statements.select_with_related(AuthToken, "user", "token_key", "nope") == []
