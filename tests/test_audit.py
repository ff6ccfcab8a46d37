"""The audit trail's chain as services write it."""

import hashlib
import hmac
import threading

import pytest
from django.db import connection

from uploads import audit
from uploads.models import AuditEvent

pytestmark = pytest.mark.django_db(transaction=True)


def test_events_form_a_gapless_hmac_chain(user):
    context = audit.RequestContext(actor=user, request_id="r1", client_ip="10.0.0.1",
                                   user_agent="pytest")
    for index in range(5):
        audit.record("test.event", context=context, data={"i": index})

    events = list(AuditEvent.objects.order_by("sequence"))
    assert [event.sequence for event in events] == [1, 2, 3, 4, 5]
    previous = audit.GENESIS_HASH
    for event in events:
        values = {name: getattr(event, name) for name in audit.CHAINED_FIELDS}
        assert audit.mac_matches(values, event.mac)
        assert event.hash == audit.chain_hash(previous, {**values, "mac": event.mac})
        previous = event.hash


def test_rows_written_before_macs_chain_as_they_always_did():
    values = {"sequence": 1, "action": "test.event", "data": {}}
    message = (audit.GENESIS_HASH + audit.canonical(values)).encode()
    expected = hmac.new(audit.audit_key(), message, hashlib.sha256).hexdigest()
    assert audit.chain_hash(audit.GENESIS_HASH, {**values, "mac": ""}) == expected


def test_record_returns_the_event_sealed_when_inline():
    event = audit.record("test.event")
    assert event.sequence == 1 and event.hash == audit.hash_at(1)


def test_system_events_name_their_actor():
    event = audit.record("test.system", context=audit.RequestContext.system("vod_sync"))
    assert event.actor is None and event.actor_label == "vod_sync"


def test_parallel_writers_never_reuse_a_sequence_number():
    if connection.vendor == "sqlite":
        pytest.skip("SQLite serializes writers by itself; the race needs PostgreSQL")
    errors = []

    def write(count):
        try:
            for _ in range(count):
                audit.record("test.parallel")
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=write, args=(25,)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    sequences = list(AuditEvent.objects.order_by("sequence").values_list("sequence", flat=True))
    assert sequences == list(range(1, 201))
