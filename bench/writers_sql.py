"""The third way of bench/writers.py: PostgreSQL writes each row of `insight_rows` in the shape of
its serializer (`json_build_object`), and the page as one JSON array (`json_agg`). It repeats every
field of the shapes in SQL, and what DRF does to a time stamp."""

from __future__ import annotations

import collections

from rest_framework import serializers

from infra.db.compiled import Prepared


def _utc_iso(column: str) -> str:
    """DRF's ISO 8601 of a time stamp in UTC: a `Z`, microseconds only when there are some."""
    return (
        f"to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS') || CASE WHEN "
        f"date_trunc('second', {column}) = {column} THEN '' ELSE to_char({column} AT TIME ZONE 'UTC', '.US') END || 'Z'"
    )


def _user(column: str) -> str:
    keys = ("id", "uuid", "email", "first_name", "last_name")
    built = ", ".join(f"'{key}', {column}->'{key}'" for key in keys)
    return (
        f"CASE WHEN {column} IS NULL THEN NULL ELSE json_build_object({built}, 'hedgehog_config', NULL) END"
    )


def _tiles(each: str) -> str:
    return f"(SELECT coalesce(json_agg({each} ORDER BY o), '[]') FROM unnest(r.\"live_tiles\") WITH ORDINALITY AS x(t, o))"


# Each field of the two shapes as PostgreSQL writes it from a row of `insight_rows` (`r`): the
# serializers' shape again, in SQL. `last_refresh` holds the fingerprint, replaced in Python.
SQL_FIELDS = {
    "id": 'r."id"', "short_id": 'r."short_id"', "name": 'r."name"', "derived_name": 'r."derived_name"',
    "filters": "'{}'::json", "query": 'r."query"',
    "dashboards": _tiles("t->'dashboard_id'"),
    "dashboard_tiles": _tiles("json_build_object('id', t->'id', 'dashboard_id', t->'dashboard_id', 'deleted', false)"),
    "description": 'r."description"', "last_refresh": 'r."results_fingerprint"', "refreshing": "false",
    "saved": 'r."saved"', "tags": 'to_json(r."tag_names")', "favorited": 'r."favorited"',
    "created_at": _utc_iso('r."created_at"'), "created_by": _user('r."created_by"'),
    "last_modified_at": _utc_iso('r."last_modified_at"'), "last_modified_by": _user('r."last_modified_by"'),
    "updated_at": _utc_iso('r."updated_at"'), "user_access_level": 'r."user_access_level"',
    "last_viewed_at": _utc_iso('r."last_viewed_at"'),
    "order": 'r."order"', "deleted": 'r."deleted"', "result": "NULL", "is_cached": "false",
    "query_status": "NULL", "timezone": "%s::text", "cache_target_age": "NULL",
    "next_allowed_client_refresh": "NULL", "hasMore": "NULL", "columns": "NULL", "hogql": "NULL",
    "types": "NULL", "resolved_date_range": "NULL", "is_sample": "false", "alerts": "'[]'::json",
    "effective_restriction_level": "21",
    "effective_privilege_level": "CASE WHEN r.\"user_access_level\" = 'editor' THEN 37 ELSE 21 END",
}  # fmt: skip


def sql_json_statement(
    rows: Prepared, serializer_class: type[serializers.Serializer], *, timezone: str
) -> Prepared:
    """`rows`' statement wrapped in one returning the page as a JSON array of objects in the shape
    of `serializer_class` (its fields in order, each written by SQL_FIELDS), as text, with the
    project's `timezone` (fixed here: one project; the service's would be a value of each run)."""
    fields = [name for name, field in serializer_class().fields.items() if not field.write_only]
    built = ", ".join(f"'{name}', {SQL_FIELDS[name]}" for name in fields)
    columns = ", ".join(f'"{column}"' for column in rows.row_type._fields)  # type: ignore[attr-defined]
    # The rows come in the inner statement's order (its ORDER BY and LIMIT), which json_agg keeps.
    sql = (
        f"SELECT coalesce(json_agg(json_build_object({built})), '[]')::text FROM ({rows.sql}) AS r({columns})"
    )
    timezones = sum(1 for name in fields if SQL_FIELDS[name] == "%s::text")
    page = collections.namedtuple("Page", ["results"])
    return Prepared(sql=sql, params=(*(timezone,) * timezones, *rows.params), converters=(), row_type=page)
