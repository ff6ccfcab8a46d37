"""The audit trail is append-only at three depths: no code path, database triggers, and an
HMAC chain that `manage.py audit_verify` checks."""

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction

from tests.factories import UserFactory
from uploads import audit, audit_triggers
from uploads.models import AuditEvent

pytestmark = pytest.mark.django_db(transaction=True)

TABLE = AuditEvent._meta.db_table


def write_events(count=5, actor=None):
    context = audit.RequestContext(actor=actor, actor_label="" if actor else "test",
                                   request_id="req", client_ip="192.0.2.1", user_agent="pytest")
    return [audit.record("test.event", context=context, target_kind="video",
                         target_vod_id=f"{index:032x}", data={"index": index})
            for index in range(1, count + 1)]


def sql(statement, params=()):
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def verify():
    """Run audit_verify; return (exit status, message)."""
    try:
        call_command("audit_verify")
    except CommandError as exc:
        return exc.returncode, str(exc)
    return 0, ""


# --- Triggers ---------------------------------------------------------------------------

@pytest.mark.parametrize("statement", [
    f"UPDATE {TABLE} SET outcome = 'failure' WHERE sequence = 2",
    f"UPDATE {TABLE} SET actor_label = 'someone else'",
    f"DELETE FROM {TABLE} WHERE sequence = 3",
    f"DELETE FROM {TABLE}",
])
def test_triggers_refuse_update_and_delete(statement):
    write_events()
    with pytest.raises(DatabaseError, match="append-only"):
        with transaction.atomic():
            sql(statement)
    assert AuditEvent.objects.count() == 5
    assert verify() == (0, "")


def test_orm_update_and_delete_are_refused_too():
    write_events(2)
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent.objects.filter(sequence=1).update(action="forged")
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent.objects.all().delete()


def test_truncate_is_refused_on_postgresql():
    if connection.vendor != "postgresql":
        pytest.skip("SQLite has no TRUNCATE")
    write_events(2)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        sql(f"TRUNCATE {TABLE}")
    assert AuditEvent.objects.count() == 2


def test_deleting_an_actor_nulls_the_fk_and_keeps_the_chain_valid():
    person = UserFactory(username="dora")
    write_events(3, actor=person)

    person.delete()

    assert AuditEvent.objects.filter(actor__isnull=True).count() == 3
    assert set(AuditEvent.objects.values_list("actor_label", flat=True)) == {"dora"}
    assert verify() == (0, "")


# --- The chain, with the triggers dropped as an attacker with database access would -----

@pytest.fixture
def without_triggers():
    write_events()
    audit_triggers.remove(connection)
    yield
    # Leave the table in a state the test runner can empty.


def test_an_intact_chain_verifies(capsys):
    write_events()
    call_command("audit_verify", "--no-checkpoint")
    out = capsys.readouterr().out
    head = AuditEvent.objects.get(sequence=5).hash
    assert out.strip() == f"audit chain OK: 5 events; head 5:{head}"


def test_an_edited_field_is_detected(without_triggers):
    sql(f"UPDATE {TABLE} SET outcome = 'failure' WHERE sequence = 3")
    assert verify() == (1, "audit chain broken at sequence 3: hash does not match the row and "
                           "its predecessor (2 events verified before it)")


def test_edited_json_data_is_detected(without_triggers):
    AuditEvent.objects.filter(sequence=4).update(data={"index": 40})
    status, message = verify()
    assert status == 1 and "sequence 4" in message


def test_a_deleted_row_is_detected(without_triggers):
    sql(f"DELETE FROM {TABLE} WHERE sequence = 2")
    status, message = verify()
    assert status == 1 and "broken at sequence 2" in message and "missing" in message


def test_an_inserted_row_is_detected(without_triggers):
    # A forged event slipped between 2 and 3, with the sequence numbers moved up to fit.
    sql(f"UPDATE {TABLE} SET sequence = sequence + 100 WHERE sequence >= 3")
    sql(f"UPDATE {TABLE} SET sequence = sequence - 99 WHERE sequence >= 103")
    forged = AuditEvent.objects.get(sequence=2)
    values = {name: getattr(forged, name) for name in audit.CHAINED_FIELDS}
    values.update(sequence=3, action="forged.event")
    values["hash"] = "f" * 64
    AuditEvent.objects.bulk_create([AuditEvent(**{key: value for key, value in values.items()})])
    status, message = verify()
    assert status == 1 and "broken at sequence 3" in message


def test_a_swapped_order_is_detected(without_triggers):
    sql(f"UPDATE {TABLE} SET sequence = -1 WHERE sequence = 2")
    sql(f"UPDATE {TABLE} SET sequence = 2 WHERE sequence = 3")
    sql(f"UPDATE {TABLE} SET sequence = 3 WHERE sequence = -1")
    status, message = verify()
    assert status == 1 and "broken at sequence 2" in message


def test_a_re_pointed_actor_is_detected(without_triggers):
    intruder = UserFactory(username="mallory")
    sql(f"UPDATE {TABLE} SET actor_id = %s WHERE sequence = 4", [intruder.pk])
    status, message = verify()
    assert status == 1 and "broken at sequence 4: actor was changed" in message


def test_a_wrong_key_is_named_as_such_not_as_tampering(settings):
    write_events()
    settings.AUDIT_KEY = "not-the-key-the-chain-was-written-with"
    status, message = verify()
    assert status == 1 and "cannot be verified" in message and "AUDIT_KEY" in message
    assert "broken" not in message


def test_an_edited_first_event_is_tampering_not_a_wrong_key(without_triggers):
    sql(f"UPDATE {TABLE} SET action = 'auth.login' WHERE sequence = 1")
    status, message = verify()
    assert status == 1 and "broken at sequence 1" in message


def test_deleting_the_newest_events_is_caught_by_a_recorded_head(without_triggers):
    head = AuditEvent.objects.get(sequence=5)
    anchor = f"5:{head.hash}"
    call_command("audit_verify", "--expect-head", anchor, "--no-checkpoint")

    sql(f"DELETE FROM {TABLE} WHERE sequence >= 4")

    assert audit.verify_chain().ok  # a shorter chain is still a valid chain...
    with pytest.raises(CommandError, match="broken at sequence 4"):
        call_command("audit_verify", "--expect-head", anchor)  # ...but not the recorded one


# --- Checkpoints: the chain proves its own end ---------------------------------------------

def checkpointed():
    """audit_verify as cron runs it: verify, then record the head outside the database."""
    call_command("audit_verify")


def rewrite_chain_with_the_key(actions):
    """What someone holding AUDIT_KEY and the database can do: a whole new, valid chain."""
    sql(f"DELETE FROM {TABLE}")
    for action in actions:
        audit.record(action, context=audit.RequestContext.system("forger"))


@pytest.mark.parametrize("tampering", ["tail deleted", "everything deleted",
                                       "tail replaced by new appends", "rewritten with the key"])
def test_a_checkpoint_catches_what_a_valid_chain_hides(without_triggers, tampering):
    checkpointed()
    if tampering == "tail deleted":
        sql(f"DELETE FROM {TABLE} WHERE sequence >= 4")
    elif tampering == "everything deleted":
        sql(f"DELETE FROM {TABLE}")
    elif tampering == "tail replaced by new appends":
        sql(f"DELETE FROM {TABLE} WHERE sequence >= 4")
        write_events(2)  # the app appends again: sequences 4 and 5 exist, with other rows
    else:
        rewrite_chain_with_the_key(["test.event"] * 5)

    assert audit.verify_chain().ok  # the chain alone looks fine...
    status, message = verify()  # ...the checkpoint does not
    assert status == 1 and "broken at sequence" in message and "checkpoint" in message


def test_checkpoints_are_written_when_the_head_moves_and_must_be_signed(settings, capsys):
    from pathlib import Path

    write_events(3)
    checkpointed()
    checkpointed()  # the head has not moved: nothing new
    write_events(2)
    checkpointed()
    folder = Path(settings.AUDIT_CHECKPOINT_DIR)
    files = sorted(folder.glob("checkpoint-*.json"))
    assert len(files) == 2 and "2 checkpoints hold" not in capsys.readouterr().out

    forged = files[-1].read_text().replace('"sequence": 5', '"sequence": 4')
    files[-1].write_text(forged)
    status, message = verify()
    assert status == 1 and "not signed with AUDIT_KEY" in message
