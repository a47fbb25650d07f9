from __future__ import annotations

from fastapi import APIRouter

from api.auth import require
from api.deps import Conn
from urbanwatch.identity.roles import Role
from urbanwatch.models import DistrictPublic
from urbanwatch.queries import districts

router = APIRouter(prefix="/districts", tags=["districts"], dependencies=[require(Role.viewer)])


@router.get("", response_model=list[DistrictPublic])
def list_districts(conn: Conn) -> list[DistrictPublic]:
    """Anyang's districts and their class (central city or county-level city)."""
    return districts.list_districts(conn)
