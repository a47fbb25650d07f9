"""argparse `type=` functions for option values, shared by every command.

Each raises `argparse.ArgumentTypeError` with one line that quotes the value and says what
is accepted; argparse prefixes the option (`argument --speed: '0' is not ...`) and exits 2.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from datetime import datetime


def positive_number(limit: float = math.inf) -> Callable[[str], float]:
    """A finite number above 0 and at most `limit`."""
    accepted = "a number above 0" + (f" and at most {limit:g}" if limit < math.inf else "")

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (0 < value <= limit and math.isfinite(value)):
            raise argparse.ArgumentTypeError(f"{text!r} is not {accepted}")
        return value

    return parse


def whole_number(low: int, limit: int | None = None) -> Callable[[str], int]:
    """An integer from `low` up to `limit` (no upper bound when None)."""
    accepted = (
        f"a whole number from {low} to {limit}" if limit is not None else f"a whole number ≥ {low}"
    )

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {accepted}") from None
        if value < low or (limit is not None and value > limit):
            raise argparse.ArgumentTypeError(f"{text!r} is not {accepted}")
        return value

    return parse


def iso_time(text: str) -> datetime:
    """An ISO-8601 date or time, with or without an offset (naive times stay naive)."""
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO-8601 time such as 2024-07-01T08:30 or 2024-07-01T08:30+08:00"
        ) from None
