"""The audit chain sealed off the request path (uploads/audit_sealer.py).

Writers insert events unsealed: `sequence` and `hash` become nullable, and each row gets a
`mac` of its own (NULL on the rows before, which are sealed already), unique so a copy of a
row cannot be sealed twice; a partial index lists the rows waiting to be sealed. The append-only triggers now also allow sealing (NULL to a value,
nothing else changed). Writers no longer read the chain's head, so migration 0005's
lock-and-head function goes.

SQLite rebuilds the table to make columns nullable, which drops its triggers: they are
removed first and installed again last. Reversible until the first event is written with a
mac (see `refuse_to_lose_the_chain`).
"""

from django.db import migrations, models

from uploads import audit_triggers

HEAD_FUNCTION = """
CREATE OR REPLACE FUNCTION uploads_audit_chain_head_locked(lock_id bigint)
RETURNS TABLE (head_sequence bigint, head_hash varchar)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(lock_id);
    RETURN QUERY SELECT sequence, hash FROM uploads_auditevent ORDER BY sequence DESC LIMIT 1;
END
$$;
"""


def remove_triggers(apps, schema_editor):
    audit_triggers.remove(schema_editor.connection)


def install_triggers(apps, schema_editor):
    audit_triggers.install(schema_editor.connection)


def install_triggers_of_0002(apps, schema_editor):
    audit_triggers.install(schema_editor.connection, as_of_0002=True)


def drop_head_function(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP FUNCTION IF EXISTS uploads_audit_chain_head_locked(bigint)")


def create_head_function(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(HEAD_FUNCTION)


def refuse_to_lose_the_chain(apps, schema_editor):
    """Going back is refused once events have been written with a mac: the chain covers each
    one's mac, which this reversal would drop, and the code before this migration does not
    know of macs, so its audit_verify would report the chain broken at the first of them."""
    event = apps.get_model("uploads", "AuditEvent")
    if event.objects.filter(mac__isnull=False).exists():
        raise RuntimeError("audit events were written since migration 0007: their hashes cover "
                           "their mac, so neither this reversal nor the code before it could "
                           "keep them verifiable")


class Migration(migrations.Migration):
    dependencies = [("uploads", "0006_reconciliation")]

    operations = [
        migrations.RunPython(remove_triggers, install_triggers_of_0002),
        migrations.AddField(
            model_name="auditevent",
            name="mac",
            field=models.CharField(blank=True, max_length=97, null=True),
        ),
        migrations.AlterField(
            model_name="auditevent",
            name="hash",
            field=models.CharField(blank=True, max_length=64, null=True),
        ),
        migrations.AlterField(
            model_name="auditevent",
            name="sequence",
            field=models.BigIntegerField(blank=True, null=True, unique=True),
        ),
        migrations.AddConstraint(
            model_name="auditevent",
            constraint=models.UniqueConstraint(fields=("mac",), name="audit_mac_unique"),
        ),
        migrations.AddIndex(
            model_name="auditevent",
            index=models.Index(condition=models.Q(("sequence__isnull", True)), fields=["id"],
                               name="audit_unsealed"),
        ),
        migrations.RunPython(drop_head_function, create_head_function),
        migrations.RunPython(install_triggers, remove_triggers),
        # Last, so that going back checks first.
        migrations.RunPython(migrations.RunPython.noop, refuse_to_lose_the_chain),
    ]
