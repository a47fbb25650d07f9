"""Hidden-danger points (T9, 三(七)1 建立隐患风险点整改台账): found, deadline, rectified,
verified."""

from __future__ import annotations

from pydantic import model_validator

from urbanwatch.ledgers.base import (
    DISTRICT,
    Column,
    Date,
    LedgerRow,
    LedgerSpec,
    RequiredDate,
    RequiredText,
    Text,
    register,
)


class HazardRow(LedgerRow):
    hazard_id: RequiredText
    district: RequiredText
    category: RequiredText
    location: Text = None
    description: Text = None
    responsible_unit: Text = None
    found_on: RequiredDate
    deadline: Date = None
    rectified_on: Date = None
    verified_on: Date = None

    @model_validator(mode="after")
    def _dates_in_order(self) -> HazardRow:
        found = self.found_on
        if found and self.deadline and self.deadline < found:
            raise ValueError("deadline: before found_on")
        if found and self.rectified_on and self.rectified_on < found:
            raise ValueError("rectified_on: before found_on")
        if self.verified_on and not self.rectified_on:
            raise ValueError("verified_on: set, but rectified_on is empty")
        if self.verified_on and self.rectified_on and self.verified_on < self.rectified_on:
            raise ValueError("verified_on: before rectified_on")
        return self


HAZARDS = register(
    LedgerSpec(
        name="hidden_dangers",
        table="hidden_dangers",
        title_zh="隐患风险点整改台账",
        title_en="Hidden-danger points",
        key=("hazard_id",),
        model=HazardRow,
        columns=(
            Column("hazard_id", "隐患编号", "hazard id", ("编号",), True),
            DISTRICT,
            Column(
                "category",
                "隐患类别",
                "category",
                ("类别",),
                True,
                "窨井/燃气/供水/排水/桥梁/房屋/…",
            ),
            Column("location", "位置", "location"),
            Column("description", "隐患描述", "description", ("描述",)),
            Column("responsible_unit", "责任单位", "responsible unit"),
            Column("found_on", "发现日期", "found on", (), True, "date"),
            Column("deadline", "整改时限", "deadline", ("整改期限",), help="date"),
            Column("rectified_on", "整改完成日期", "rectified on", help="date"),
            Column("verified_on", "验收日期", "verified on", help="date, not before rectified_on"),
        ),
    )
)
