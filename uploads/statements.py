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
"""

from __future__ import annotations

from functools import lru_cache
from typing import Sequence

from django.db import DatabaseError, connections, router
from django.db.models import Field, Model
from django.db.models.expressions import Col


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
    """INSERT a new row for `instance`, as `instance.save(force_insert=True)` would."""
    model = type(instance)
    alias = router.db_for_write(model, instance=instance)
    connection = connections[alias]
    sql, fields, returned, reader = _insert_plan(model, alias, connection.vendor)
    params = [field.get_db_prep_save(field.pre_save(instance, True), connection)
              for field in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        if returned is not None:
            row = cursor.fetchone()
            value = row[0] if row else cursor.lastrowid
            setattr(instance, returned.attname, _read(value, reader, connection))
    instance._state.adding = False
    instance._state.db = alias
    return instance


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
        if cursor.rowcount != 1:
            raise DatabaseError(f"{model.__name__} {instance.pk} was not updated "
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
