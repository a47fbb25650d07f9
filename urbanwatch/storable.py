"""What PostgreSQL can store, checked before it gets there: text and jsonb cannot hold NUL
(U+0000), jsonb cannot hold NaN or infinities. One walker and one pattern, used by the models,
the API's free-form bodies and query parameters (ingest has its own, on its hot path)."""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import Field

NO_NUL = r"^[^\x00]*$"  # a pattern for text parameters that may be empty
NO_NUL_NONEMPTY = r"^[^\x00]+$"
NO_NUL_NOT_BLANK = r"^[^\x00]*[^\x00\s][^\x00]*$"  # and not only white space
NUL = "contains NUL (\\u0000), which cannot be stored"
NOT_FINITE = "is not a finite number, which cannot be stored"

# Text that PostgreSQL can store; pair it with min/max length where the field needs them.
StorableText = Annotated[str, Field(pattern=NO_NUL)]

Loc = tuple[str | int, ...]


def find_unstorable(value: Any, loc: Loc = ()) -> tuple[Loc, str] | None:
    """The location (keys, list indices) and reason of the first value PostgreSQL would refuse
    in `value` (a str, a number or nested dicts and lists), or None. A bad key is reported at
    its own location with a reason that says so."""
    if isinstance(value, str):
        return (loc, NUL) if "\x00" in value else None
    if isinstance(value, float):
        return None if math.isfinite(value) else (loc, NOT_FINITE)
    if isinstance(value, dict):
        for key, item in value.items():
            if "\x00" in str(key):
                return ((*loc, str(key)), "the key " + NUL)
            found = find_unstorable(item, (*loc, str(key)))
            if found:
                return found
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            found = find_unstorable(item, (*loc, i))
            if found:
                return found
    return None


def dotted(loc: Loc) -> str:
    """`attrs.a[0].b`, NULs shown escaped."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return (out or "value").replace("\x00", "\\u0000")
