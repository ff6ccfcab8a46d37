"""Database triggers that make the audit table append-only, on SQLite and PostgreSQL.

UPDATE and DELETE are refused (TRUNCATE too on PostgreSQL). Two UPDATEs are allowed:

- the database nulling `actor_id` when the actor's account is deleted (the FK is SET_NULL):
  the frozen `actor_ref` and `actor_label`, which the hash covers, keep who it was;
- sealing (uploads/audit_sealer.py): `sequence` and `hash` going from NULL to a value, every
  other column unchanged. Once sealed, a row's place and hash never change.

Installed by migration 0002, replaced by 0007 (sealing); tests reinstall them (see
tests/conftest.py) because Django's test flush must empty the table between transactional
tests.
"""

TABLE = "uploads_auditevent"
# Every column but actor_id, sequence and hash: no allowed UPDATE changes these.
FROZEN_COLUMNS = (
    "id", "created_at", "actor_ref", "actor_label", "action", "outcome", "target_kind",
    "target_vod_id", "target_pk", "request_id", "vod_request_id", "client_ip", "user_agent",
    "data", "mac",
)
# The table as migration 0002 knew it (no mac; sequence and hash never NULL), for 0007's
# reversal.
FROZEN_COLUMNS_0002 = tuple(column for column in FROZEN_COLUMNS if column != "mac")


def _unchanged(columns) -> str:
    return " AND ".join(f"NEW.{column} IS OLD.{column}" for column in columns)


def sqlite_install(frozen_columns=FROZEN_COLUMNS) -> list[str]:
    """SQLite's triggers for a table whose other columns are `frozen_columns`."""
    actor_nulled = (f"NEW.actor_id IS NULL AND NEW.sequence IS OLD.sequence AND "
                    f"NEW.hash IS OLD.hash AND {_unchanged(frozen_columns)}")
    sealed = ("OLD.sequence IS NULL AND OLD.hash IS NULL AND NEW.sequence IS NOT NULL AND "
              f"NEW.hash IS NOT NULL AND NEW.actor_id IS OLD.actor_id AND "
              f"{_unchanged(frozen_columns)}")
    return [
        f"""CREATE TRIGGER IF NOT EXISTS {TABLE}_no_update BEFORE UPDATE ON {TABLE}
            WHEN NOT (({actor_nulled}) OR ({sealed}))
            BEGIN SELECT RAISE(ABORT, 'audit events are append-only: UPDATE refused'); END""",
        f"""CREATE TRIGGER IF NOT EXISTS {TABLE}_no_delete BEFORE DELETE ON {TABLE}
            BEGIN SELECT RAISE(ABORT, 'audit events are append-only: DELETE refused'); END""",
    ]


SQLITE_REMOVE = [
    f"DROP TRIGGER IF EXISTS {TABLE}_no_update",
    f"DROP TRIGGER IF EXISTS {TABLE}_no_delete",
]

# Column lists are not spelled out here: to_jsonb(row) holds every column, so a column added
# later is frozen without touching the function.
_POSTGRESQL_FUNCTION = f"""CREATE OR REPLACE FUNCTION {TABLE}_append_only() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_OP = 'UPDATE' AND NEW.actor_id IS NULL
         AND (to_jsonb(NEW) - 'actor_id') = (to_jsonb(OLD) - 'actor_id') THEN
        RETURN NEW;
      END IF;
      IF TG_OP = 'UPDATE' AND OLD.sequence IS NULL AND OLD.hash IS NULL
         AND NEW.sequence IS NOT NULL AND NEW.hash IS NOT NULL
         AND (to_jsonb(NEW) - 'sequence' - 'hash') = (to_jsonb(OLD) - 'sequence' - 'hash') THEN
        RETURN NEW;
      END IF;
      RAISE EXCEPTION 'audit events are append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
    END $$"""
# Migration 0002's function, for 0007's reversal.
_POSTGRESQL_FUNCTION_0002 = f"""CREATE OR REPLACE FUNCTION {TABLE}_append_only()
    RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_OP = 'UPDATE' AND NEW.actor_id IS NULL
         AND (to_jsonb(NEW) - 'actor_id') = (to_jsonb(OLD) - 'actor_id') THEN
        RETURN NEW;
      END IF;
      RAISE EXCEPTION 'audit events are append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
    END $$"""
_POSTGRESQL_TRIGGERS = [
    f"""CREATE OR REPLACE TRIGGER {TABLE}_no_update_delete BEFORE UPDATE OR DELETE ON {TABLE}
        FOR EACH ROW EXECUTE FUNCTION {TABLE}_append_only()""",
    f"""CREATE OR REPLACE TRIGGER {TABLE}_no_truncate BEFORE TRUNCATE ON {TABLE}
        FOR EACH STATEMENT EXECUTE FUNCTION {TABLE}_append_only()""",
]
POSTGRESQL_REMOVE = [
    f"DROP TRIGGER IF EXISTS {TABLE}_no_update_delete ON {TABLE}",
    f"DROP TRIGGER IF EXISTS {TABLE}_no_truncate ON {TABLE}",
]


def _statements(vendor: str, *, install: bool, as_of_0002: bool = False) -> list[str]:
    if vendor == "sqlite":
        if not install:
            return SQLITE_REMOVE
        return sqlite_install(FROZEN_COLUMNS_0002 if as_of_0002 else FROZEN_COLUMNS)
    if vendor == "postgresql":
        if not install:
            return POSTGRESQL_REMOVE
        function = _POSTGRESQL_FUNCTION_0002 if as_of_0002 else _POSTGRESQL_FUNCTION
        return [function, *_POSTGRESQL_TRIGGERS]
    raise NotImplementedError(f"No append-only triggers for the {vendor} backend.")


def install(connection, *, as_of_0002: bool = False) -> None:
    """Create (or replace) the triggers on `connection`'s database; `as_of_0002`: the ones
    migration 0002 installed, for a table without `mac` (migrations only)."""
    with connection.cursor() as cursor:
        for statement in _statements(connection.vendor, install=True, as_of_0002=as_of_0002):
            cursor.execute(statement)


def remove(connection) -> None:
    """Drop the triggers (tests, and migrations that rebuild the table)."""
    with connection.cursor() as cursor:
        for statement in _statements(connection.vendor, install=False):
            cursor.execute(statement)
