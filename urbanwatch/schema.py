"""The SQL of each device kind, rendered from its spec (`urbanwatch/kinds/`).

Migrations are committed SQL files and never change once applied, so this module does not
build the schema at run time. It renders what a kind needs, step by step, in the exact text
the migrations hold (tests/test_schema.py checks every committed kind against it), and writes
the migration for a change:

    python -m urbanwatch.schema new-kind KIND        # a kind added in urbanwatch/kinds/
    python -m urbanwatch.schema new-columns KIND     # fields added to a kind's reading model

Each writes the next numbered files under urbanwatch/sql/ (common, plain/, timescale/).
Changing a kind's rollup aggregates is not generated: it needs a hand-written migration
(a TimescaleDB continuous aggregate is dropped and rebuilt from raw readings still kept).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from urbanwatch.kinds import SPECS, Aggregate, KindSpec

Step = Literal["readings", "timeseries", "district_rollups"]
Storage = Literal["plain", "timescale"]
SQL_DIR = Path(__file__).parent / "sql"
ORIGIN = "TIMESTAMPTZ '2000-01-03 00:00:00+00'"  # TimescaleDB's bucket origin, for date_bin
_SQL_TYPES = {bool: "boolean", int: "integer", float: "double precision", str: "text"}


def column_type(annotation: Any) -> str:
    """`float | None` -> double precision; Literal and str -> text."""
    args = [a for a in getattr(annotation, "__args__", (annotation,)) if a is not type(None)]
    return _SQL_TYPES.get(args[0], "text") if args else "text"


def reading_columns(spec: KindSpec) -> list[tuple[str, str]]:
    fields = spec.reading.model_fields
    return [(name, column_type(fields[name].annotation)) for name in spec.measurement_fields()]


# --- 002 readings (both storages) ---------------------------------------------------


def readings_table(spec: KindSpec) -> str:
    k = spec.name
    columns = "".join(f"    {name} {sql_type},\n" for name, sql_type in reading_columns(spec))
    return (
        f"CREATE TABLE IF NOT EXISTS {k}_readings (\n"
        "    ts          timestamptz NOT NULL,\n"
        "    device_id   text NOT NULL,\n"
        "    received_at timestamptz NOT NULL,\n"
        f"{columns}"
        "    extra       jsonb  -- fields outside the contract, kept as sent\n"
        ");\n"
        f"CREATE UNIQUE INDEX IF NOT EXISTS {k}_readings_device_ts_key "
        f"ON {k}_readings (device_id, ts DESC);\n"
    )


# --- 003/004 rollups, plain PostgreSQL ----------------------------------------------


def _select_list(spec: KindSpec, level: Literal["device", "district"]) -> str:
    return ",\n".join(f"       {a.expr} AS {a.name}" for a in spec.rollup_columns(level))


# The type PostgreSQL gives an aggregate of a column of each type.
_RESULT_TYPES = {
    ("sum", "integer"): "bigint",
    ("avg", "integer"): "numeric",
    ("min", "integer"): "integer",
    ("max", "integer"): "integer",
    ("min", "boolean"): "boolean",
    ("max", "boolean"): "boolean",
    ("min", "text"): "text",
    ("max", "text"): "text",
}
_CALL = re.compile(r"^(\w+)\((\w+)\)$")


def aggregate_type(spec: KindSpec, aggregate: Aggregate) -> str:
    """The SQL type of a rollup column: counts are bigint, sums/averages/extremes follow the
    column's type (double precision for the float fields); `sql_type` overrides."""
    if aggregate.sql_type:
        return aggregate.sql_type
    if aggregate.expr.startswith("count("):
        return "bigint"
    call = _CALL.match(aggregate.expr)
    if call is None:
        raise ValueError(f"{spec.name}.{aggregate.name}: give sql_type for {aggregate.expr!r}")
    func, column = call.groups()
    types = dict(reading_columns(spec))
    if column not in types:
        raise ValueError(f"{spec.name}.{aggregate.name}: no field {column!r} in the reading")
    return _RESULT_TYPES.get((func, types[column]), "double precision")


def _returns(spec: KindSpec, level: Literal["device", "district"]) -> str:
    key = "device_id text" if level == "device" else "district text"
    cols = ", ".join(f"{a.name} {aggregate_type(spec, a)}" for a in spec.rollup_columns(level))
    return f"RETURNS TABLE (bucket timestamptz, {key}, {cols})"


_EXECUTE_NOTE = (
    "    -- EXECUTE plans with the actual bounds, so the view's short live tail uses the\n"
    "    -- BRIN index (a SQL function called from the view is not inlined, and its\n"
    "    -- generic plan scanned the whole table: 290 ms instead of a few).\n"
)


def _plain_function(spec: KindSpec, level: Literal["device", "district"]) -> str:
    k = spec.name
    if level == "device":
        name, head = f"{k}_hourly_between", f"date_bin(INTERVAL '1 hour', ts, {ORIGIN})"
        source, where = f"FROM {k}_readings\nWHERE ts >= $1 AND ts < $2\n", ", device_id"
    else:
        name, head = f"{k}_district_hourly_between", f"date_bin(INTERVAL '1 hour', r.ts, {ORIGIN})"
        source = (
            f"FROM {k}_readings r JOIN devices d ON d.device_id = r.device_id\n"
            "WHERE r.ts >= $1 AND r.ts < $2\n"
        )
        where = ", d.district"
    return (
        f"CREATE OR REPLACE FUNCTION {name}(lo timestamptz, hi timestamptz)\n"
        f"{_returns(spec, level)}\n"
        "LANGUAGE plpgsql STABLE AS $$\n"
        "BEGIN\n"
        f"{_EXECUTE_NOTE}"
        "    RETURN QUERY EXECUTE $q$\n"
        f"SELECT {head} AS bucket{where},\n"
        f"{_select_list(spec, level)}\n"
        f"{source}"
        "GROUP BY 1, 2\n"
        "$q$ USING lo, hi;\n"
        "END\n"
        "$$;\n"
    )


def _watermark(k: str) -> str:
    return f"(SELECT upto FROM rollup_watermarks WHERE kind = '{k}')"


def _plain_view(k: str, level: str) -> str:
    return (
        f"CREATE OR REPLACE VIEW {k}{level} AS\n"
        f"SELECT * FROM {k}{level}_data\n"
        f"WHERE bucket < COALESCE({_watermark(k)}, '-infinity')\n"
        "UNION ALL\n"
        f"SELECT * FROM {k}{level}_between(\n"
        f"    COALESCE({_watermark(k)}, '-infinity'), 'infinity');\n"
    )


def plain_timeseries(spec: KindSpec) -> str:
    k = spec.name
    return (
        f"CREATE INDEX IF NOT EXISTS {k}_readings_ts_brin ON {k}_readings "
        "USING brin (ts) WITH (autosummarize = on);\n\n"
        f"{_plain_function(spec, 'device')}\n"
        f"CREATE TABLE IF NOT EXISTS {k}_hourly_data AS "
        f"SELECT * FROM {k}_hourly_between(NULL, NULL) WITH NO DATA;\n"
        f"CREATE UNIQUE INDEX IF NOT EXISTS {k}_hourly_data_key "
        f"ON {k}_hourly_data (device_id, bucket);\n"
        f"CREATE INDEX IF NOT EXISTS {k}_hourly_data_bucket_idx ON {k}_hourly_data (bucket);\n"
        f"INSERT INTO rollup_watermarks (kind) VALUES ('{k}') ON CONFLICT DO NOTHING;\n\n"
        f"{_plain_view(k, '_hourly')}\n"
        f"CREATE OR REPLACE TRIGGER {k}_readings_note_late\n"
        f"    AFTER INSERT ON {k}_readings REFERENCING NEW TABLE AS new_rows\n"
        f"    FOR EACH STATEMENT EXECUTE FUNCTION urbanwatch_note_late_rows('{k}');\n"
    )


def plain_district_rollups(spec: KindSpec) -> str:
    k = spec.name
    return (
        f"{_plain_function(spec, 'district')}\n"
        f"CREATE TABLE IF NOT EXISTS {k}_district_hourly_data AS\n"
        f"    SELECT * FROM {k}_district_hourly_between(NULL, NULL) WITH NO DATA;\n"
        f"CREATE UNIQUE INDEX IF NOT EXISTS {k}_district_hourly_data_key\n"
        f"    ON {k}_district_hourly_data (district, bucket);\n"
        f"INSERT INTO {k}_district_hourly_data\n"
        f"SELECT * FROM {k}_district_hourly_between(\n"
        f"    '-infinity', COALESCE({_watermark(k)}, '-infinity'));\n\n"
        f"{_plain_view(k, '_district_hourly')}"
    )


# --- 003/004 rollups, TimescaleDB ----------------------------------------------------


def _cagg(spec: KindSpec, level: Literal["device", "district"]) -> str:
    k = spec.name
    if level == "device":
        view, head, key = f"{k}_hourly", "time_bucket(INTERVAL '1 hour', ts)", "device_id"
        source = f"FROM {k}_readings\n"
    else:
        view, head, key = (
            f"{k}_district_hourly",
            "time_bucket(INTERVAL '1 hour', r.ts)",
            "d.district",
        )
        source = f"FROM {k}_readings r JOIN devices d ON d.device_id = r.device_id\n"
    return (
        f"CREATE MATERIALIZED VIEW {view}\n"
        "    WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS\n"
        f"SELECT {head} AS bucket, {key},\n"
        f"{_select_list(spec, level)}\n"
        f"{source}"
        "GROUP BY 1, 2\n"
        "WITH NO DATA;\n"
        f"SELECT add_continuous_aggregate_policy('{view}',\n"
        "    start_offset => INTERVAL '4 days', end_offset => INTERVAL '1 hour',\n"
        "    schedule_interval => INTERVAL '15 minutes');\n"
    )


def timescale_timeseries(spec: KindSpec) -> str:
    t = f"{spec.name}_readings"
    return (
        f"SELECT create_hypertable('{t}', by_range('ts', INTERVAL '1 day'), "
        "migrate_data => true);\n"
        f"ALTER TABLE {t} SET (timescaledb.compress,\n"
        "    timescaledb.compress_segmentby = 'device_id', "
        "timescaledb.compress_orderby = 'ts DESC');\n"
        f"SELECT add_compression_policy('{t}', INTERVAL '7 days');\n"
        f"SELECT add_retention_policy('{t}', INTERVAL '400 days');\n"
        f"{_cagg(spec, 'device')}"
    )


def timescale_district_rollups(spec: KindSpec) -> str:
    return _cagg(spec, "district")


def render(spec: KindSpec, step: Step, storage: Storage) -> str:
    """A kind's SQL for one migration step of one storage (`readings` is the same for both)."""
    if step == "readings":
        return readings_table(spec)
    plain = storage == "plain"
    if step == "timeseries":
        return plain_timeseries(spec) if plain else timescale_timeseries(spec)
    return plain_district_rollups(spec) if plain else timescale_district_rollups(spec)


# --- migrations for changes ------------------------------------------------------------


def kinds_check(kinds: Iterable[str]) -> str:
    listed = ", ".join(f"'{k}'" for k in kinds)
    return (
        "ALTER TABLE devices DROP CONSTRAINT IF EXISTS devices_kind_check,\n"
        f"    ADD CONSTRAINT devices_kind_check CHECK (kind IN ({listed}));\n"
    )


def new_kind_sql(spec: KindSpec) -> dict[str, str]:
    """The migration files for a new kind: {'': common, 'plain': ..., 'timescale': ...}."""
    header = f"-- Device kind {spec.name} ({spec.title}), generated by urbanwatch.schema.\n\n"
    return {
        "": header + kinds_check(SPECS) + "\n" + readings_table(spec),
        "plain": header + plain_timeseries(spec) + "\n" + plain_district_rollups(spec),
        "timescale": header + timescale_timeseries(spec) + "\n" + timescale_district_rollups(spec),
    }


def new_columns_sql(spec: KindSpec, existing: Iterable[str]) -> str:
    """ALTER TABLE for the reading fields the table lacks (`existing`: its column names)."""
    have = set(existing)
    missing = [(n, t) for n, t in reading_columns(spec) if n not in have]
    return "".join(
        f"ALTER TABLE {spec.name}_readings ADD COLUMN IF NOT EXISTS {n} {t};\n" for n, t in missing
    )


_FILE = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")


def next_version(root: Path = SQL_DIR) -> int:
    versions = [
        int(m.group(1))
        for folder in (root, root / "plain", root / "timescale")
        for f in folder.glob("*.sql")
        if (m := _FILE.match(f.name))
    ]
    return max(versions, default=0) + 1


def write_migration(files: dict[str, str], name: str, root: Path = SQL_DIR) -> list[Path]:
    """Write a step (common SQL) and, if given, its two storage variants, numbered in turn."""
    written = []
    version = next_version(root)
    common = files.get("")
    if common:
        path = root / f"{version:03d}_{name}.sql"
        path.write_text(common, encoding="utf-8")
        written.append(path)
        version += 1
    if files.get("plain") or files.get("timescale"):
        for storage in ("plain", "timescale"):
            path = root / storage / f"{version:03d}_{name}_rollups.sql"
            path.write_text(files[storage], encoding="utf-8")
            written.append(path)
    return written


def _table_columns(database_url: str, kind: str) -> list[str]:
    import psycopg

    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = %s",
            (f"{kind}_readings",),
        ).fetchall()
    return [r[0] for r in rows]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m urbanwatch.schema",
        description="Write the migration for a new device kind or new reading fields "
        "(urbanwatch/kinds/). Review the files, then commit them.",
    )
    sub = parser.add_subparsers(dest="action", required=True)
    p = sub.add_parser("new-kind", help="migration for a kind added to urbanwatch/kinds/")
    p.add_argument("kind", choices=sorted(SPECS))
    p = sub.add_parser("new-columns", help="ALTER TABLE for fields added to a reading model")
    p.add_argument("kind", choices=sorted(SPECS))
    p.add_argument(
        "--database-url",
        required=True,
        help="a database migrated to the current schema, to compare the table with the model",
    )
    args = parser.parse_args(argv)
    spec = SPECS[args.kind]
    if args.action == "new-kind":
        paths = write_migration(new_kind_sql(spec), f"kind_{spec.name}")
    else:
        sql = new_columns_sql(spec, _table_columns(args.database_url, spec.name))
        if not sql:
            print(f"{spec.name}_readings already has every field of the model")
            return 0
        paths = write_migration({"": sql}, f"{spec.name}_columns")
    for path in paths:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
