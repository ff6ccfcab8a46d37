"""The statements every credential runs, with their SQL built once instead of on every call.

Django's ORM compiles a statement's SQL anew each time it runs. For the upload tables (about
thirty columns) that costs more CPU than PostgreSQL spends executing the statement, and
issuing one credential runs the same few statements every time: the token lookup, the
`requesting` row's INSERT, its completion UPDATE and the audit event's INSERT. Profiling
(bench/README.md, "Issuing throughput") showed ORM compilation as the largest part of the
portal's CPU per credential, so these statements build their SQL once per model, field set
and database vendor from the model's own metadata.

Values still go through each field's `pre_save` (auto_now, auto_now_add) and
`get_db_prep_save`, and values read back through the backend's and the fields' converters,
exactly as the ORM does; queries still go through Django's cursor wrapper, so the test
suite's query capture and `django.db.backends` logging see them. Model signals are not sent:
nothing in vodportal listens to these models' signals. Everything off the hot path uses
the ORM.

`atomic()` runs them as one transaction in as few round trips to PostgreSQL as the statements
allow (psycopg's pipeline mode); `transaction.atomic()` costs a round trip for BEGIN and one
for COMMIT, and the chain's lock is held across each of them.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field as dataclass_field
from functools import lru_cache, partial
from typing import Any, Callable, Iterator, Sequence

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections, router, transaction
from django.db.models import Field, Model
from django.db.models.expressions import Col

# The attribute a connection carries while a pipelined transaction is open on it.
_PIPELINED = "vodportal_pipelined_transaction"


@dataclass
class _PipelinedTransaction:
    """What must happen once results arrive: a statement's result is only there after the
    pipeline's next sync (a read of any result, or COMMIT)."""

    # Run before COMMIT is sent; raising aborts the transaction.
    checks: list[tuple[Any, Callable[[Any], None]]] = dataclass_field(default_factory=list)
    # Run after COMMIT's sync; each cursor is closed after its read.
    reads: list[tuple[Any, Callable[[Any], None]]] = dataclass_field(default_factory=list)


def _pipelined(connection) -> _PipelinedTransaction | None:
    return getattr(connection, _PIPELINED, None)


@contextmanager
def atomic(using: str = DEFAULT_DB_ALIAS, *, savepoint: bool = True) -> Iterator[None]:
    """All or nothing for the statements run inside, in as few round trips as possible.

    Inside a transaction already (a Django atomic block, or this one) it joins it, with a
    savepoint when `savepoint` is true and the enclosing block is Django's. Otherwise, on
    PostgreSQL, the transaction runs in psycopg's pipeline mode with BEGIN and COMMIT sent as
    statements: the client waits for the server only when it reads a result, and once at
    COMMIT. A credential's completion (BEGIN, the row's UPDATE, the chain's lock and head;
    then the audit INSERT and COMMIT) takes two round trips instead of five, and the chain's
    lock is held for one. Statements inside must come from this module or plain cursors;
    `insert()` and `update()` defer what they read until the results are in. Elsewhere
    (SQLite, or with `DATABASE_PIPELINE` off) it is `transaction.atomic()`.
    """
    connection = connections[using]
    if _pipelined(connection) is not None:
        yield
        return
    if (connection.vendor != "postgresql" or connection.in_atomic_block
            or not connection.get_autocommit() or not settings.DATABASE_PIPELINE):
        with transaction.atomic(using=using, savepoint=savepoint):
            yield
        return
    with connection.cursor() as cursor:  # connects (and health-checks) before pipelining
        state = _PipelinedTransaction()
        try:
            with connection.wrap_database_errors, connection.connection.pipeline() as pipeline:
                setattr(connection, _PIPELINED, state)
                cursor.execute("BEGIN")
                yield
                if any(pending.pgresult is None for pending, _ in state.checks):
                    pipeline.sync()
                for pending, check in state.checks:
                    check(pending)
                cursor.execute("COMMIT")
            for pending, read in state.reads:
                read(pending)
        except BaseException:
            _roll_back(connection)
            raise
        finally:
            vars(connection).pop(_PIPELINED, None)
            for pending, _ in state.reads:
                pending.close()


def _roll_back(connection) -> None:
    """End a failed pipelined transaction: the server holds it open (aborted) until told."""
    try:
        with connection.wrap_database_errors:
            connection.connection.rollback()  # a no-op when the server has none open
    except DatabaseError:
        # The connection itself failed: Django closes it at the end of the request.
        connection.errors_occurred = True


def _quoted_table(model: type[Model], connection) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _reader(field: Field, connection) -> tuple[tuple, Col]:
    """How a value of `field` read from the database becomes what the ORM would return: the
    backend's and the field's converters, and the column they are called with."""
    column = field.get_col(field.model._meta.db_table)
    return (tuple(connection.ops.get_db_converters(column)
                  + column.get_db_converters(connection)), column)


def _read(value, reader: tuple[tuple, Col], connection):
    converters, column = reader
    for converter in converters:
        value = converter(value, column, connection)
    return value


@lru_cache(maxsize=64)
def _insert_plan(model: type[Model], alias: str, vendor: str):
    """(SQL, the fields it sets in order, the field RETURNING hands back or None, and how
    to read that field)."""
    connection = connections[alias]
    quote = connection.ops.quote_name
    fields = tuple(field for field in model._meta.local_concrete_fields
                   if not field.db_returning and not field.generated)
    returned = next((field for field in model._meta.local_concrete_fields
                     if field.db_returning), None)
    sql = (f"INSERT INTO {_quoted_table(model, connection)} "
           f"({', '.join(quote(field.column) for field in fields)}) "
           f"VALUES ({', '.join(['%s'] * len(fields))})")
    if returned is None:
        return sql, fields, None, None
    sql += f" RETURNING {quote(returned.column)}"
    return sql, fields, returned, _reader(returned, connection)


def insert(instance: Model) -> Model:
    """INSERT a new row for `instance`, as `instance.save(force_insert=True)` would.

    In a pipelined transaction (`atomic`) a database-generated key is set once the
    transaction has committed."""
    model = type(instance)
    alias = router.db_for_write(model, instance=instance)
    connection = connections[alias]
    sql, fields, returned, reader = _insert_plan(model, alias, connection.vendor)
    params = [field.get_db_prep_save(field.pre_save(instance, True), connection)
              for field in fields]
    cursor = connection.cursor()
    try:
        cursor.execute(sql, params)
        if returned is not None:
            state = _pipelined(connection)
            if state is None:
                _set_returned(instance, returned, reader, connection, cursor)
            else:
                state.reads.append(
                    (cursor, partial(_set_returned, instance, returned, reader, connection)))
                cursor = None  # atomic() reads it once the results are in, then closes it
    finally:
        if cursor is not None:
            cursor.close()
    instance._state.adding = False
    instance._state.db = alias
    return instance


def _set_returned(instance: Model, returned: Field, reader, connection, cursor) -> None:
    row = cursor.fetchone()
    value = row[0] if row else cursor.lastrowid
    setattr(instance, returned.attname, _read(value, reader, connection))


@lru_cache(maxsize=64)
def _update_plan(model: type[Model], alias: str, vendor: str, field_names: tuple[str, ...]
                 ) -> tuple[str, tuple[Field, ...]]:
    connection = connections[alias]
    quote = connection.ops.quote_name
    meta = model._meta
    fields = tuple(meta.get_field(name) for name in field_names)
    assignments = ", ".join(f"{quote(field.column)} = %s" for field in fields)
    sql = (f"UPDATE {_quoted_table(model, connection)} SET {assignments} "
           f"WHERE {quote(meta.pk.column)} = %s")
    return sql, fields


def update(instance: Model, field_names: Sequence[str]) -> None:
    """UPDATE those fields of an existing row, as `save(update_fields=...)` would (auto_now
    fields among them get the current time); raises DatabaseError if the row is gone."""
    model = type(instance)
    alias = router.db_for_write(model, instance=instance)
    connection = connections[alias]
    sql, fields = _update_plan(model, alias, connection.vendor, tuple(field_names))
    params = [field.get_db_prep_save(field.pre_save(instance, False), connection)
              for field in fields]
    params.append(model._meta.pk.get_db_prep_value(instance.pk, connection))
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        state = _pipelined(connection)
        if state is None:
            _check_updated(model, instance.pk, cursor)
        else:
            # The row count comes with the pipeline's next sync; checked before COMMIT.
            state.checks.append((cursor.cursor, partial(_check_updated, model, instance.pk)))


def _check_updated(model: type[Model], pk, cursor) -> None:
    if cursor.rowcount != 1:
        raise DatabaseError(f"{model.__name__} {pk} was not updated "
                            f"({cursor.rowcount} rows matched).")


@lru_cache(maxsize=16)
def _join_plan(model: type[Model], relation: str, where: str, alias: str, vendor: str):
    connection = connections[alias]
    quote = connection.ops.quote_name
    foreign_key = model._meta.get_field(relation)
    related = foreign_key.related_model
    own_fields = tuple(model._meta.concrete_fields)
    related_fields = tuple(related._meta.concrete_fields)
    own_table, related_table = quote(model._meta.db_table), quote(related._meta.db_table)
    columns = [f"{own_table}.{quote(field.column)}" for field in own_fields]
    columns += [f"{related_table}.{quote(field.column)}" for field in related_fields]
    target = foreign_key.target_field
    where_field = model._meta.get_field(where)
    sql = (f"SELECT {', '.join(columns)} FROM {own_table} INNER JOIN {related_table} "
           f"ON {own_table}.{quote(foreign_key.column)} = "
           f"{related_table}.{quote(target.column)} "
           f"WHERE {own_table}.{quote(where_field.column)} = %s")
    readers = ((position, _reader(field, connection))
               for position, field in enumerate(own_fields + related_fields))
    readers = tuple((position, reader) for position, reader in readers if reader[0])
    return sql, len(own_fields), readers, foreign_key.name, related, where_field


def select_with_related(model: type[Model], relation: str, where: str, value) -> list[Model]:
    """`model.objects.filter(**{where: value}).select_related(relation)`, in one statement
    whose SQL is built once. `relation` must be a non-null ForeignKey."""
    alias = router.db_for_read(model)
    connection = connections[alias]
    sql, split, readers, cache_name, related, where_field = _join_plan(
        model, relation, where, alias, connection.vendor)
    with connection.cursor() as cursor:
        cursor.execute(sql, [where_field.get_db_prep_value(value, connection)])
        rows = cursor.fetchall()
    instances = []
    for row in rows:
        values = list(row)
        for position, reader in readers:
            values[position] = _read(values[position], reader, connection)
        own = model.from_db(alias, None, values[:split])
        setattr(own, cache_name, related.from_db(alias, None, values[split:]))
        instances.append(own)
    return instances
