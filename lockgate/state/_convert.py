"""Converting between Python values and state rows (internal to :mod:`lockgate.state`)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, is_dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from sqlalchemy.engine import RowMapping

from lockgate.state.records import (
    AttemptInfo,
    CheckRecord,
    RunInfo,
    RunStatus,
    StepInfo,
    StepStatus,
)


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


def run_info(r: RowMapping) -> RunInfo:
    return RunInfo(
        run_id=r["run_id"],
        seq=int(r["seq"]),
        project=r["project"],
        status=r["status"],
        started_at=r["started_at"],
        finished_at=r["finished_at"],
        duration_s=r["duration_s"],
        selection=r["selection"],
        args=r["args"],
        summary=r["summary"],
        error=r["error"],
        pid=r["pid"],
        host=r["host"],
    )


def step_info(r: RowMapping) -> StepInfo:
    return StepInfo(
        step_id=r["id"],
        run_id=r["run_id"],
        project=r["project"],
        dataset=r["dataset"],
        status=r["status"],
        reason=r["reason"],
        started_at=r["started_at"],
        finished_at=r["finished_at"],
        duration_s=r["duration_s"],
        attempts=r["attempts"],
        rows_in=r["rows_in"],
        rows_out=r["rows_out"],
        rows_quarantined=r["rows_quarantined"],
        input_versions=r["input_versions"],
        output_version=r["output_version"],
        quarantine_version=r["quarantine_version"],
        watermark=r["watermark"],
        schema_version=r["schema_version"],
        batch_id=r["batch_id"],
        message=r["message"],
        rows_skipped=r.get("rows_skipped"),
        skip_reasons=r.get("skip_reasons"),
    )


def attempt_info(r: RowMapping) -> AttemptInfo:
    return AttemptInfo(
        step_id=r["step_id"],
        attempt=r["attempt"],
        status=r["status"],
        started_at=r["started_at"],
        finished_at=r["finished_at"],
        error=r["error"],
        transient=bool(r["transient"]),
    )


def check_record(r: RowMapping) -> CheckRecord:
    return CheckRecord(
        step_id=r["step_id"],
        run_id=r["run_id"],
        project=r["project"],
        dataset=r["dataset"],
        check_name=r["check_name"],
        check_type=r["check_type"],
        dimension=r["dimension"],
        severity=r["severity"],
        failing_rows=r["failing_rows"],
        fraction=r["fraction"],
        passed=bool(r["passed"]),
        observed=r["observed"],
        samples=r["samples"],
        seconds=r["seconds"],
        message=r["message"],
    )
