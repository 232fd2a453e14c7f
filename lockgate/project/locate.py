"""Where a position inside a dataset's SQL is in the project's files: a ``sql_file`` maps
one to one; inline ``sql:`` in YAML maps onto the lines of its block scalar."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lockgate._yaml import LineDict

#: SQL position (line, column) -> (file, line, column) to report
Locator = Callable[[int | None, int | None], tuple[str, int | None, int | None]]


def file_locator(file: str) -> Locator:
    """Positions in a ``sql_file`` are its own lines."""

    def locate(line: int | None, col: int | None) -> tuple[str, int | None, int | None]:
        return file, line or 1, col

    return locate


def inline_locator(file: str, entry_line: int, raw_t: Any) -> Locator:
    """Translate a position inside inline ``sql:`` (of the dataset entry at line
    ``entry_line`` of ``file``) into a line of the YAML file."""
    mark = raw_t.value_marks.get("sql") if isinstance(raw_t, LineDict) else None

    def locate(line: int | None, col: int | None) -> tuple[str, int | None, int | None]:
        if mark is None:
            return file, entry_line, None
        if mark.style == "|" and line is not None:
            return file, mark.line + line, None
        if mark.style in (None, "'", '"') and line == 1 and col is not None:
            return file, mark.line, mark.column + col - (1 if mark.style is None else 0)
        return file, mark.line, None

    return locate
