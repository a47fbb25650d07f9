"""The line a YAML error names, as the user's editor numbers the file's lines."""

from __future__ import annotations

from typing import Any


def error_line(text: str, mark: Any) -> int:
    """1-based line of PyYAML's error `mark`, within the file: at the end of a file without a
    final newline PyYAML points one line past it (`{` alone: "line 2")."""
    last = text.count("\n") + 1  # a final newline opens a last, empty line
    return min(mark.line + 1, last) if mark is not None else 1
