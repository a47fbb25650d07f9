"""Checks of free-form bodies (rule sets, route files) before they reach PostgreSQL: text
cannot hold NUL and JSON cannot hold NaN or infinities. A 422 names the field."""

from __future__ import annotations

import math
from typing import Any

from api.deps import field_error


def refuse_unstorable(data: Any, loc: tuple[str, ...] = ("body",)) -> None:
    """422 naming the first value PostgreSQL (text, jsonb) cannot store."""
    if isinstance(data, str) and "\x00" in data:
        raise field_error(422, list(loc), "must not contain NUL (U+0000)")
    if isinstance(data, float) and not math.isfinite(data):
        raise field_error(422, list(loc), "must be a finite number")
    if isinstance(data, dict):
        for key, value in data.items():
            refuse_unstorable(key, (*loc, str(key)))
            refuse_unstorable(value, (*loc, str(key)))
    elif isinstance(data, list | tuple):
        for i, value in enumerate(data):
            refuse_unstorable(value, (*loc, str(i)))
