"""The ledger (台账) framework: what a ledger is, its columns and the cell rules every one shares.

A ledger is a table city staff keep in spreadsheets: one `LedgerSpec` names its table, its
natural key (re-importing a file updates rows, never duplicates them), its columns with the
header names accepted for each (Chinese first, English alongside), and the pydantic model a
row must satisfy. Reading files is `urbanwatch.ledgers.files`, writing the database with the
audit trail `urbanwatch.ledgers.store`. A ledger is one module `urbanwatch/ledgers/<name>.py`
that calls `register`.

Cells are forgiving where spreadsheets differ and strict where a KPI depends on them: dates
as 2021-05-03, 2021/5/3, 2021.5.3, 2021年5月3日 or an Excel date; yes/no as 是/否, true/false,
1/0; text at most MAX_TEXT characters and never a NUL.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError

# A ledger cell is a name, a remark or an address, not a document; longer is a pasted mistake.
MAX_TEXT = 2000
_DATE_RE = re.compile(r"^\s*(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?\s*$")
# What neither PostgreSQL text (NUL) nor an .xlsx cell can hold: refused, so a ledger always
# exports to both formats as it was imported.
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_TRUE = {"是", "有", "y", "yes", "true", "t", "1", "√", "✓"}
_FALSE = {"否", "无", "n", "no", "false", "f", "0", "×"}


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def parse_date(value: Any) -> date | None:
    if _blank(value):
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        match = _DATE_RE.match(value)
        if match:
            year, month, day = (int(g) for g in match.groups())
            try:
                return date(year, month, day)
            except ValueError as exc:
                raise ValueError(f"not a calendar date: {value.strip()!r} ({exc})") from None
    raise ValueError(f"not a date: {str(value)[:40]!r} (use 2021-05-03 or 2021年5月3日)")


def parse_bool(value: Any) -> bool | None:
    if _blank(value):
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"not yes/no: {str(value)[:40]!r} (use 是/否, true/false or 1/0)")


def parse_text(value: Any) -> str | None:
    if _blank(value):
        return None
    if isinstance(value, list | dict | tuple | set):
        raise ValueError("not text (a list or an object)")
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # Excel stores a typed number 12 as 12.0
    text = str(value).strip()
    if _CONTROL_RE.search(text):
        raise ValueError("contains a control character (NUL, escape, ...)")
    if len(text) > MAX_TEXT:
        raise ValueError(f"longer than {MAX_TEXT} characters ({len(text)})")
    return text


def parse_number(value: Any) -> Any:
    if _blank(value):
        return None
    if isinstance(value, str):
        return value.strip().replace(",", "")
    return value


def _required(parse: Any) -> Any:
    def check(value: Any) -> Any:
        parsed = parse(value)
        if parsed is None:
            raise ValueError("required, but empty")
        return parsed

    return check


Date = Annotated[date | None, BeforeValidator(parse_date)]
RequiredDate = Annotated[date, BeforeValidator(_required(parse_date))]
RequiredText = Annotated[str, BeforeValidator(_required(parse_text))]
Bool = Annotated[bool | None, BeforeValidator(parse_bool)]
Text = Annotated[str | None, BeforeValidator(parse_text)]
Number = Annotated[float | None, BeforeValidator(parse_number)]
Int = Annotated[int | None, BeforeValidator(parse_number)]


class LedgerRow(BaseModel):
    """Base of every ledger's row model: unknown fields are refused by the header mapping
    before this, NaN and infinity are not numbers."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)


@dataclass(frozen=True)
class Column:
    name: str  # the database column and model field
    label_zh: str  # the template's header
    label_en: str
    aliases: tuple[str, ...] = ()  # other headers accepted (spreadsheets in the wild)
    required: bool = False
    help: str = ""  # format, allowed values (docs/ledgers.md and the template's notes)


# Every ledger locates its rows by district, with the same header and the same rule.
DISTRICT = Column(
    "district",
    "所属区县",
    "district",
    ("区县", "行政区"),
    True,
    "district code or Chinese name (文峰区 or wenfeng)",
)


@dataclass(frozen=True)
class LedgerSpec:
    name: str  # 'manhole_covers': the CLI and API name
    table: str
    title_zh: str
    title_en: str
    key: tuple[str, ...]  # natural key: a re-import updates these rows
    columns: tuple[Column, ...]
    model: type[LedgerRow]
    order_by: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


def normalize_header(text: Any) -> str:
    """Headers compare without case, spaces, BOM, underscores or brackets' contents' noise."""
    s = str(text if text is not None else "").replace("\ufeff", "").strip().lower()
    return re.sub(r"[\s_\-()（）:：*]+", "", s)


def header_map(spec: LedgerSpec, headers: list[Any]) -> tuple[dict[int, str], list[str]]:
    """Column position -> field name, and warnings for ignored headers. Raises ValueError
    when a required column is missing or two headers mean the same field."""
    known: dict[str, str] = {}
    for col in spec.columns:
        for alias in (col.name, col.label_zh, col.label_en, *col.aliases):
            known[normalize_header(alias)] = col.name
            known[normalize_header(f"{col.label_zh} {col.name}")] = col.name
    mapping: dict[int, str] = {}
    warnings: list[str] = []
    for i, header in enumerate(headers):
        norm = normalize_header(header)
        if not norm:
            continue
        name = known.get(norm)
        if name is None:
            warnings.append(f"column {str(header)[:60]!r} is not a {spec.name} field; ignored")
            continue
        if name in mapping.values():
            raise ValueError(f"two columns mean {name}: {str(header)[:60]!r} and an earlier one")
        mapping[i] = name
    missing = [c for c in spec.columns if c.required and c.name not in mapping.values()]
    if missing:
        wanted = ", ".join(f"{c.label_zh} ({c.name})" for c in missing)
        raise ValueError(f"header lacks required column(s): {wanted}")
    return mapping, warnings


def describe(exc: ValidationError) -> str:
    """`field: reason; ...`, the reasons without pydantic's `Value error, ` prefix."""
    parts = []
    for item in exc.errors(include_url=False):
        msg = str(item["msg"]).removeprefix("Value error, ")
        loc = ".".join(str(p) for p in item["loc"])
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)


def validate_row(spec: LedgerSpec, cells: Mapping[str, Any]) -> LedgerRow:
    """One row (field -> raw cell) as the ledger's model; ValueError naming the field."""
    try:
        return spec.model.model_validate(dict(cells))
    except ValidationError as exc:
        raise ValueError(describe(exc)) from None


_REGISTRY: dict[str, LedgerSpec] = {}


def register(spec: LedgerSpec) -> LedgerSpec:
    _REGISTRY[spec.name] = spec
    return spec


def all_ledgers() -> dict[str, LedgerSpec]:
    import urbanwatch.ledgers.hidden
    import urbanwatch.ledgers.lighting
    import urbanwatch.ledgers.manhole
    import urbanwatch.ledgers.water
    import urbanwatch.ledgers.waterlog  # noqa: F401  (each registers its ledgers)

    return dict(_REGISTRY)


def get_ledger(name: str) -> LedgerSpec:
    ledgers = all_ledgers()
    if name not in ledgers:
        raise KeyError(f"no ledger {name!r}; ledgers: {', '.join(sorted(ledgers))}")
    return ledgers[name]
