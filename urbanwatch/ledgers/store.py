"""Ledger rows into the database: validated, upserted by natural key, every change audited.

Each good row is written in its own savepoint, so a row the database refuses (a cover that
is not in the inventory, a frozen baseline) is reported by line and field and the others are
kept. A row equal to what is stored is left alone: re-importing a file changes nothing and
writes no audit entries.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import psycopg
from tqdm import tqdm

from urbanwatch import audit
from urbanwatch.ledgers.base import LedgerSpec, validate_row
from urbanwatch.ledgers.files import ParsedFile
from urbanwatch.queries import ledgers as queries

_KEY_DETAIL = re.compile(r"Key \((\w+)\)")


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)  # (line, "field: reason")
    warnings: list[str] = field(default_factory=list)

    @property
    def stored(self) -> int:
        return self.created + self.updated + self.unchanged


def key_of(spec: LedgerSpec, row: Mapping[str, Any]) -> str:
    return "/".join(str(row[k]) for k in spec.key)


def database_reason(exc: psycopg.Error) -> str:
    """The refused field and why, from a constraint or trigger error."""
    diag = exc.diag
    message = diag.message_primary or str(exc)
    if isinstance(exc, psycopg.errors.ForeignKeyViolation):
        match = _KEY_DETAIL.search(diag.message_detail or "")
        column = match.group(1) if match else diag.constraint_name or "row"
        return f"{column}: not found in {diag.table_name and 'the referenced ledger'}" + (
            f" ({diag.message_detail})" if diag.message_detail else ""
        )
    if diag.column_name:
        return f"{diag.column_name}: {message}"
    if isinstance(exc, psycopg.errors.CheckViolation) and diag.constraint_name:
        column = diag.constraint_name.removeprefix(f"{diag.table_name}_").removesuffix("_check")
        if ":" not in message:
            return f"{column}: {message}"
    return message


def prepare(
    spec: LedgerSpec, raw: Mapping[str, Any], districts: Mapping[str, str]
) -> dict[str, Any]:
    """Validate one row and resolve its district name to a code; ValueError naming the field."""
    model = validate_row(spec, raw)
    # Only the file's columns: a column the file lacks keeps its stored value.
    row = {k: v for k, v in model.model_dump().items() if k in raw}
    if "district" in row:
        name = row["district"]
        if name is None or name not in districts:
            raise ValueError(f"district: unknown district {name!r}")
        row["district"] = districts[name]
    return row


def store_row(
    conn: psycopg.Connection, spec: LedgerSpec, row: dict[str, Any], actor: audit.Actor
) -> str:
    """Insert, update or leave one row; 'created', 'updated' or 'unchanged'. Audited."""
    before = queries.get_row(conn, spec, row, lock=True)
    rid = key_of(spec, row)
    if before is None:
        queries.insert_row(conn, spec, row)
        audit.record(conn, actor, "create", f"ledger:{spec.name}", rid, after=_json(row))
        return "created"
    changed = {k: v for k, v in row.items() if before.get(k) != v}
    if not changed:
        return "unchanged"
    queries.update_row(conn, spec, row, changed)
    audit.record(
        conn,
        actor,
        "update",
        f"ledger:{spec.name}",
        rid,
        before=_json({k: before.get(k) for k in changed}),
        after=_json(changed),
    )
    return "updated"


def _json(row: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in row.items()}


def import_rows(
    conn: psycopg.Connection,
    spec: LedgerSpec,
    parsed: ParsedFile,
    actor: audit.Actor,
    *,
    progress: bool = False,
) -> ImportReport:
    """Store every good row of `parsed` (one transaction, a savepoint per row)."""
    report = ImportReport(warnings=list(parsed.warnings))
    districts = queries.district_names(conn)
    seen: dict[str, int] = {}
    with conn.transaction():
        for line, raw in tqdm(parsed.rows, disable=not progress, unit="row", desc=spec.name):
            try:
                row = prepare(spec, raw, districts)
            except ValueError as exc:
                report.errors.append((line, str(exc)))
                continue
            rid = key_of(spec, row)
            if rid in seen:
                report.errors.append(
                    (line, f"{', '.join(spec.key)}: {rid!r} repeats line {seen[rid]}")
                )
                continue
            seen[rid] = line
            try:
                with conn.transaction():
                    outcome = store_row(conn, spec, row, actor)
            except psycopg.errors.IntegrityError as exc:
                report.errors.append((line, database_reason(exc)))
                continue
            setattr(report, outcome, getattr(report, outcome) + 1)
        audit.record(
            conn,
            actor,
            "import",
            f"ledger:{spec.name}",
            None,
            detail={
                "created": report.created,
                "updated": report.updated,
                "unchanged": report.unchanged,
                "bad_rows": len(report.errors),
            },
        )
    return report
