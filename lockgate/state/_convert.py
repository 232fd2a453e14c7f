"""Converting between Python values and state rows (internal to :mod:`lockgate.state`)."""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, fields, is_dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy.engine import RowMapping

from lockgate.state.records import (
    AttemptInfo,
    CheckRecord,
    RunInfo,
    RunStatus,
    StepInfo,
    StepStatus,
)

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

R = TypeVar("R", bound="DataclassInstance")


def status_value(value: str | Enum, kind: type[RunStatus] | type[StepStatus]) -> str:
    raw = value.value if isinstance(value, Enum) else value
    try:
        return kind(raw).value
    except ValueError:
        valid = ", ".join(s.value for s in kind)
        raise ValueError(f"unknown {kind.__name__} {raw!r}: use one of {valid}") from None


def text_or_none(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, Enum):
        return str(value.value)
    return str(value)


def finite_float(value: Any) -> float | None:
    """A finite float, or None for anything that is not a number (or is NaN/inf)."""
    if value is None or isinstance(value, str | bytes | datetime | date):
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if f == f and f not in (float("inf"), float("-inf")) else None


def as_mapping(obj: Any) -> Mapping[str, Any]:
    if isinstance(obj, Mapping):
        return obj
    if is_dataclass(obj) and not isinstance(obj, type):
        return asdict(obj)
    if hasattr(obj, "model_dump"):
        return dict(obj.model_dump())
    return dict(vars(obj))


def duration(start: datetime | None, end: datetime) -> float | None:
    return None if start is None else max(0.0, (end - start).total_seconds())


def normalise_schema(schema: Sequence[Mapping[str, Any] | Sequence[Any]]) -> list[dict[str, str]]:
    """``[{name, type}, …]`` from mappings with ``name``/``type`` or ``(name, type)`` pairs."""
    out: list[dict[str, str]] = []
    for col in schema:
        if isinstance(col, Mapping):
            out.append({"name": str(col["name"]), "type": str(col["type"])})
        else:
            name, typ = col
            out.append({"name": str(name), "type": str(typ)})
    return out


def schema_fingerprint(schema: Sequence[Mapping[str, Any] | Sequence[Any]]) -> str:
    """sha256 over the ordered (name, type) pairs."""
    canon = json.dumps([[c["name"], c["type"]] for c in normalise_schema(schema)])
    return hashlib.sha256(canon.encode()).hexdigest()


def watermark_text(value: Any) -> tuple[str, str | None]:
    if isinstance(value, datetime):
        return value.isoformat(), "timestamp"
    if isinstance(value, date):
        return value.isoformat(), "date"
    if isinstance(value, bool):
        return str(value).lower(), "boolean"
    if isinstance(value, int):
        return str(value), "integer"
    if isinstance(value, float | Decimal):
        return str(value), "decimal" if isinstance(value, Decimal) else "float"
    return str(value), None


def from_row(cls: type[R], r: RowMapping, **renamed: str) -> R:
    """A record dataclass from a row: each field from the column of the same name (or the
    column ``renamed`` maps it to); a column a database has not migrated yet reads None."""
    row = dict(r)  # one conversion: RowMapping.get per field is several times slower
    return cls(**{f: row.get(renamed.get(f, f)) for f in _field_names(cls)})


@functools.cache
def _field_names(cls: type[Any]) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls))


def run_info(r: RowMapping) -> RunInfo:
    return from_row(RunInfo, r)


def step_info(r: RowMapping) -> StepInfo:
    return from_row(StepInfo, r, step_id="id")


def attempt_info(r: RowMapping) -> AttemptInfo:
    return from_row(AttemptInfo, r)


def check_record(r: RowMapping) -> CheckRecord:
    return from_row(CheckRecord, r)
