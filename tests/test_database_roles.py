"""The documented PostgreSQL role layout (README, "Deploying"): migrations run as the owner;
the app's role may read and append audit rows and seal them (set `sequence` and `hash`, once),
but not change, delete or empty them, nor drop the triggers that guard them (issue 12,
finding 5)."""

import os
import subprocess
import sys
import uuid

import psycopg
import pytest
from django.db import connection

from tests.stack import ROOT
from uploads import audit
from uploads.models import AuditEvent

pytestmark = pytest.mark.django_db(transaction=True)

TABLE = AuditEvent._meta.db_table


def _server(**extra):
    params = connection.get_connection_params()
    return {key: value for key, value in params.items()
            if key in ("host", "port", "password")} | extra


@pytest.fixture
def app_role():
    """The app's role, granted as the README says, on the test database."""
    if connection.vendor != "postgresql":
        pytest.skip("database roles are PostgreSQL's")
    role, database = f"vodportal_app_{uuid.uuid4().hex[:8]}", connection.settings_dict["NAME"]
    owner = connection.get_connection_params()["user"]
    statements = [
        f"CREATE ROLE {role} LOGIN",
        f'GRANT CONNECT ON DATABASE "{database}" TO {role}',
        f"GRANT USAGE ON SCHEMA public TO {role}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role}",
        f"REVOKE UPDATE, DELETE, TRUNCATE ON {TABLE} FROM {role}",
        f"GRANT UPDATE (sequence, hash) ON {TABLE} TO {role}",
    ]
    with psycopg.connect(**_server(user=owner, dbname=database), autocommit=True) as admin:
        for statement in statements:
            admin.execute(statement)
    yield role
    with psycopg.connect(**_server(user=owner, dbname=database), autocommit=True) as admin:
        admin.execute(f"DROP OWNED BY {role}")
        admin.execute(f"DROP ROLE {role}")


def as_role(role, statement):
    """Run one statement connected as `role`; the error class it raised, or None."""
    try:
        with psycopg.connect(**_server(user=role, dbname=connection.settings_dict["NAME"]),
                             autocommit=True) as conn:
            conn.execute(statement)
    except psycopg.Error as exc:
        return type(exc)
    return None


def test_the_apps_role_appends_and_verifies_but_cannot_rewrite_the_trail(app_role):
    audit.record("test.event", context=audit.RequestContext.system("test"))
    url = (f"postgres://{app_role}@{connection.settings_dict['HOST'] or '127.0.0.1'}:"
           f"{connection.settings_dict['PORT'] or 5432}/{connection.settings_dict['NAME']}")
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "vodportal.settings", "DATABASE_URL": url}
    append = ("from uploads import audit; "
              "audit.record('test.event', context=audit.RequestContext.system('app'))")

    for command in (["shell", "-c", append], ["audit_verify", "--no-checkpoint"]):
        run = subprocess.run([sys.executable, "manage.py", *command], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr[-2000:]
        # The shell's event was sealed by its own sealer, as the app's role, at exit.
        assert not AuditEvent.objects.filter(sequence__isnull=True).exists()
    assert AuditEvent.objects.count() == 2 and audit.verify_chain().ok

    refused = psycopg.errors.InsufficientPrivilege
    assert as_role(app_role, f"UPDATE {TABLE} SET action = 'forged'") is refused
    # Sealed rows keep their place and hash, though the role may seal (the triggers).
    assert as_role(app_role, f"UPDATE {TABLE} SET sequence = 9 WHERE sequence = 2") is refused
    assert as_role(app_role, f"UPDATE {TABLE} SET hash = NULL WHERE sequence = 2") is refused
    assert as_role(app_role, f"DELETE FROM {TABLE}") is refused
    assert as_role(app_role, f"TRUNCATE {TABLE}") is refused
    assert as_role(app_role, f"ALTER TABLE {TABLE} DISABLE TRIGGER ALL") is refused
    assert as_role(app_role, f"DROP TABLE {TABLE}") is refused
    assert AuditEvent.objects.count() == 2
