"""`urbanwatch simulate`: realistic device fleets (filled in by the simulators work)."""

from __future__ import annotations

from typing import Any


def register(sub: Any) -> None:
    sub.add_parser("simulate", help="simulate a device fleet")
