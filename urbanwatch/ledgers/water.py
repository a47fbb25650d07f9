"""Water ledgers (docs/domain.md §5.1–5.7): DMAs, their meters, imported volumes and the supply
year's R3/R4 inputs.

Volumes are in m³ (the KPI converts to 万m³ where CJJ 92's constants need it). A volume a
DMA's meters measure is read from the meters; `water_volumes` carries what no meter does
(the billing system's billed volume, plant records), and the KPI says which it used. A
district's class (central city / county-level city) is the districts table's.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, model_validator

from urbanwatch.ledgers.base import (
    DISTRICT,
    Bool,
    Column,
    Int,
    LedgerRow,
    LedgerSpec,
    Number,
    RequiredDate,
    RequiredText,
    Text,
    register,
)
from urbanwatch.ledgers.lighting import coded

ROLES_ZH = {
    "进水": "inlet",
    "进水表": "inlet",
    "出水": "outlet",
    "出水表": "outlet",
    "用户": "customer",
    "用户表": "customer",
    "大用户": "customer",
    "小区总表": "customer",
    "户表": "household",
    "抄表到户": "household",
    "测压点": "pressure",
    "压力": "pressure",
}


def _role(value: Any) -> Any:
    return coded(ROLES_ZH, value)


Role = Annotated[
    Literal["inlet", "outlet", "customer", "household", "pressure"], BeforeValidator(_role)
]


class DmaRow(LedgerRow):
    dma_id: RequiredText
    name: Text = None
    district: RequiredText
    pipe_km_dn75: Number = Field(None, ge=0, lt=1e5)
    mains_km: Number = Field(None, ge=0, lt=1e5)
    service_connections: Int = Field(None, ge=0, lt=2**31)
    private_pipe_km: Number = Field(None, ge=0, lt=1e5)
    avg_pressure_m: Number = Field(None, ge=0, lt=1000)


class MeterRow(LedgerRow):
    meter_id: RequiredText
    dma_id: RequiredText
    role: Role
    device_id: Text = None
    billed: Bool = True

    @model_validator(mode="before")
    @classmethod
    def _blank_flag(cls, data: dict[str, Any]) -> dict[str, Any]:
        if "billed" in data and data["billed"] in (None, ""):
            data["billed"] = True
        return data


class VolumeRow(LedgerRow):
    dma_id: RequiredText
    period_start: RequiredDate
    period_end: RequiredDate
    supply_m3: Number = Field(None, ge=0, lt=1e12)
    billed_m3: Number = Field(None, ge=0, lt=1e12)
    free_m3: Number = Field(None, ge=0, lt=1e12)
    household_m3: Number = Field(None, ge=0, lt=1e12)
    apparent_loss_m3: Number = Field(None, ge=0, lt=1e12)

    @model_validator(mode="after")
    def _period(self) -> VolumeRow:
        if self.period_end < self.period_start:
            raise ValueError("period_end: before period_start")
        return self


class SupplyYearRow(LedgerRow):
    district: RequiredText
    year: int = Field(ge=2000, le=2100)
    plant_outlet_pressure_mpa: Number = Field(None, ge=0, lt=5)
    max_frost_depth_m: Number = Field(None, ge=0, lt=10)
    pipe_km_dn75: Number = Field(None, ge=0, lt=1e5)

    @model_validator(mode="before")
    @classmethod
    def _year(cls, data: dict[str, Any]) -> dict[str, Any]:
        value = data.get("year")
        if isinstance(value, str):
            data["year"] = value.strip().removesuffix("年") or None
        return data


DMAS = register(
    LedgerSpec(
        name="water_dmas",
        table="water_dmas",
        title_zh="独立计量区台账",
        title_en="District metered areas",
        key=("dma_id",),
        model=DmaRow,
        columns=(
            Column("dma_id", "计量区编号", "dma id", ("DMA编号", "编号"), True),
            Column("name", "计量区名称", "name", ("名称",)),
            DISTRICT,
            Column("pipe_km_dn75", "DN75及以上管长(km)", "pipe km dn75", help="km, for R2"),
            Column("mains_km", "干管长度(km)", "mains km", help="km, Lm for ILI"),
            Column("service_connections", "接户数", "service connections", help="Nc for ILI"),
            Column("private_pipe_km", "户线长度(km)", "private pipe km", help="Lp for ILI"),
            Column("avg_pressure_m", "平均运行压力(m)", "avg pressure m", help="m head, ILI"),
        ),
    )
)

METERS = register(
    LedgerSpec(
        name="water_meters",
        table="water_meters",
        title_zh="计量区水表台账",
        title_en="DMA meters",
        key=("meter_id",),
        model=MeterRow,
        columns=(
            Column("meter_id", "水表编号", "meter id", ("编号",), True),
            Column("dma_id", "计量区编号", "dma id", ("DMA编号",), True),
            Column(
                "role",
                "水表类别",
                "role",
                ("类别",),
                True,
                "进水/出水/用户/户表/测压点 or inlet/outlet/customer/household/pressure",
            ),
            Column("device_id", "设备编号", "device id", help="empty: the meter id"),
            Column("billed", "计费", "billed", help="是/否 (否: free use, 免费用水)"),
        ),
    )
)

VOLUMES = register(
    LedgerSpec(
        name="water_volumes",
        table="water_volumes",
        title_zh="计量区水量台账",
        title_en="DMA volumes",
        key=("dma_id", "period_start", "period_end"),
        model=VolumeRow,
        columns=(
            Column("dma_id", "计量区编号", "dma id", ("DMA编号",), True),
            Column("period_start", "起始日期", "period start", (), True, "date"),
            Column("period_end", "截止日期", "period end", (), True, "date, inclusive"),
            Column("supply_m3", "供水量(m³)", "supply m3", ("供水量",), help="m³, Qs"),
            Column("billed_m3", "计费用水量(m³)", "billed m3", ("售水量",), help="m³"),
            Column("free_m3", "免费用水量(m³)", "free m3", help="m³; Qa = billed + free"),
            Column("household_m3", "抄表到户水量(m³)", "household m3", help="m³, for R1"),
            Column("apparent_loss_m3", "表观漏损(m³)", "apparent loss m3", help="m³, ILI"),
        ),
    )
)

SUPPLY_YEARS = register(
    LedgerSpec(
        name="water_supply_years",
        table="water_supply_years",
        title_zh="供水年度参数",
        title_en="Supply year parameters",
        key=("district", "year"),
        model=SupplyYearRow,
        columns=(
            DISTRICT,
            Column("year", "年度", "year", ("年份",), True, "e.g. 2023"),
            Column(
                "plant_outlet_pressure_mpa",
                "年平均出厂压力(MPa)",
                "plant outlet pressure mpa",
                help="flow-weighted mean of the hourly outlet pressures of all plants (R3)",
            ),
            Column("max_frost_depth_m", "最大冻土深度(m)", "max frost depth m", help="R4"),
            Column(
                "pipe_km_dn75",
                "DN75及以上管长(km)",
                "pipe km dn75",
                help="the whole district's; empty: the sum over its DMAs",
            ),
        ),
    )
)
