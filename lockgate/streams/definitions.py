"""Parse the ``streams:`` list of a dataset file into :class:`StreamSpec` values, with
file:line problems (called by the project loader; the checks are validated against the
stream's declared ``columns`` as a dataset's are)."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from lockgate._yaml import LineDict, LineList, plain
from lockgate.errors import Problem
from lockgate.project.pydantic_errors import validation_problems
from lockgate.quality.validate import validate_checks
from lockgate.streams.config import StreamSpec


def load_streams(items: Any, file: str, line: int) -> tuple[list[StreamSpec], list[Problem]]:
    """The streams of one file's ``streams:`` value (``line``: where the key is)."""
    if items is None:
        return [], []
    if not isinstance(items, LineList):
        return [], [Problem("'streams' must be a list of streams (- name: ...)", file, line)]
    specs: list[StreamSpec] = []
    problems: list[Problem] = []
    for i, item in enumerate(items):
        at = items.item_line(i)
        if not isinstance(item, LineDict):
            problems.append(Problem(f"streams[{i}] must be a mapping (name: ...)", file, at))
            continue
        name = item.get("name")
        label = f"stream '{name}'" if isinstance(name, str) else "stream"
        try:
            spec = StreamSpec.model_validate(
                {**plain(item), "defined_in": file, "defined_line": at}
            )
        except ValidationError as e:
            problems.extend(validation_problems(e, item, file, StreamSpec, label))
            continue
        found = _column_problems(spec, item, file, label)
        problems.extend(found)
        if not found:
            specs.append(spec)
    return specs, problems


def _column_problems(spec: StreamSpec, raw: LineDict, file: str, label: str) -> list[Problem]:
    cols = {c.lower() for c in spec.columns}
    out: list[Problem] = []
    used = [("dedup", k) for k in (spec.dedup.key if spec.dedup else ())]
    used += [("mask", c) for c in spec.mask]
    used += [("sink", c) for c in spec.sink.partition_by]
    for key, c in used:
        if c.lower() not in cols:
            msg = f"{label}: {key}: unknown column '{c}' (not in columns)"
            out.append(Problem(msg, file, raw.key_line(key)))
    checks = raw.get("checks")
    lines = (
        [checks.item_line(i) for i in range(len(checks))] if isinstance(checks, LineList) else None
    )
    out.extend(validate_checks(spec.checks, spec.columns, file=file, lines=lines))
    return out
