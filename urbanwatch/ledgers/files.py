"""Ledger files: CSV (UTF-8, with or without BOM; GB18030 as saved by Chinese Excel) and
Excel .xlsx in, the same out, and an empty template per ledger.

Rows come out as (line, {field: raw cell}): the line is the spreadsheet's row number (the
header is line 1), what a city clerk sees beside the row. Blank rows are skipped.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import openpyxl
from openpyxl.utils.exceptions import InvalidFileException

from urbanwatch.ledgers.base import LedgerSpec, header_map

FORMATS = ("csv", "xlsx")


@dataclass
class ParsedFile:
    rows: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def file_format(path: Path) -> str:
    suffix = path.suffix.lower().lstrip(".")
    if suffix not in FORMATS:
        raise ValueError(f"{path.name}: give a .csv or .xlsx file (not {suffix or 'no suffix'})")
    return suffix


def _decode(data: bytes) -> str:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ValueError("not UTF-8 or GB18030 text")


def _mapped(
    spec: LedgerSpec, header: Sequence[Any], records: Iterable[tuple[int, Sequence[Any]]]
) -> ParsedFile:
    mapping, warnings = header_map(spec, list(header))
    parsed = ParsedFile(warnings=warnings)
    for line, cells in records:
        if all(c is None or (isinstance(c, str) and not c.strip()) for c in cells):
            continue
        row = {name: cells[i] if i < len(cells) else None for i, name in mapping.items()}
        parsed.rows.append((line, row))
    return parsed


def _csv_records(text: str) -> Iterator[tuple[int, list[str]]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    start = reader.line_num + 1
    for cells in reader:
        yield start, cells  # the line the record starts on (a quoted cell may span lines)
        start = reader.line_num + 1


def read_csv(spec: LedgerSpec, data: bytes) -> ParsedFile:
    text = _decode(data)
    records = _csv_records(text)
    try:
        first = next(records)
    except StopIteration:
        raise ValueError("the file is empty (no header line)") from None
    except csv.Error as exc:
        raise ValueError(f"line 1: {exc}") from None
    try:
        return _mapped(spec, first[1], records)
    except csv.Error as exc:
        raise ValueError(f"not readable as CSV: {exc}") from None


def read_xlsx(spec: LedgerSpec, data: bytes) -> ParsedFile:
    """The first sheet (or one named after the ledger)."""
    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (InvalidFileException, KeyError, OSError, ValueError) as exc:
        raise ValueError(f"not an Excel .xlsx workbook: {exc}") from None
    try:
        names = [spec.title_zh, spec.name]
        sheet = next((book[n] for n in names if n in book.sheetnames), book.worksheets[0])
        rows = sheet.iter_rows(values_only=True)
        header = next(rows, None)
        if header is None:
            raise ValueError("the first sheet is empty (no header row)")
        return _mapped(spec, header, ((i, r) for i, r in enumerate(rows, start=2)))
    finally:
        book.close()


def read_file(spec: LedgerSpec, path: Path) -> ParsedFile:
    data = path.read_bytes()
    return read_xlsx(spec, data) if file_format(path) == "xlsx" else read_csv(spec, data)


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, date):
        return value.isoformat()
    return value


def write_csv(spec: LedgerSpec, rows: Iterable[dict[str, Any]]) -> bytes:
    """UTF-8 with a BOM, so Excel opens the Chinese headers correctly."""
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow([c.label_zh for c in spec.columns])
    for row in rows:
        writer.writerow([_cell(row.get(c.name)) for c in spec.columns])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def append_literal(sheet: Any, values: list[Any]) -> None:
    """Append a row; text that starts with '=' stays text (openpyxl would make it a formula)."""
    sheet.append(values)
    for cell in sheet[sheet.max_row]:
        if isinstance(cell.value, str) and cell.value.startswith("="):
            cell.data_type = "s"


def write_xlsx(spec: LedgerSpec, rows: Iterable[dict[str, Any]], *, notes: bool = True) -> bytes:
    """One sheet named after the ledger, plus a 说明 (notes) sheet describing each column."""
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = spec.title_zh
    sheet.append([c.label_zh for c in spec.columns])
    for row in rows:
        append_literal(sheet, [_cell(row.get(c.name)) for c in spec.columns])
    for i, col in enumerate(spec.columns, start=1):
        sheet.column_dimensions[openpyxl.utils.get_column_letter(i)].width = max(
            12, 2 * len(col.label_zh) + 2
        )
    if notes:
        info = book.create_sheet("说明 notes")
        info.append(["列名 header", "字段 field", "English", "必填 required", "格式 format"])
        for col in spec.columns:
            info.append(
                [col.label_zh, col.name, col.label_en, "是" if col.required else "", col.help]
            )
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def write_file(spec: LedgerSpec, path: Path, rows: Iterable[dict[str, Any]]) -> None:
    data = write_xlsx(spec, rows) if file_format(path) == "xlsx" else write_csv(spec, rows)
    path.write_bytes(data)
