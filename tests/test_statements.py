"""uploads/statements.py writes and reads rows exactly as the ORM would, on SQLite and
PostgreSQL: what it stores is what the ORM reads back, and what it reads is what the ORM
returns."""

import uuid
from datetime import timedelta

import pytest
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.utils import timezone
from knox.models import AuthToken

from tests.factories import UserFactory, VideoUploadFactory
from uploads import audit, statements
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


# --- statements.atomic: one transaction in few round trips --------------------------------
# Outside any transaction it pipelines on PostgreSQL and is transaction.atomic() on SQLite;
# these tests commit for real (transactional_db) so both paths are the ones production runs.


def _audit_count(action: str) -> int:
    return AuditEvent.objects.filter(action=action).count()


@pytest.mark.django_db(transaction=True)
def test_atomic_commits_the_update_and_the_audit_event_together():
    row = VideoUploadFactory(status=UploadStatus.REQUESTING, vod_id=None)
    row.status, row.vod_id = UploadStatus.UPLOADING, "a" * 32

    with statements.atomic():
        assert (statements._pipelined(connection) is not None) == (
            connection.vendor == "postgresql")
        statements.update(row, ["status", "vod_id", "updated_at"])
        event = audit.record("test.atomic", target=row)

    assert VideoUpload.objects.get(pk=row.pk).vod_id == "a" * 32
    assert isinstance(event.pk, int)  # the generated key is read once the results arrive
    assert AuditEvent.objects.get(pk=event.pk).target_vod_id == "a" * 32
    assert audit.verify_chain().ok
    assert statements._pipelined(connection) is None and connection.get_autocommit()


@pytest.mark.django_db(transaction=True)
def test_atomic_rolls_everything_back_when_the_block_raises():
    row = VideoUploadFactory(status=UploadStatus.REQUESTING, vod_id=None)
    row.vod_id = "b" * 32

    with pytest.raises(RuntimeError, match="after the writes"):
        with statements.atomic():
            statements.update(row, ["vod_id"])
            audit.record("test.rolled_back", target=row)
            raise RuntimeError("after the writes")

    assert VideoUpload.objects.get(pk=row.pk).vod_id is None
    assert _audit_count("test.rolled_back") == 0
    # The connection is usable and back in autocommit: nothing is left open on the server.
    assert statements._pipelined(connection) is None
    audit.record("test.after")
    assert _audit_count("test.after") == 1


@pytest.mark.django_db(transaction=True)
def test_atomic_refuses_to_commit_when_the_updated_row_is_gone():
    ghost = VideoUpload(id=uuid.uuid4(), owner=UserFactory(), title="gone")

    with pytest.raises(DatabaseError, match="was not updated"):
        with statements.atomic():
            statements.update(ghost, ["title"])
            audit.record("test.orphan")

    assert _audit_count("test.orphan") == 0


@pytest.mark.django_db(transaction=True)
def test_atomic_raises_database_errors_as_djangos_and_rolls_back():
    existing = VideoUploadFactory()
    row = VideoUploadFactory(status=UploadStatus.REQUESTING, vod_id=None)
    row.vod_id = "c" * 32

    with pytest.raises(IntegrityError):
        with statements.atomic():
            statements.update(row, ["vod_id"])
            statements.insert(VideoUpload(id=existing.pk, owner=existing.owner, title="dup"))

    assert VideoUpload.objects.get(pk=row.pk).vod_id is None
    assert VideoUpload.objects.filter(title="dup").count() == 0


@pytest.mark.django_db(transaction=True)
def test_atomic_joins_an_enclosing_transaction():
    row = VideoUploadFactory(status=UploadStatus.REQUESTING, vod_id=None)
    row.vod_id = "d" * 32

    with pytest.raises(RuntimeError):
        with transaction.atomic():
            with statements.atomic(savepoint=False):
                assert statements._pipelined(connection) is None
                statements.update(row, ["vod_id"])
                with statements.atomic():  # joins again
                    audit.record("test.joined", target=row)
            raise RuntimeError("the outer block fails")

    assert VideoUpload.objects.get(pk=row.pk).vod_id is None
    assert _audit_count("test.joined") == 0


@pytest.mark.django_db(transaction=True)
def test_atomic_on_a_connection_killed_mid_transaction_commits_nothing():
    if connection.vendor != "postgresql":
        pytest.skip("kills a PostgreSQL backend")
    import psycopg

    row = VideoUploadFactory(status=UploadStatus.REQUESTING, vod_id=None)
    row.vod_id = "e" * 32
    settings = connection.settings_dict
    killer_params = {key: settings[name] for key, name in (
        ("host", "HOST"), ("port", "PORT"), ("user", "USER"), ("password", "PASSWORD"),
        ("dbname", "NAME")) if settings.get(name)}

    with pytest.raises(DatabaseError):  # Django's class (an OperationalError), not psycopg's
        with statements.atomic():
            statements.update(row, ["vod_id"])
            with psycopg.connect(autocommit=True, **killer_params) as killer:
                killer.execute("SELECT pg_terminate_backend(%s)",
                               [connection.connection.info.backend_pid])
            audit.record("test.killed", target=row)

    # What a request's end does: the broken connection is closed, the next use reconnects.
    connection.close_if_unusable_or_obsolete()
    assert VideoUpload.objects.get(pk=row.pk).vod_id is None
    assert _audit_count("test.killed") == 0


@pytest.mark.django_db(transaction=True)
def test_atomic_without_the_pipeline_is_transaction_atomic(settings):
    settings.DATABASE_PIPELINE = False
    row = VideoUploadFactory(status=UploadStatus.REQUESTING, vod_id=None)
    row.vod_id = "f" * 32

    with statements.atomic():
        assert statements._pipelined(connection) is None and connection.in_atomic_block
        statements.update(row, ["vod_id"])
        event = audit.record("test.unpipelined", target=row)

    assert VideoUpload.objects.get(pk=row.pk).vod_id == "f" * 32
    assert AuditEvent.objects.get(pk=event.pk).action == "test.unpipelined"
