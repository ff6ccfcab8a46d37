"""PostgreSQL: take the audit chain's lock and read its head in one round trip.

Appending an event holds the chain's lock from reading the head until COMMIT, so every
round trip inside that span lengthens the queue of writers behind it (bench/README.md,
"Issuing throughput"). A VOLATILE PL/pgSQL function takes a fresh snapshot for each query
it runs, so the head it reads after the lock is granted includes every event committed
before: the same guarantee as two separate statements, with one round trip.
"""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION uploads_audit_chain_head_locked(lock_id bigint)
RETURNS TABLE (head_sequence bigint, head_hash varchar)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(lock_id);
    RETURN QUERY SELECT sequence, hash FROM uploads_auditevent ORDER BY sequence DESC LIMIT 1;
END
$$;
"""
DROP = "DROP FUNCTION IF EXISTS uploads_audit_chain_head_locked(bigint);"


def install(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def remove(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("uploads", "0004_idempotency")]

    operations = [migrations.RunPython(install, remove)]
