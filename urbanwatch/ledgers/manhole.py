"""Manhole cover ledgers (docs/domain.md §2.4, §2.5): the cover inventory and its defects."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from urbanwatch.ledgers.base import (
    DISTRICT,
    Bool,
    Column,
    Date,
    LedgerRow,
    LedgerSpec,
    Number,
    RequiredDate,
    RequiredText,
    Text,
    register,
)

LOAD_CLASSES = ("A15", "B125", "C250", "D400", "E600", "F900")
DEFECT_TYPES = ("MISSING", "BROKEN", "HEIGHT", "LOOSE", "DISPLACED", "SURROUND", "CLASS",
                "NO_ANTIFALL")  # fmt: skip
# Chinese names in a defect-type cell are accepted too (§2.5's table).
DEFECT_TYPES_ZH = {
    "缺失": "MISSING",
    "破损": "BROKEN",
    "高差": "HEIGHT",
    "沉陷": "HEIGHT",
    "松动": "LOOSE",
    "错位": "DISPLACED",
    "井周路面破损": "SURROUND",
    "承载等级不符": "CLASS",
    "应装未装防坠设施": "NO_ANTIFALL",
}
SOURCES_ZH = {"巡查": "inspection", "投诉": "complaint", "传感器": "sensor"}
STATUSES_ZH = {"待确认": "candidate", "已确认": "confirmed", "已驳回": "rejected"}


class CoverRow(LedgerRow):
    cover_id: RequiredText
    district: RequiredText
    road: Text = None
    use_type: Text = None
    owner_unit: Text = None
    material: Text = None
    load_class: Literal["A15", "B125", "C250", "D400", "E600", "F900"] | None = None
    installed_on: Date = None
    in_core_area: Bool = False
    anti_fall_required: Bool = False
    anti_fall_installed_on: Date = None
    smart_monitor_id: Text = None
    lat: Number = Field(None, ge=-90, le=90)
    lon: Number = Field(None, ge=-180, le=180)

    @model_validator(mode="before")
    @classmethod
    def _blank_class(cls, data: dict[str, object]) -> dict[str, object]:
        value = data.get("load_class")
        if isinstance(value, str):
            data["load_class"] = value.strip().upper() or None
        for flag in ("in_core_area", "anti_fall_required"):
            if flag in data and data[flag] in (None, ""):
                data[flag] = False
        return data


def _code(value: object, table: dict[str, str]) -> object:
    return table.get(value.strip(), value.strip()) if isinstance(value, str) else value


class DefectRow(LedgerRow):
    cover_id: RequiredText
    defect_type: Literal[
        "MISSING", "BROKEN", "HEIGHT", "LOOSE", "DISPLACED", "SURROUND", "CLASS", "NO_ANTIFALL"
    ]
    discovered_on: RequiredDate
    source: Literal["inspection", "complaint", "sensor"]
    status: Literal["candidate", "confirmed", "rejected"] = "confirmed"
    work_order: Text = None
    remediated_on: Date = None
    verified_on: Date = None
    verified_by: Text = None
    baseline_2021: Bool = False
    note: Text = None

    @model_validator(mode="before")
    @classmethod
    def _codes(cls, data: dict[str, object]) -> dict[str, object]:
        data["defect_type"] = _code(data.get("defect_type"), DEFECT_TYPES_ZH)
        if isinstance(data.get("defect_type"), str):
            data["defect_type"] = str(data["defect_type"]).upper()
        data["source"] = _code(data.get("source"), SOURCES_ZH)
        if data.get("status") in (None, ""):
            data["status"] = "confirmed"
        data["status"] = _code(data.get("status"), STATUSES_ZH)
        if data.get("baseline_2021") in (None, ""):
            data["baseline_2021"] = False
        return data

    @model_validator(mode="after")
    def _dates_in_order(self) -> DefectRow:
        if self.remediated_on and self.discovered_on and self.remediated_on < self.discovered_on:
            raise ValueError("remediated_on: before discovered_on")
        if self.verified_on and not self.remediated_on:
            raise ValueError("verified_on: set, but remediated_on is empty")
        if self.verified_on and self.remediated_on and self.verified_on < self.remediated_on:
            raise ValueError("verified_on: before remediated_on")
        return self


COVERS = register(
    LedgerSpec(
        name="manhole_covers",
        table="manhole_covers",
        title_zh="窨井盖台账",
        title_en="Manhole cover inventory",
        key=("cover_id",),
        model=CoverRow,
        columns=(
            Column("cover_id", "井盖编号", "cover id", ("编号",), True, "one cover, one number"),
            DISTRICT,
            Column("road", "所在道路", "road", ("道路",)),
            Column(
                "use_type",
                "井盖用途",
                "use",
                ("用途", "类别"),
                help="雨水/污水/合流/供水/燃气/电力/通信/热力",
            ),
            Column("owner_unit", "权属单位", "owner unit"),
            Column("material", "材质", "material"),
            Column("load_class", "承载等级", "load class", help="A15 B125 C250 D400 E600 F900"),
            Column("installed_on", "安装日期", "installed on", help="date"),
            Column("in_core_area", "核心区域", "in core area", help="是/否"),
            Column("anti_fall_required", "应装防坠设施", "anti-fall required", help="是/否"),
            Column(
                "anti_fall_installed_on",
                "防坠设施安装日期",
                "anti-fall installed on",
                ("安全网安装日期",),
                help="date",
            ),
            Column(
                "smart_monitor_id",
                "智能监测终端编号",
                "smart monitor id",
                ("监测终端",),
                help="device id in the registry",
            ),
            Column("lat", "纬度", "latitude", ("lat",)),
            Column("lon", "经度", "longitude", ("lng", "lon")),
        ),
    )
)

DEFECTS = register(
    LedgerSpec(
        name="manhole_defects",
        table="manhole_defects",
        title_zh="病害窨井盖台账",
        title_en="Manhole cover defects",
        key=("cover_id", "defect_type", "discovered_on"),
        model=DefectRow,
        columns=(
            Column("cover_id", "井盖编号", "cover id", ("编号",), True, "a cover in the inventory"),
            Column(
                "defect_type",
                "病害类型",
                "defect type",
                ("类型",),
                True,
                " ".join(DEFECT_TYPES) + " (or 缺失 破损 高差 松动 错位 …, docs/domain.md §2.5)",
            ),
            Column("discovered_on", "发现日期", "discovered on", (), True, "date"),
            Column(
                "source",
                "发现来源",
                "source",
                ("来源",),
                True,
                "inspection/complaint/sensor (巡查/投诉/传感器)",
            ),
            Column(
                "status", "状态", "status", (), False, "confirmed (default), candidate, rejected"
            ),
            Column("work_order", "工单号", "work order"),
            Column("remediated_on", "整治日期", "remediated on", ("整改日期",), help="date"),
            Column("verified_on", "验收日期", "verified on", help="date, not before remediated_on"),
            Column("verified_by", "验收人", "verified by"),
            Column(
                "baseline_2021",
                "2021年普查",
                "baseline 2021",
                ("基线",),
                help="是/否: in the 2021 census (frozen once `ledgers freeze`)",
            ),
            Column("note", "备注", "note"),
        ),
    )
)
