"""积水点台账 (docs/domain.md §3.4): the waterlogging points, their remediation and verification.

`verification` and `verified_on` are not imported: they are set by verification by data
(urbanwatch.ledgers.verify, §3.5); an import leaves them as they are.
"""

from __future__ import annotations

from pydantic import Field

from urbanwatch.ledgers.base import (
    DISTRICT,
    Bool,
    Column,
    Date,
    Int,
    LedgerRow,
    LedgerSpec,
    Number,
    RequiredText,
    Text,
    register,
)


class PointRow(LedgerRow):
    point_id: RequiredText
    name: RequiredText
    district: RequiredText
    point_type: Text = None
    road_class: Text = None
    cause: Text = None
    responsible_unit: Text = None
    sensor_id: Text = None
    rain_gauge_id: Text = None
    measures: Text = None
    planned_year: Int = Field(None, ge=2000, le=2100)
    accepted_on: Date = None
    baseline_2021: Bool = False
    lat: Number = Field(None, ge=-90, le=90)
    lon: Number = Field(None, ge=-180, le=180)


POINTS = register(
    LedgerSpec(
        name="waterlog_points",
        table="waterlog_points",
        title_zh="内涝积水点台账",
        title_en="Waterlogging points",
        key=("point_id",),
        model=PointRow,
        columns=(
            Column("point_id", "积水点编号", "point id", ("编号",), True),
            Column("name", "积水点名称", "name", ("名称",), True, "e.g. 人民公园, 同乐花园"),
            DISTRICT,
            Column("point_type", "类型", "type", help="下穿/下凹立交, 低洼路段, 小区, …"),
            Column("road_class", "道路等级", "road class"),
            Column("cause", "积水原因", "cause", ("原因",)),
            Column("responsible_unit", "责任单位", "responsible unit"),
            Column(
                "sensor_id",
                "积水监测设备编号",
                "depth sensor id",
                ("监测设备",),
                help="device id of its depth sensor",
            ),
            Column(
                "rain_gauge_id",
                "雨量计编号",
                "rain gauge id",
                help="device id; empty: the first gauge of the district",
            ),
            Column("measures", "整治措施", "measures"),
            Column("planned_year", "计划整治年份", "planned year", ("计划年份",), help="e.g. 2021"),
            Column(
                "accepted_on",
                "完工验收日期",
                "accepted on",
                ("验收日期",),
                help="date of 工程完工验收: the plan counts this",
            ),
            Column(
                "baseline_2021",
                "2021年台账",
                "baseline 2021",
                ("基线",),
                help="是/否: in the 2021 ledger (frozen once `ledgers freeze`)",
            ),
            Column("lat", "纬度", "latitude"),
            Column("lon", "经度", "longitude", ("lng",)),
        ),
    )
)
