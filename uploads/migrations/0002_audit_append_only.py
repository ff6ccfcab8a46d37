"""Make the audit table append-only with database triggers (SQLite and PostgreSQL)."""

from django.db import migrations

from uploads import audit_triggers


def install(apps, schema_editor):
    # The triggers for the table as it is at this migration (0007 replaces them).
    audit_triggers.install(schema_editor.connection, as_of_0002=True)


def remove(apps, schema_editor):
    audit_triggers.remove(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [("uploads", "0001_initial")]

    operations = [migrations.RunPython(install, remove)]
