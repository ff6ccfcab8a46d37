"""Database triggers that make the audit table append-only, on SQLite and PostgreSQL.

UPDATE and DELETE are refused (TRUNCATE too on PostgreSQL). The one UPDATE allowed is the
database nulling `actor_id` when the actor's account is deleted (the FK is SET_NULL): the
frozen `actor_ref` and `actor_label`, which the hash covers, keep who it was.

Installed by migration 0002; tests reinstall them (see tests/conftest.py) because Django's
test flush must empty the table between transactional tests.
"""

TABLE = "uploads_auditevent"
# Every column but actor_id: an UPDATE is allowed only when none of these changes.
_FROZEN_COLUMNS = (
    "id", "sequence", "created_at", "actor_ref", "actor_label", "action", "outcome",
    "target_kind", "target_vod_id", "target_pk", "request_id", "vod_request_id", "client_ip",
    "user_agent", "data", "hash",
)

_SQLITE_ONLY_ACTOR_NULLED = " AND ".join(
    ["NEW.actor_id IS NULL"] + [f"NEW.{column} IS OLD.{column}" for column in _FROZEN_COLUMNS]
)

SQLITE_INSTALL = [
    f"""CREATE TRIGGER IF NOT EXISTS {TABLE}_no_update BEFORE UPDATE ON {TABLE}
        WHEN NOT ({_SQLITE_ONLY_ACTOR_NULLED})
        BEGIN SELECT RAISE(ABORT, 'audit events are append-only: UPDATE refused'); END""",
    f"""CREATE TRIGGER IF NOT EXISTS {TABLE}_no_delete BEFORE DELETE ON {TABLE}
        BEGIN SELECT RAISE(ABORT, 'audit events are append-only: DELETE refused'); END""",
]
SQLITE_REMOVE = [
    f"DROP TRIGGER IF EXISTS {TABLE}_no_update",
    f"DROP TRIGGER IF EXISTS {TABLE}_no_delete",
]

POSTGRESQL_INSTALL = [
    f"""CREATE OR REPLACE FUNCTION {TABLE}_append_only() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
          IF TG_OP = 'UPDATE' AND NEW.actor_id IS NULL
             AND (to_jsonb(NEW) - 'actor_id') = (to_jsonb(OLD) - 'actor_id') THEN
            RETURN NEW;
          END IF;
          RAISE EXCEPTION 'audit events are append-only: % refused', TG_OP
            USING ERRCODE = 'insufficient_privilege';
        END $$""",
    f"""CREATE OR REPLACE TRIGGER {TABLE}_no_update_delete BEFORE UPDATE OR DELETE ON {TABLE}
        FOR EACH ROW EXECUTE FUNCTION {TABLE}_append_only()""",
    f"""CREATE OR REPLACE TRIGGER {TABLE}_no_truncate BEFORE TRUNCATE ON {TABLE}
        FOR EACH STATEMENT EXECUTE FUNCTION {TABLE}_append_only()""",
]
POSTGRESQL_REMOVE = [
    f"DROP TRIGGER IF EXISTS {TABLE}_no_update_delete ON {TABLE}",
    f"DROP TRIGGER IF EXISTS {TABLE}_no_truncate ON {TABLE}",
]


def _statements(vendor: str, *, install: bool) -> list[str]:
    if vendor == "sqlite":
        return SQLITE_INSTALL if install else SQLITE_REMOVE
    if vendor == "postgresql":
        return POSTGRESQL_INSTALL if install else POSTGRESQL_REMOVE
    raise NotImplementedError(f"No append-only triggers for the {vendor} backend.")


def install(connection) -> None:
    """Create (or replace) the triggers on `connection`'s database."""
    with connection.cursor() as cursor:
        for statement in _statements(connection.vendor, install=True):
            cursor.execute(statement)


def remove(connection) -> None:
    """Drop the triggers (tests only: to let the test runner empty the table)."""
    with connection.cursor() as cursor:
        for statement in _statements(connection.vendor, install=False):
            cursor.execute(statement)
