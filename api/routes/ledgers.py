"""/ledgers: the plan's 台账 — list, read, upsert and delete rows, import and export files."""

from __future__ import annotations

from typing import Annotated, Any

import psycopg
from fastapi import APIRouter, HTTPException, Query, Request, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel

from api.auth import Principal, require
from api.deps import Conn, field_error
from urbanwatch import audit
from urbanwatch.identity.roles import Role
from urbanwatch.ledgers import files, store
from urbanwatch.ledgers.base import LedgerSpec, all_ledgers, get_ledger
from urbanwatch.queries import ledgers as queries

router = APIRouter(prefix="/ledgers", tags=["ledgers"])
Viewer = Annotated[Principal, require(Role.viewer)]
Operator = Annotated[Principal, require(Role.operator)]
# An uploaded ledger larger than this is not a spreadsheet a clerk keeps.
MAX_UPLOAD_BYTES = 50 * 1024 * 1024
MEDIA = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


class LedgerInfo(BaseModel):
    name: str
    title_zh: str
    title_en: str
    key: list[str]
    rows: int
    columns: list[dict[str, Any]]


class RowError(BaseModel):
    line: int
    field: str
    message: str


class ImportResult(BaseModel):
    created: int
    updated: int
    unchanged: int
    errors: list[RowError]
    warnings: list[str]


def _ledger(name: str) -> LedgerSpec:
    try:
        return get_ledger(name)
    except KeyError:
        raise HTTPException(404, detail=f"ledger {name!r} not found") from None


def _json(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in row.items()}


@router.get("", response_model=list[LedgerInfo])
def list_ledgers(conn: Conn, principal: Viewer) -> list[LedgerInfo]:
    return [
        LedgerInfo(
            name=s.name, title_zh=s.title_zh, title_en=s.title_en, key=list(s.key),
            rows=queries.count_rows(conn, s),
            columns=[{"name": c.name, "header_zh": c.label_zh, "header_en": c.label_en,
                      "required": c.required, "help": c.help} for c in s.columns],
        )
        for s in all_ledgers().values()
    ]  # fmt: skip


@router.get("/{name}/rows")
def list_rows(
    name: str,
    conn: Conn,
    principal: Viewer,
    district: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10000)] = 1000,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[dict[str, Any]]:
    rows = queries.iter_rows(conn, _ledger(name), district=district)
    return [_json(r) for i, r in enumerate(rows) if offset <= i < offset + limit]


@router.put("/{name}/rows")
def upsert_row(name: str, body: dict[str, Any], conn: Conn, principal: Operator) -> dict[str, Any]:
    """Create or update one row by the ledger's natural key (the same checks as an import;
    cells as in a file, or JSON numbers and booleans). Audited."""
    spec = _ledger(name)
    unknown = sorted(set(body) - set(spec.names))
    if unknown:
        raise field_error(422, ["body", unknown[0]], "not a field of this ledger")
    try:
        row = store.prepare(spec, body, queries.district_names(conn))
    except ValueError as exc:
        field, _, message = str(exc).partition(": ")
        raise field_error(422, ["body", field], message) from None
    try:
        with conn.transaction():
            outcome = store.store_row(conn, spec, row, principal.audit_actor())
    except psycopg.errors.IntegrityError as exc:
        field, _, message = store.database_reason(exc).partition(": ")
        raise field_error(422, ["body", field], message) from None
    stored = queries.get_row(conn, spec, row)
    return {"outcome": outcome, "row": _json(stored or {})}


@router.delete("/{name}/rows")
def delete_row(name: str, request: Request, conn: Conn, principal: Operator) -> dict[str, Any]:
    """Delete the row whose natural key the query names (e.g. ?cover_id=MH-1). Audited."""
    spec = _ledger(name)
    key = {k: request.query_params.get(k) for k in spec.key}
    missing = [k for k, v in key.items() if not v]
    if missing:
        raise field_error(422, ["query", missing[0]], "required: the row's natural key")
    try:
        before = queries.get_row(conn, spec, key)
        if before is None:
            raise HTTPException(
                404, detail=f"no {spec.name} row {'/'.join(map(str, key.values()))}"
            )
        with conn.transaction():
            queries.delete_row(conn, spec, key)
            audit.record(conn, principal.audit_actor(), "delete", f"ledger:{spec.name}",
                         store.key_of(spec, before), before=_json(before))  # fmt: skip
    except (psycopg.errors.DataError, psycopg.errors.IntegrityError) as exc:
        raise HTTPException(409, detail=str(exc.diag.message_primary or exc)) from None
    return {"deleted": _json(before)}


@router.post("/{name}/import", response_model=ImportResult)
async def import_file(name: str, file: UploadFile, conn: Conn, principal: Operator) -> ImportResult:
    """Upload a .csv or .xlsx file: good rows stored, each bad row reported by line and field."""
    spec = _ledger(name)
    data = await file.read(MAX_UPLOAD_BYTES + 1)
    if len(data) > MAX_UPLOAD_BYTES:
        raise field_error(413, ["body", "file"], f"larger than {MAX_UPLOAD_BYTES} bytes")
    fmt = "xlsx" if (file.filename or "").lower().endswith(".xlsx") else "csv"
    try:
        parsed = files.read_xlsx(spec, data) if fmt == "xlsx" else files.read_csv(spec, data)
    except ValueError as exc:
        raise field_error(422, ["body", "file"], str(exc)) from None
    report = store.import_rows(conn, spec, parsed, principal.audit_actor())
    errors = []
    for line, reason in report.errors:
        field, _, message = reason.partition(": ")
        errors.append(RowError(line=line, field=field, message=message or reason))
    return ImportResult(
        created=report.created,
        updated=report.updated,
        unchanged=report.unchanged,
        errors=errors,
        warnings=report.warnings,
    )


@router.get("/{name}/export")
def export_file(
    name: str, conn: Conn, principal: Viewer, format: str = "xlsx", district: str | None = None
) -> Response:
    spec = _ledger(name)
    if format not in MEDIA:
        raise field_error(422, ["query", "format"], "csv or xlsx")
    rows = list(queries.iter_rows(conn, spec, district=district))
    data = files.write_xlsx(spec, rows) if format == "xlsx" else files.write_csv(spec, rows)
    headers = {"Content-Disposition": f'attachment; filename="{spec.name}.{format}"'}
    return Response(data, media_type=MEDIA[format], headers=headers)


@router.get("/{name}/template")
def template(name: str, principal: Viewer, format: str = "xlsx") -> Response:
    spec = _ledger(name)
    if format not in MEDIA:
        raise field_error(422, ["query", "format"], "csv or xlsx")
    data = files.write_xlsx(spec, []) if format == "xlsx" else files.write_csv(spec, [])
    headers = {"Content-Disposition": f'attachment; filename="{spec.name}-template.{format}"'}
    return Response(data, media_type=MEDIA[format], headers=headers)
