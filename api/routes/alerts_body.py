"""Checks of free-form bodies (rule sets, route files) before they reach PostgreSQL: text
cannot hold NUL and JSON cannot hold NaN or infinities. A 422 names the field."""

from __future__ import annotations

from typing import Any

from api.deps import field_error
from urbanwatch.storable import find_unstorable


def refuse_unstorable(data: Any, loc: tuple[str, ...] = ("body",)) -> None:
    """422 naming the first value PostgreSQL (text, jsonb) cannot store."""
    found = find_unstorable(data)
    if found:
        where, reason = found
        raise field_error(422, [*loc, *map(str, where)], reason)
