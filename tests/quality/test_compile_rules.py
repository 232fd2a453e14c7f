"""Check compilation is a dispatch table: every check type has exactly one rule."""

from __future__ import annotations

from typing import get_args

from lockgate.quality.checks import CHECK_TYPES, CheckSpec
from lockgate.quality.compile import ROW_RULES, TABLE_RULES


def test_every_check_type_has_exactly_one_compile_rule() -> None:
    union = get_args(get_args(CheckSpec)[0])
    assert set(union) == set(CHECK_TYPES.values())
    for cls in CHECK_TYPES.values():
        assert (cls in ROW_RULES) != (cls in TABLE_RULES), cls.__name__
    assert set(ROW_RULES) | set(TABLE_RULES) == set(CHECK_TYPES.values())
