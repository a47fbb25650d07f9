"""Street-lighting ledgers (docs/domain.md §4.4–4.5): road segments and functional facilities.

A facility row is a lamp, pole, cabinet, circuit, cable or controller; landscape lighting
(景观照明) may be listed with 景观照明=是 and is never counted by the plan KPIs. A lamp's
segment, side and position along the segment make lamps adjacent (dark segments, 有灯不亮);
a segment with no functional lamp is 有路无灯. One open inspection defect per facility is
kept in the row (defect, found, repaired).
"""

from __future__ import annotations

import re
from datetime import datetime, time
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, model_validator

from urbanwatch.ledgers.base import (
    DISTRICT,
    Bool,
    Column,
    Date,
    LedgerRow,
    LedgerSpec,
    Number,
    RequiredText,
    Text,
    register,
)

_TIME_RE = re.compile(r"^\s*(\d{1,2})\s*[:：时]\s*(\d{2})(?:\s*[:：分]\s*(\d{2}))?\s*秒?\s*$")
FACILITY_TYPES_ZH = {
    "灯具": "lamp",
    "路灯": "lamp",
    "灯杆": "pole",
    "配电箱": "cabinet",
    "箱变": "cabinet",
    "回路": "circuit",
    "电缆": "cable",
    "控制器": "controller",
    "单灯控制器": "controller",
}
ROAD_CLASSES_ZH = {
    "快速路": "expressway",
    "主干路": "trunk",
    "次干路": "secondary",
    "支路": "branch",
    "居住区道路": "residential",
}
SIDES_ZH = {"左": "L", "右": "R", "中": "C", "左侧": "L", "右侧": "R", "中央": "C"}


def parse_time(value: Any) -> time | None:
    """23:00, 23:00:00, 23时00分 or an Excel time."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, datetime):
        return value.time()
    if isinstance(value, time):
        return value
    if isinstance(value, str):
        match = _TIME_RE.match(value)
        if match:
            h, m, s = (int(g or 0) for g in match.groups())
            if h < 24 and m < 60 and s < 60:
                return time(h, m, s)
    raise ValueError(f"not a time of day: {str(value)[:40]!r} (use 23:00)")


def coded(table: dict[str, str], value: Any) -> Any:
    """A Chinese name or an English code as the code; ValueError listing both otherwise."""
    if not isinstance(value, str) or not value.strip():
        return value  # empty: the field's own 'required' message
    text = value.strip()
    code = table.get(text, text.lower())
    if code not in table.values():
        names = "/".join(dict.fromkeys(table))
        codes = "/".join(dict.fromkeys(table.values()))
        raise ValueError(f"not one of {names} ({codes}): {text[:40]!r}")
    return code


def _coded(table: dict[str, str]) -> Any:
    return BeforeValidator(lambda value: coded(table, value))


def _lamp(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    text = value.strip().upper()
    return "other" if text in ("OTHER", "其他") else text or None


Time = Annotated[time | None, BeforeValidator(parse_time)]
LampType = Annotated[Literal["LED", "HPS", "MH", "CFL", "other"] | None, BeforeValidator(_lamp)]
RoadClass = Annotated[
    Literal["expressway", "trunk", "secondary", "branch", "residential"],
    _coded(ROAD_CLASSES_ZH),
]
FacilityType = Annotated[
    Literal["lamp", "pole", "cabinet", "circuit", "cable", "controller"],
    _coded(FACILITY_TYPES_ZH),
]
Side = Annotated[Literal["L", "R", "C"] | None, BeforeValidator(lambda v: SIDES_ZH.get(
    v.strip(), v.strip().upper() or None) if isinstance(v, str) else v)]  # fmt: skip


class SegmentRow(LedgerRow):
    segment_id: RequiredText
    district: RequiredText
    road_name: RequiredText
    road_class: RoadClass
    length_m: float = Field(gt=0, lt=1e6)
    next_segment_id: Text = None
    opened_on: Date = None
    closed_on: Date = None
    measured_lux: Number = Field(None, ge=0, lt=1e5)
    lux_measured_on: Date = None

    @model_validator(mode="before")
    @classmethod
    def _length(cls, data: dict[str, Any]) -> dict[str, Any]:
        value = data.get("length_m")
        if isinstance(value, str):
            data["length_m"] = value.strip().replace(",", "") or None
        return data

    @model_validator(mode="after")
    def _order(self) -> SegmentRow:
        if self.opened_on and self.closed_on and self.closed_on < self.opened_on:
            raise ValueError("closed_on: before opened_on")
        return self


class FacilityRow(LedgerRow):
    facility_id: RequiredText
    facility_type: FacilityType
    district: RequiredText
    segment_id: Text = None
    road_side: Side = None
    position_m: Number = Field(None, ge=0, lt=1e6)
    is_landscape: Bool = False
    lamp_type: LampType = None
    rated_power_w: Number = Field(None, gt=0, le=2000)
    retrofit_on: Date = None
    previous_lamp_type: LampType = None
    previous_power_w: Number = Field(None, gt=0, le=2000)
    device_id: Text = None
    pole_id: Text = None
    circuit_id: Text = None
    cabinet_id: Text = None
    part_night_off_from: Time = None
    part_night_off_to: Time = None
    installed_on: Date = None
    retired_on: Date = None
    defect: Text = None
    defect_found_on: Date = None
    defect_repaired_on: Date = None

    @model_validator(mode="before")
    @classmethod
    def _blank_flag(cls, data: dict[str, Any]) -> dict[str, Any]:
        if "is_landscape" in data and data["is_landscape"] in (None, ""):
            data["is_landscape"] = False
        return data

    @model_validator(mode="after")
    def _consistent(self) -> FacilityRow:
        if self.facility_type == "lamp" and self.lamp_type is None:
            raise ValueError("lamp_type: required for a lamp (LED, HPS, MH, CFL, other)")
        if self.facility_type == "lamp" and self.rated_power_w is None:
            raise ValueError("rated_power_w: required for a lamp")
        if (self.part_night_off_from is None) != (self.part_night_off_to is None):
            raise ValueError("part_night_off_to: give both ends of the part-night schedule")
        if self.installed_on and self.retired_on and self.retired_on < self.installed_on:
            raise ValueError("retired_on: before installed_on")
        if self.defect_repaired_on and not self.defect_found_on:
            raise ValueError("defect_found_on: required when defect_repaired_on is set")
        if (
            self.defect_found_on
            and self.defect_repaired_on
            and self.defect_repaired_on < self.defect_found_on
        ):
            raise ValueError("defect_repaired_on: before defect_found_on")
        if self.previous_lamp_type and not self.retrofit_on:
            raise ValueError("retrofit_on: required when previous_lamp_type is set")
        return self


SEGMENTS = register(
    LedgerSpec(
        name="lighting_segments",
        table="lighting_road_segments",
        title_zh="道路路段台账",
        title_en="Road segments",
        key=("segment_id",),
        model=SegmentRow,
        columns=(
            Column("segment_id", "路段编号", "segment id", ("编号",), True),
            DISTRICT,
            Column("road_name", "道路名称", "road name", ("道路",), True),
            Column(
                "road_class",
                "道路等级",
                "road class",
                (),
                True,
                "快速路/主干路/次干路/支路/居住区道路 "
                "(expressway/trunk/secondary/branch/residential)",
            ),
            Column("length_m", "路段长度(米)", "length m", ("长度",), True, "metres"),
            Column(
                "next_segment_id",
                "相邻下一路段",
                "next segment",
                help="the segment the road continues into (lamp adjacency across segments)",
            ),
            Column("opened_on", "通车日期", "opened on", help="date; empty: always in service"),
            Column("closed_on", "停用日期", "closed on", help="date"),
            Column("measured_lux", "实测平均照度(lx)", "measured lux", help="lx, average"),
            Column("lux_measured_on", "照度测量日期", "lux measured on", help="date"),
        ),
    )
)

FACILITIES = register(
    LedgerSpec(
        name="lighting_facilities",
        table="lighting_facilities",
        title_zh="功能照明设施台账",
        title_en="Functional lighting facilities",
        key=("facility_id",),
        model=FacilityRow,
        columns=(
            Column("facility_id", "设施编号", "facility id", ("编号",), True),
            Column(
                "facility_type",
                "设施类型",
                "facility type",
                ("类型",),
                True,
                "灯具/灯杆/配电箱/回路/电缆/控制器 or lamp/pole/cabinet/circuit/cable/controller",
            ),
            DISTRICT,
            Column("segment_id", "路段编号", "segment id", help="a row of 道路路段台账"),
            Column("road_side", "道路侧", "road side", help="左/右/中 or L/R/C"),
            Column("position_m", "桩号位置(米)", "position m", help="metres from segment start"),
            Column("is_landscape", "景观照明", "landscape", help="是/否; 是: never counted"),
            Column("lamp_type", "光源类型", "lamp type", help="LED/HPS/MH/CFL/other; lamps"),
            Column("rated_power_w", "额定功率(W)", "rated power w", help="W; lamps"),
            Column("retrofit_on", "LED改造日期", "retrofit on", help="date of the LED retrofit"),
            Column("previous_lamp_type", "改造前光源", "previous lamp type"),
            Column("previous_power_w", "改造前功率(W)", "previous power w"),
            Column("device_id", "单灯控制器编号", "controller device id", ("设备编号",)),
            Column("pole_id", "灯杆编号", "pole id"),
            Column("circuit_id", "回路编号", "circuit id"),
            Column("cabinet_id", "配电箱编号", "cabinet id"),
            Column(
                "part_night_off_from",
                "半夜灯关闭起",
                "part-night off from",
                help="local time, e.g. 23:00 (approved part-night schedule)",
            ),
            Column("part_night_off_to", "半夜灯关闭止", "part-night off to", help="e.g. 05:00"),
            Column("installed_on", "安装日期", "installed on"),
            Column("retired_on", "拆除日期", "retired on"),
            Column("defect", "巡查病害", "defect", help="破损/倾斜/锈蚀/缺门/线缆外露…"),
            Column("defect_found_on", "病害发现日期", "defect found on"),
            Column("defect_repaired_on", "病害修复日期", "defect repaired on"),
        ),
    )
)
