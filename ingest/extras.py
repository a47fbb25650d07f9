"""Fields outside the contract (`extra`), checked before they reach the database.

A reading or status message may carry fields the contract does not know; they are kept, as
sent, in a jsonb column. Three things JSON allows and that column cannot hold are refused
here with the field's path, instead of failing the batch's transaction or the writer:

* a NUL character (U+0000) in a key or a string: jsonb cannot store it (the database would
  refuse it, so the reason code is `db_rejected`, as for any content the database refuses);
* nesting deeper than MAX_DEPTH levels (the JSON encoder recurses once per level);
* nothing else is refused: integers beyond 64 bits, which orjson reads as floats, are taken
  again from an exact parse of the payload (Python's json module keeps every digit), so
  `extra` holds what the device sent.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

# Vendor payloads nest a level or two (`{"gps": {"lat": …}}`); 16 leaves room and bounds
# the encoder's recursion far below Python's limit.
MAX_DEPTH = 16
# Beyond this magnitude a float that is a whole number may be an integer orjson rounded
# (it reads integers up to 2**64 - 1 exactly, and larger ones as floats).
_EXACT_INT_LIMIT = 2.0**64


class ExtraRefused(Exception):
    def __init__(self, code: str, path: str, message: str):
        super().__init__(f"{path}: {message}")
        self.code, self.path, self.message = code, path, message


def check_extras(extras: dict[str, Any], exact: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """`extras` if they can be stored as they are; raises ExtraRefused naming the field. When
    a value may be an integer orjson rounded, the same fields are taken from `exact()`
    (the same JSON object parsed exactly)."""
    rounded = False
    stack: list[tuple[tuple[str | int, ...], Any, int]] = [((k,), v, 1) for k, v in extras.items()]
    while stack:
        parts, value, depth = stack.pop()
        key = parts[-1]
        if isinstance(key, str) and "\x00" in key:
            raise ExtraRefused("db_rejected", field_path(parts), _NUL)
        if isinstance(value, str):
            if "\x00" in value:
                raise ExtraRefused("db_rejected", field_path(parts), _NUL)
        elif isinstance(value, float):
            rounded |= abs(value) >= _EXACT_INT_LIMIT and value.is_integer()
        elif isinstance(value, dict | list):
            if depth >= MAX_DEPTH:
                raise ExtraRefused(
                    "invalid_field", field_path(parts), f"nested deeper than {MAX_DEPTH} levels"
                )
            items = value.items() if isinstance(value, dict) else enumerate(value)
            stack.extend(((*parts, k), v, depth + 1) for k, v in items)
    if not rounded:
        return extras
    try:
        whole = exact()
    except RecursionError:  # another element of a gateway batch nests very deep
        raise ExtraRefused(
            "invalid_field",
            field_path((next(iter(extras)),)),
            "a number beyond 64 bits could not be read exactly",
        ) from None
    return {key: whole[key] for key in extras}


_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def field_path(parts: tuple[str | int, ...]) -> str:
    """`note.items[2]`; a key that is not a plain name is quoted as JSON, so the path stays
    unambiguous and printable whatever the key holds: `["a:b"]["\\u0000"]`."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _PLAIN_KEY.match(part):
            out += f".{part}" if out else part
        else:
            out += f"[{json.dumps(part)}]"
    return out


def exact_object(payload: bytes, index: int | None) -> dict[str, Any]:
    """The message's JSON object (or its gateway element `index`) with every integer exact.
    Only called after orjson accepted the payload, so it is valid JSON, and after the depth
    check, so the stdlib parser's recursion stays shallow."""
    body = json.loads(payload)
    return body if index is None else body[index]  # type: ignore[no-any-return]


_NUL = "contains a NUL character (U+0000), which the database cannot store"
