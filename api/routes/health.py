from __future__ import annotations

from fastapi import APIRouter

from api.auth import public
from api.deps import Conn
from urbanwatch.queries import meta

router = APIRouter(tags=["health"])


@router.get("/health", dependencies=[public()])
def health(conn: Conn) -> dict[str, str]:
    """Liveness and the storage back-end in use (timescale or plain)."""
    return {"status": "ok", "storage": meta.get_storage(conn) or "none"}
