"""Sealing off the request path (uploads/audit_sealer.py): writers insert events unsealed,
a sealer chains them in order, and nothing it refuses or leaves behind goes unreported."""

import logging
import os
import threading

import psycopg
import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, IntegrityError, connection, transaction

from tests.conftest import wait_until
from uploads import audit, audit_sealer, audit_triggers
from uploads.models import AuditEvent

pytestmark = pytest.mark.django_db(transaction=True)

TABLE = AuditEvent._meta.db_table


@pytest.fixture
def background(settings):
    """Events are sealed by this process's sealer thread, as in production."""
    settings.AUDIT_SEAL_INLINE = False
    settings.AUDIT_SEAL_INTERVAL_SECONDS = 0.2


@pytest.fixture
def unsealed(settings, monkeypatch):
    """Events are written unsealed and stay so until the test calls the sealer."""
    settings.AUDIT_SEAL_INLINE = False
    monkeypatch.setattr(audit_sealer, "wake", lambda: None)


def pending():
    return AuditEvent.objects.filter(sequence__isnull=True).count()


def sql(statement, params=()):
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def write(count=3, label="test"):
    return [audit.record("test.event", context=audit.RequestContext.system(label),
                         data={"index": index}) for index in range(count)]


# --- The background sealer ----------------------------------------------------------------

def test_the_background_sealer_chains_what_parallel_writers_wrote(background):
    errors = []

    def writer(count):
        try:
            for event in write(count):
                assert event.sequence is None and event.hash is None and event.mac
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=writer, args=(25,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    wait_until(lambda: pending() == 0, timeout=20, what="the sealer")
    sequences = list(AuditEvent.objects.order_by("sequence").values_list("sequence", flat=True))
    assert sequences == list(range(1, 101))
    report = audit.verify_chain()
    assert report.ok and report.checked == 100 and report.unsealed == 0


def test_an_event_rolled_back_with_its_caller_is_never_written(background):
    with pytest.raises(RuntimeError), transaction.atomic():
        audit.record("test.event")
        raise RuntimeError("the caller's change failed")
    write(1)
    wait_until(lambda: pending() == 0, timeout=20, what="the sealer")
    assert AuditEvent.objects.count() == 1 and audit.verify_chain().ok


def test_the_sealer_outlives_a_database_error(background, monkeypatch, caplog):
    real, failures = audit_sealer._seal, []

    def failing_once(*args, **kwargs):
        if not failures:
            failures.append(1)
            raise DatabaseError("connection lost")
        return real(*args, **kwargs)

    monkeypatch.setattr(audit_sealer, "_seal", failing_once)
    write(2)
    wait_until(lambda: pending() == 0, timeout=20, what="the sealer")
    assert failures and audit.verify_chain().ok
    assert "the audit sealer could not seal (DatabaseError: connection lost)" in caplog.text


def test_a_forked_child_starts_a_sealer_of_its_own(background):
    write(1)
    assert audit_sealer._sealer is not None
    child = os.fork()
    if child == 0:  # the child: threads do not survive fork, nor does the parent's sealer
        os._exit(0 if audit_sealer._sealer is None else 1)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    wait_until(lambda: pending() == 0, timeout=20, what="the sealer")


def test_a_busy_lock_leaves_the_work_to_its_holder(unsealed):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite has one writer lock, taken by BEGIN IMMEDIATE")
    write(2)
    params = connection.get_connection_params()
    with psycopg.connect(**params) as other, other.transaction():
        other.execute("SELECT pg_advisory_xact_lock(%s)", [audit_sealer.CHAIN_LOCK_ID])
        assert audit_sealer.seal_pending(wait=False) == 0
    assert pending() == 2
    assert audit_sealer.seal_pending(wait=False) == 2 and audit.verify_chain().ok


def test_values_are_signed_as_the_database_stores_them(unsealed):
    context = audit.RequestContext(client_ip="2001:DB8:0:0::1", request_id="r",
                                   user_agent="pytest")
    audit.record("test.event", context=context, data={"b": 1.5, "a": ["x", {"z": None}]})
    assert audit_sealer.seal_pending() == 1
    assert AuditEvent.objects.get().client_ip == "2001:db8::1" and audit.verify_chain().ok


# --- What the sealer refuses ----------------------------------------------------------------

def test_a_forged_unsealed_row_is_never_sealed_and_is_reported(unsealed, caplog):
    write(2)
    forged = AuditEvent.objects.order_by("id").first()
    forged.pk, forged.action, forged.mac = None, "forged.event", "0" * 32 + ":" + "f" * 64
    forged.save()  # an INSERT: the triggers allow it, as they must for the app
    write(1)

    with caplog.at_level(logging.ERROR, logger="uploads.audit_sealer"):
        assert audit_sealer.seal_pending() == 3
    assert AuditEvent.objects.get(pk=forged.pk).sequence is None
    assert f"audit event id {forged.pk} left unsealed: its mac does not match" in caplog.text
    report = audit.verify_chain()
    assert not report.ok and report.first_bad_id == forged.pk and "mac" in report.reason
    with pytest.raises(CommandError, match=f"broken at event id {forged.pk}: not sealed"):
        call_command("audit_verify", "--no-checkpoint")


def test_an_unsealed_row_edited_before_sealing_is_never_sealed(unsealed):
    event, = write(1)
    audit_triggers.remove(connection)  # as an attacker with the database's owner would
    sql(f"UPDATE {TABLE} SET outcome = 'failure' WHERE id = %s", [event.pk])
    assert audit_sealer.seal_pending() == 0
    report = audit.verify_chain()
    assert not report.ok and report.first_bad_id == event.pk


def test_a_copy_of_a_genuine_row_is_refused(unsealed):
    original, = write(1)
    copy = AuditEvent.objects.get(pk=original.pk)
    copy.pk = None
    with pytest.raises(IntegrityError), transaction.atomic():
        copy.save()  # the unique mac

    if connection.vendor != "postgresql":
        pytest.skip("SQLite's unique constraint goes only with a rebuild of the table")
    sql(f"ALTER TABLE {TABLE} DROP CONSTRAINT audit_mac_unique")  # the owner's rights
    copy.save()
    assert audit_sealer.seal_pending() == 1
    assert pending() == 1
    report = audit.verify_chain()
    assert not report.ok and report.first_bad_id == copy.pk and "copy" in report.reason

    # A copy of a sealed row, unsealed again, is no better.
    sealed = AuditEvent.objects.get(sequence=1)
    sealed.pk, sealed.sequence, sealed.hash = None, None, None
    sealed.save()
    assert audit_sealer.seal_pending() == 0


# --- Lag: an unsealed row can be deleted unseen, so it must not wait long -------------------

def test_events_left_unsealed_too_long_are_reported(unsealed, settings):
    write(2)
    settings.AUDIT_SEAL_MAX_LAG_SECONDS = 0
    report = audit.verify_chain()
    assert not report.ok and "is a sealer running?" in report.reason
    with pytest.raises(CommandError, match="broken at event id"):
        call_command("audit_verify", "--no-checkpoint", "--no-seal")

    # audit_verify seals them (they are safe from now on) but still says they waited.
    with pytest.raises(CommandError, match="waited up to .* to be sealed"):
        call_command("audit_verify", "--no-checkpoint")
    assert pending() == 0
    call_command("audit_verify", "--no-checkpoint")


def test_audit_seal_command_seals_what_is_pending(unsealed, capsys):
    write(3)
    call_command("audit_seal")
    assert capsys.readouterr().out.strip() == "3 audit events sealed"
    assert pending() == 0 and audit.verify_chain().ok


# --- The triggers allow sealing once, and nothing else ------------------------------------

@pytest.mark.parametrize("statement", [
    "UPDATE {table} SET sequence = 1 WHERE id = %s",
    "UPDATE {table} SET hash = 'h' WHERE id = %s",
    "UPDATE {table} SET sequence = 1, hash = 'h', action = 'forged' WHERE id = %s",
    "UPDATE {table} SET sequence = 1, hash = 'h', mac = NULL WHERE id = %s",
])
def test_triggers_allow_sealing_only_as_sealing(unsealed, statement):
    event, = write(1)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        sql(statement.format(table=TABLE), [event.pk])
    sql(f"UPDATE {TABLE} SET sequence = 1, hash = 'h' WHERE id = %s", [event.pk])


@pytest.mark.parametrize("statement", [
    "UPDATE {table} SET sequence = 2 WHERE sequence = 1",
    "UPDATE {table} SET hash = 'h' WHERE sequence = 1",
    "UPDATE {table} SET sequence = NULL, hash = NULL WHERE sequence = 1",
])
def test_a_sealed_row_never_changes(unsealed, statement):
    write(1)
    audit_sealer.seal_pending()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        sql(statement.format(table=TABLE))
    assert audit.verify_chain().ok


def test_the_admin_shows_an_unsealed_event_as_pending(unsealed, admin_client):
    write(1)
    page = admin_client.get("/admin/uploads/auditevent/")
    assert page.status_code == 200 and "pending" in page.content.decode()
    audit_sealer.seal_pending()
    page = admin_client.get("/admin/uploads/auditevent/")
    assert "pending" not in page.content.decode()
