"""The progress report written out: text, CSV, Excel, or HTML printable on A4 (landscape).
Chinese first (`zh`, the default, with English in the headers' second line) or English."""

from __future__ import annotations

import csv
import html
import io
from typing import Literal

import openpyxl

from urbanwatch.kpi.status import LABELS
from urbanwatch.plan.report import Report, ReportRow

Lang = Literal["zh", "en"]
COLUMNS = {
    "id": ("编号", "No."),
    "clause": ("条款", "Clause"),
    "target": ("目标", "Target"),
    "lead": ("牵头单位", "Lead units"),
    "value": ("当前值", "Value"),
    "line": ("目标值", "Target line"),
    "deadline": ("时限", "Deadline"),
    "status": ("状态", "Status"),
    "projection": ("预测(至时限)", "Projection (deadline)"),
    "worst": ("落后区县", "Worst districts"),
    "reasoning": ("说明", "Reasoning"),
}
TITLE = (
    "安阳市城市建设提质工程三年行动计划(2021—2023年)目标进度",
    "Anyang plan 2021–2023: progress against targets",
)
NO_DATA = ("暂无数据", "no data")
ONGOING = ("长期", "ongoing")


def _num(value: float | None, unit: str, lang: Lang) -> str:
    if value is None:
        return NO_DATA[lang == "en"]
    text = f"{value:.1f}" if unit == "%" else f"{value:g}"
    return f"{text} %" if unit == "%" else text


def cells(row: ReportRow, lang: Lang) -> dict[str, str]:
    t, a = row.target, row.assessment
    en = lang == "en"
    unit = t.unit
    line = f"{t.comparator} {_num(t.target_value, unit, lang)}" if t.comparator else "—"
    worst = "、".join(
        f"{d.name_en if en else d.name_zh} {_num(d.value, unit, lang)}" for d in row.worst
    )
    value = _num(a.value, unit, lang)
    if row.denominator:
        value += f" ({row.numerator:g}/{row.denominator:g})"
    return {
        "id": t.id,
        "clause": f"{t.clause_ref}:{t.clause_zh}",
        "target": t.title_en if en else t.title_zh,
        "lead": "、".join(t.lead_units),
        "value": value,
        "line": line,
        "deadline": t.deadline.isoformat() if t.deadline else ONGOING[en],
        "status": LABELS[a.status][en],
        "projection": _num(a.projection, unit, lang) if a.projection is not None else "—",
        "worst": worst or "—",
        "reasoning": a.reasoning + (f"; defaults: {dict(row.defaults)}" if row.defaults else ""),
    }


def _headers(lang: Lang) -> list[str]:
    return [v[1] if lang == "en" else f"{v[0]} {v[1]}" for v in COLUMNS.values()]


def _subtitle(report: Report, lang: Lang) -> str:
    where = report.district or ("全市" if lang == "zh" else "city")
    return f"{'截至' if lang == 'zh' else 'as of'} {report.as_of} · {where}"


def to_text(report: Report, lang: Lang = "zh") -> str:
    out = [TITLE[lang == "en"], _subtitle(report, lang), ""]
    for row in report.rows:
        c = cells(row, lang)
        head = f"{c['id']:4} {c['status']:6} {c['value']:22} {c['line']:10} {c['deadline']:10}"
        out.append(f"{head} {c['target']}")
        out.append(f"     {c['clause']}")
        out.append(f"     {COLUMNS['lead'][lang == 'en']}: {c['lead']}")
        out.append(
            f"     {COLUMNS['projection'][lang == 'en']}: {c['projection']}; {c['reasoning']}"
        )
        if c["worst"] != "—":
            out.append(f"     {COLUMNS['worst'][lang == 'en']}: {c['worst']}")
    return "\n".join(out) + "\n"


def to_csv(report: Report, lang: Lang = "zh") -> bytes:
    buf = io.StringIO(newline="")
    writer = csv.writer(buf)
    writer.writerow(_headers(lang))
    for row in report.rows:
        writer.writerow(list(cells(row, lang).values()))
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def to_xlsx(report: Report, lang: Lang = "zh") -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "目标进度" if lang == "zh" else "progress"
    sheet.append([TITLE[lang == "en"]])
    sheet.append([_subtitle(report, lang)])
    sheet.append(_headers(lang))
    for row in report.rows:
        sheet.append(list(cells(row, lang).values()))
    widths = [6, 40, 30, 20, 16, 10, 12, 10, 12, 30, 60]
    for i, width in enumerate(widths, start=1):
        sheet.column_dimensions[openpyxl.utils.get_column_letter(i)].width = width
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


CSS = """@page { size: A4 landscape; margin: 12mm; }
body { font-family: "Noto Sans CJK SC", "Source Han Sans SC", "Microsoft YaHei", sans-serif;
       font-size: 9pt; color: #111; }
h1 { font-size: 14pt; margin: 0 0 2mm; } p.sub { margin: 0 0 4mm; color: #444; }
table { border-collapse: collapse; width: 100%; table-layout: fixed; }
th, td { border: 0.5pt solid #666; padding: 1.2mm; vertical-align: top; word-wrap: break-word; }
th { background: #eee; font-weight: 600; } tr { page-break-inside: avoid; }
thead { display: table-header-group; }
td.met { background: #e3f4e3; } td.on_track { background: #eef6ff; }
td.at_risk { background: #fff4d6; } td.missed { background: #fbe0e0; }
small { color: #555; }"""
WIDTHS = [4, 18, 12, 9, 9, 6, 7, 6, 7, 10, 12]  # % of the page width, one per column


def to_html(report: Report, lang: Lang = "zh") -> str:
    e = html.escape
    head = "".join(
        f'<th style="width:{w}%">{e(v[lang == "en"])}'
        + (f"<br><small>{e(v[1])}</small>" if lang == "zh" else "")
        + "</th>"
        for v, w in zip(COLUMNS.values(), WIDTHS, strict=True)
    )
    body = []
    for row in report.rows:
        c = cells(row, lang)
        tds = "".join(
            f'<td class="{row.assessment.status}">{e(v)}</td>'
            if k == "status"
            else f"<td>{e(v)}</td>"
            for k, v in c.items()
        )
        body.append(f"<tr>{tds}</tr>")
    return (
        f'<!DOCTYPE html><html lang="{"zh-CN" if lang == "zh" else "en"}"><head>'
        f'<meta charset="utf-8"><title>{e(TITLE[lang == "en"])}</title><style>{CSS}</style>'
        f"</head><body><h1>{e(TITLE[lang == 'en'])}</h1>"
        f'<p class="sub">{e(_subtitle(report, lang))}</p>'
        f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
        "</body></html>\n"
    )
