"""GET /alerts/stream: the live stream of alert events (api/sse.py). Not in the OpenAPI
document: it never ends by itself, so generated-request tests (tests/test_api_schemathesis.py)
cannot call it; it declares its role like every route (viewer) and tests/test_api_alerts_stream.py
checks it. A crew's stream carries only the events of its own unit's alerts."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse

from api import sse
from api.auth import Principal, require
from api.deps import field_error
from api.routes.alerts import read_scope
from urbanwatch.identity.roles import Role
from urbanwatch.queries import alert_work as q

router = APIRouter(prefix="/alerts", tags=["alerts"])
Viewer = Annotated[Principal, require(Role.viewer)]


@router.get("/stream", include_in_schema=False)
def stream(
    request: Request,
    principal: Viewer,
    last_event_id: Annotated[str | None, Header()] = None,
    after: Annotated[int | None, Query(alias="last_event_id", ge=0, le=2**62)] = None,
) -> StreamingResponse:
    """Server-Sent Events; resumes after `Last-Event-ID` (header) or `?last_event_id=`."""
    start = after
    if last_event_id is not None:
        if not last_event_id.isdigit() or int(last_event_id) > 2**62:
            raise field_error(400, ["header", "Last-Event-ID"], "must be an event id (digits)")
        start = int(last_event_id)
    pool = request.app.state.pool
    if start is None:  # from now: the newest id before the response starts
        with pool.connection() as conn:
            start = q.last_event_id(conn)
    body = sse.alert_events(pool, start, request.is_disconnected, read_scope(principal))
    return StreamingResponse(
        body,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
