"""Idempotency keys get a claim time (a dead request's key can be taken over); one accepted
VOD event per body, enforced by the database."""

import django.utils.timezone
from django.db import migrations, models


def demote_doubly_accepted_events(apps, schema_editor):
    """Before the constraint: of bodies accepted more than once (the race it closes), the
    first delivery stays `accepted` and the later ones become `duplicate`."""
    VodEvent = apps.get_model("uploads", "VodEvent")
    seen = set()
    for event in VodEvent.objects.filter(status="accepted").order_by("received_at", "pk"):
        if event.fingerprint in seen:
            VodEvent.objects.filter(pk=event.pk).update(status="duplicate",
                                                        reason="already processed")
        seen.add(event.fingerprint)


class Migration(migrations.Migration):

    dependencies = [
        ("uploads", "0005_audit_chain_head_function"),
    ]

    operations = [
        migrations.AddField(
            model_name="idempotencyrecord",
            name="claimed_at",
            field=models.DateTimeField(default=django.utils.timezone.now),
        ),
        migrations.AlterField(
            model_name="idempotencyrecord",
            name="upload_id",
            field=models.UUIDField(blank=True, db_index=True, null=True),
        ),
        migrations.RunPython(demote_doubly_accepted_events, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="vodevent",
            constraint=models.UniqueConstraint(condition=models.Q(("status", "accepted")),
                                               fields=("fingerprint",),
                                               name="vodevent_accepted_once"),
        ),
    ]
