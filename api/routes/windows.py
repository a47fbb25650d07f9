"""/windows: maintenance mutes and authorised work windows (issue #10, docs/api-alerts.md).

A mute (device, road segment, circuit, DMA or district, for a period) keeps alerts about what
it covers quiet: they are recorded, opened suppressed, and the notifier sends nothing
(trigger of migrations 018/022). When it ends (deleted here, or its ends_at passes: the
notifier's loop) the unresolved alerts it quieted are un-suppressed, each with one
`unsuppressed` event the notifier delivers (022, `alert_unmute_ended`). A work window on a
manhole cover makes its MH_OPEN an expected event (the rule's severity_in_work_window; the
engine reads work_windows). Viewers read; operators create and end them, audited."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path, Query
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from api.auth import Principal, require
from api.deps import Conn, field_error
from urbanwatch import audit
from urbanwatch.identity.roles import Role
from urbanwatch.queries import windows as q
from urbanwatch.queries.devices import get_device
from urbanwatch.storable import NO_NUL, NO_NUL_NONEMPTY, NO_NUL_NOT_BLANK

router = APIRouter(prefix="/windows", tags=["alerts"])
Viewer = Annotated[Principal, require(Role.viewer)]
Operator = Annotated[Principal, require(Role.operator)]
MAX_PERIOD = timedelta(days=366)  # longer is a decommissioning, not maintenance
EARLIEST, LATEST = datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)
WindowId = Annotated[int, Path(ge=1, le=2**62)]
Name = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\s][^\x00-\x1f]*$")]


class Period(BaseModel):
    model_config = ConfigDict(extra="forbid")
    starts_at: AwareDatetime
    ends_at: AwareDatetime

    @field_validator("starts_at", "ends_at")
    @classmethod
    def _plausible(cls, value: datetime) -> datetime:
        if not EARLIEST <= value < LATEST:
            raise ValueError("must be between 2000-01-01 and 2100-01-01")
        return value

    @model_validator(mode="after")
    def _order(self) -> Period:
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        if self.ends_at - self.starts_at > MAX_PERIOD:
            raise ValueError(f"ends_at: a window lasts at most {MAX_PERIOD.days} days")
        return self


class MuteCreate(Period):
    scope: Literal["device", "segment", "circuit", "dma", "district"]
    target: Name
    reason: str = Field(min_length=1, max_length=500, pattern=NO_NUL_NOT_BLANK)


class WorkWindowCreate(Period):
    device_id: Name
    work_order: str | None = Field(None, min_length=1, max_length=100, pattern=NO_NUL_NONEMPTY)


@router.get("/mutes", response_model=list[q.MuteRow])
def list_mutes(conn: Conn, _: Viewer, current: bool = False) -> list[q.MuteRow]:
    """Every mute, or with `current=true` those in force now."""
    return q.list_mutes(conn, datetime.now(UTC) if current else None)


@router.post("/mutes", response_model=q.MuteRow, status_code=201)
def create_mute(conn: Conn, principal: Operator, body: MuteCreate) -> q.MuteRow:
    if not q.target_exists(conn, body.scope, body.target):
        raise field_error(422, ["body", "target"], f"no {body.scope} {body.target!r} known")
    row = q.add_mute(
        conn, body.scope, body.target, body.starts_at, body.ends_at, body.reason, principal.actor
    )
    audit.record(
        conn, principal.audit_actor(), "create", "alert_mute", str(row.id),
        after=row.model_dump(mode="json"),
    )  # fmt: skip
    return row


@router.delete("/mutes/{mute_id}", response_model=q.MuteRow)
def delete_mute(conn: Conn, principal: Operator, mute_id: WindowId) -> q.MuteRow:
    """End a mute now: the alerts it quieted that no other mute covers are un-suppressed."""
    row = q.delete_mute(conn, mute_id)
    if row is None:
        raise HTTPException(404, detail=f"mute_id: no mute {mute_id}")
    unsuppressed = q.unmute_ended(conn, principal.actor)
    audit.record(
        conn, principal.audit_actor(), "delete", "alert_mute", str(row.id),
        before=row.model_dump(mode="json"), detail={"unsuppressed": unsuppressed},
    )  # fmt: skip
    return row


@router.get("/work", response_model=list[q.WorkWindowRow])
def list_work_windows(
    conn: Conn,
    _: Viewer,
    device_id: Annotated[str | None, Query(max_length=64, pattern=NO_NUL)] = None,
    current: bool = False,
) -> list[q.WorkWindowRow]:
    return q.list_work_windows(conn, device_id, datetime.now(UTC) if current else None)


@router.post("/work", response_model=q.WorkWindowRow, status_code=201)
def create_work_window(conn: Conn, principal: Operator, body: WorkWindowCreate) -> q.WorkWindowRow:
    """Authorised work on a manhole cover: its opening inside the window is expected."""
    device = get_device(conn, body.device_id)
    if device is None or device.kind != "manhole":
        raise field_error(422, ["body", "device_id"], f"no manhole cover {body.device_id!r}")
    row = q.add_work_window(
        conn, body.device_id, body.starts_at, body.ends_at, body.work_order, principal.actor
    )
    audit.record(
        conn, principal.audit_actor(), "create", "work_window", str(row.id),
        after=row.model_dump(mode="json"),
    )  # fmt: skip
    return row


@router.delete("/work/{window_id}", response_model=q.WorkWindowRow)
def delete_work_window(conn: Conn, principal: Operator, window_id: WindowId) -> q.WorkWindowRow:
    row = q.delete_work_window(conn, window_id)
    if row is None:
        raise HTTPException(404, detail=f"window_id: no work window {window_id}")
    audit.record(
        conn, principal.audit_actor(), "delete", "work_window", str(row.id),
        before=row.model_dump(mode="json"),
    )  # fmt: skip
    return row
