"""Parse the ``streams:`` list of a dataset file into :class:`StreamSpec` values, with
file:line problems (called by the project loader; the checks are validated against the
stream's declared ``columns`` as a dataset's are)."""

from __future__ import annotations

import re
from typing import Any

from pydantic import ValidationError

from lockgate._yaml import LineDict, LineList, plain
from lockgate.errors import Problem
from lockgate.project.pydantic_errors import validation_problems
from lockgate.quality.validate import validate_checks
from lockgate.streams.config import AggregateSpec, StreamSpec, parse_measure


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
    declared = {c.lower() for c in spec.columns}
    cols = {c.lower() for c in spec.all_columns}
    out: list[Problem] = []
    used = [("dedup", k, declared) for k in (spec.dedup.key if spec.dedup else ())]
    used += [("mask", c, cols) for c in spec.mask]
    used += [("sink", c, cols) for c in spec.sink.partition_by]
    used += [("enrich", k, declared) for e in spec.enrich for k in e.keys]
    if spec.event_time is not None:
        used += [("event_time", spec.event_time.column, declared)]
    for agg in spec.aggregates:
        measured = [parse_measure(m)[1] for m in agg.measures.values()]
        used += [("aggregates", c, cols) for c in (*agg.group_by, *measured) if c is not None]
    out.extend(_window_problems(spec, raw, file, label))
    for key, c, known in used:
        if c.lower() not in known:
            msg = f"{label}: {key}: unknown column '{c}' (not in columns)"
            out.append(Problem(msg, file, raw.key_line(key)))
    seen = set(declared)
    for e in spec.enrich:
        for c in e.column_types:
            if c.lower() in seen:
                msg = f"{label}: enrich: column '{c}' from {e.dataset} is already a column"
                out.append(Problem(msg, file, raw.key_line("enrich"), hint="enrich other columns"))
            seen.add(c.lower())
    et = spec.event_time
    if et is not None and et.column.lower() in declared:
        typ = {c.lower(): t for c, t in spec.columns.items()}[et.column.lower()]
        if "TIMESTAMP" not in typ.upper():
            msg = f"{label}: event_time: column '{et.column}' is {typ}, not a TIMESTAMP"
            out.append(Problem(msg, file, raw.key_line("event_time")))
    checks = raw.get("checks")
    lines = (
        [checks.item_line(i) for i in range(len(checks))] if isinstance(checks, LineList) else None
    )
    out.extend(validate_checks(spec.checks, spec.all_columns, file=file, lines=lines))
    return out


def _window_problems(spec: StreamSpec, raw: LineDict, file: str, label: str) -> list[Problem]:
    out: list[Problem] = []
    at = raw.key_line("aggregates")
    if spec.aggregates and spec.event_time is None:
        msg = f"{label}: aggregates need event_time (windows close with its watermark)"
        out.append(Problem(msg, file, at, hint="add event_time: {column: <timestamp column>}"))
    for agg in spec.aggregates:
        size, slide = agg.size_us, agg.slide_us
        if size <= 0 or slide <= 0 or slide > size or size % slide:
            msg = (
                f"{label}: aggregates '{agg.dataset}': size {agg.size} must be a positive "
                f"multiple of slide {agg.slide}"
            )
            out.append(Problem(msg, file, at))
        out.extend(_measure_type_problems(spec, agg, file, at, label))
        clash = set(agg.measures) & {"window_start", "window_end", *agg.group_by}
        if clash:
            msg = f"{label}: aggregates '{agg.dataset}': measure name(s) {sorted(clash)} taken"
            out.append(Problem(msg, file, at))
    return out


_NUMERIC = re.compile(
    r"^(U?(TINY|SMALL|BIG|HUGE)?INT(EGER)?\d*|DOUBLE|FLOAT\d*|REAL|BOOL(EAN)?"
    r"|(DECIMAL|NUMERIC)(\(.*\))?)$"
)


def _measure_type_problems(
    spec: StreamSpec, agg: AggregateSpec, file: str, at: int, label: str
) -> list[Problem]:
    """``sum``/``avg`` of a column that is not a number in the sink (text, a timestamp, a
    masked column: masking makes text) would fail when its first window closes, again
    after every restart: refused when the project loads."""
    types = {c.lower(): t for c, t in spec.columns.items()}
    for e in spec.enrich:
        types.update({c.lower(): t for c, t in e.column_types.items()})
    masked = {c.lower() for c in spec.mask}
    out: list[Problem] = []
    for name, m in agg.measures.items():
        fn, column = parse_measure(m)
        if fn not in ("sum", "avg") or column is None or column.lower() not in types:
            continue
        typ = "masked text" if column.lower() in masked else types[column.lower()]
        if column.lower() in masked or not _NUMERIC.match(typ.strip().upper()):
            msg = (
                f"{label}: aggregates '{agg.dataset}': measure '{name}' is {fn}({column}) "
                f"but '{column}' is {typ}, not a number"
            )
            out.append(Problem(msg, file, at, hint="count, min, max or count_distinct"))
    return out


def stream_table_problems(streams: list[StreamSpec], datasets: set[str]) -> list[Problem]:
    """A stream writes its sink, ``<name>__dlq`` and its late table alone: none may be a
    dataset (a run would rewrite what the stream commits), nor another stream's."""
    lower = {d.lower() for d in datasets}
    out: list[Problem] = []
    owner: dict[str, str] = {}
    for s in streams:
        tables = [s.sink.dataset, s.name + "__dlq"]
        if s.event_time is not None and s.event_time.late != "dlq":
            tables.append(s.event_time.late)
        own = {t.lower() for t in tables}
        for a in s.aggregates:
            if a.dataset.lower() in own:
                msg = f"stream '{s.name}': aggregates write table '{a.dataset}' twice"
                out.append(Problem(msg, s.defined_in, s.defined_line, hint="name it apart"))
            own.add(a.dataset.lower())
            tables.append(a.dataset)
        for t in dict.fromkeys(tables):
            where = (s.defined_in, s.defined_line)
            if t.lower() in lower:
                msg = f"stream '{s.name}': writes table '{t}', which is also a dataset"
                out.append(Problem(msg, *where, hint="give the stream's sink another name"))
            elif t.lower() in owner:
                msg = f"stream '{s.name}': writes table '{t}', as stream '{owner[t.lower()]}' does"
                out.append(Problem(msg, *where))
            owner.setdefault(t.lower(), s.name)
    return out
