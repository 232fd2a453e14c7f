"""Personal data in what lockgate shows: columns a dataset lists under ``pii:`` (or every
column of a dataset tagged ``pii``) are masked in sample rows, quarantine views and
profiles unless the reader may see them — on the command line with ``--show-pii``, in the
dashboard with an ``admin`` token (or on localhost without tokens). The data itself is
never changed: ``lockgate.read`` returns the table as published.

A masked value is ``'***'``; NULL stays NULL (that a value is missing is not personal). A
quarantined row's raw record (the line as read) and the reasons quoting its values are
masked too, and filtering a quarantine by a masked column's value is refused (it would
answer "is Alice's e-mail x?" one guess at a time). The failing sample rows of check results
are masked when a run records them: the state store, alerts and ``lockgate runs`` never hold
personal values (so ``lockgate why`` cannot trace a sample through a personal key column).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from lockgate.errors import UsageError

if TYPE_CHECKING:
    from lockgate.project import Project
    from lockgate.project.models import DatasetSpec
    from lockgate.quality.profile import Profile

MASK = "***"
#: lockgate's own columns are never personal, except the raw record (handled apart)
_OWN = "_lg_"
_TEXTS = ("_lg_reason",)
#: a quarantine table's columns that quote a record's values (masked whole in a profile)
_QUOTING = frozenset({"_lg_raw_record", "_lg_reason", "_lg_why"})
#: a personal value quoted inside another column's text is masked there too when it is at
#: least this long (masking every "5" of a text would wreck it and protect nothing)
_MIN_QUOTED = 3


class PiiColumns:
    """Which columns of one dataset are personal (``everything``: the dataset is tagged)."""

    def __init__(self, columns: Iterable[str] = (), *, everything: bool = False) -> None:
        # SQL names are case-insensitive: ``pii: [Email]`` covers the column ``email``
        self.columns = frozenset(c.lower() for c in columns)
        self.everything = everything

    def __bool__(self) -> bool:
        return self.everything or bool(self.columns)

    def __contains__(self, column: object) -> bool:
        if not isinstance(column, str) or column.startswith(_OWN):
            return False
        return self.everything or column.lower() in self.columns


def pii_columns(project: Project, dataset: str) -> PiiColumns:
    spec = project.datasets.get(dataset)
    return PiiColumns() if spec is None else spec_pii(spec)


def spec_pii(spec: DatasetSpec) -> PiiColumns:
    """The dataset's personal columns: those under ``pii:`` and those under ``mask:`` (the
    table publishes them masked, but the checks' failing samples and the quarantine hold
    the clear values); every column when the dataset is tagged ``pii`` and lists none."""
    tagged = any(t.lower() == "pii" for t in spec.tags)
    return PiiColumns((*spec.pii, *spec.mask), everything=tagged and not spec.pii)


def reads_personal(project: Project, dataset: str) -> bool:
    """``dataset`` or any dataset upstream of it has personal columns (a value a failed
    query quotes may come from any of them, copied through datasets that are not tagged)."""
    if dataset not in project.datasets:
        return False
    names = (dataset, *project.upstream(dataset, transitive=True))
    return any(pii_columns(project, n) for n in names)


#: table-level checks whose observed value is one row's value of their column
_ONE_VALUE_AGGS = frozenset({"min", "max", "median", "quantile"})


def mask_check_samples(
    checks: list[dict[str, Any]], pii: PiiColumns, specs: Iterable[Any] = ()
) -> list[str]:
    """Mask the failing sample rows a step's check results carry, before they are recorded:
    the state store, ``lockgate runs``, the dashboard and alert payloads never hold personal
    values (the quarantine, read with the right to see them, keeps the rows). A table-level
    check of a personal column (``specs``: the step's checks) that observes one row's value
    (``min``/``max``/``median``/``quantile``, ``freshness``'s newest value) keeps no value
    in ``observed`` or ``message`` either. Returns the values hidden so (to scrub them from
    texts quoting the messages, e.g. the quality gate's reason: :func:`scrub`)."""
    hidden: list[str] = []
    if not pii:
        return hidden
    revealing = {_name(s) for s in specs if _reveals_value(s, pii)}
    for c in checks:
        samples = c.get("samples")
        if isinstance(samples, list):
            c["samples"] = [mask_row(r, pii) if isinstance(r, dict) else r for r in samples]
        if c.get("name") in revealing and c.get("observed") is not None:
            shown = str(c["observed"])
            c["observed"] = MASK
            if isinstance(c.get("message"), str) and shown:
                c["message"] = c["message"].replace(shown, MASK)
                hidden.append(shown)
    return hidden


def scrub(text: str | None, hidden: list[str]) -> str | None:
    """``text`` with each of ``hidden`` (longest first) replaced by :data:`MASK`."""
    if not text or not hidden:
        return text
    return _scrub(text, sorted(set(hidden), key=len, reverse=True))


def _name(spec: Any) -> str | None:
    return getattr(spec, "check_name", None)


def _reveals_value(spec: Any, pii: PiiColumns) -> bool:
    kind, column = getattr(spec, "type", None), getattr(spec, "column", None)
    if column not in pii:
        return False
    return kind == "freshness" or (
        kind == "aggregate_between" and getattr(spec, "agg", None) in _ONE_VALUE_AGGS
    )


def mask_row(row: Mapping[str, Any], pii: PiiColumns) -> dict[str, Any]:
    """``row`` with personal values replaced by :data:`MASK`, and scrubbed from the row's
    raw record and reasons (``_lg_raw_record``, ``_lg_reason``, ``_lg_why``)."""
    out = dict(row)
    if not pii:
        return out
    secrets = sorted(
        {str(v) for k, v in row.items() if k in pii and v is not None and str(v)},
        key=len,
        reverse=True,  # longest first: a value containing another is masked whole
    )
    quotable = [x for x in secrets if len(x) >= _MIN_QUOTED]
    for k, v in row.items():
        if k in pii and v is not None:
            out[k] = MASK
        elif quotable and isinstance(v, str) and not k.startswith(_OWN):
            out[k] = _scrub(v, quotable)  # a personal value quoted in another column
    if out.get("_lg_raw_record") is not None:
        out["_lg_raw_record"] = MASK  # which field is which is not known for a bad line
    for k in _TEXTS:
        if isinstance(out.get(k), str):
            out[k] = _mask_quoted_values(_scrub(out[k], secrets), pii)
    if isinstance(out.get("_lg_why"), list):
        out["_lg_why"] = [
            {**w, "reason": _mask_quoted_values(_scrub(w["reason"], secrets), pii)}
            if isinstance(w, dict) and isinstance(w.get("reason"), str)
            else w
            for w in out["_lg_why"]
        ]
    return out


def mask_rows(rows: Iterable[Mapping[str, Any]], pii: PiiColumns) -> list[dict[str, Any]]:
    return [mask_row(r, pii) for r in rows]


def mask_recorded(project: Project, records: Iterable[Any]) -> list[Any]:
    """Recorded check results (:class:`~lockgate.state.records.CheckRecord`) with their
    failing samples masked by each dataset's *current* personal columns, when read: a run
    masks them when it records them, but one recorded before a column was declared personal
    (or by an older lockgate) holds the clear values."""
    import dataclasses

    out = []
    for r in records:
        pii = pii_columns(project, r.dataset)
        if pii and isinstance(r.samples, list):
            masked = [mask_row(s, pii) if isinstance(s, dict) else s for s in r.samples]
            r = dataclasses.replace(r, samples=masked)
        out.append(r)
    return out


def _scrub(text: str, secrets: list[str]) -> str:
    for s in secrets:
        text = text.replace(s, MASK)
    return text


#: where a reason quotes the value a column could not be converted from
#: (``lockgate.sources._records``: ``column 'c': cannot convert 'v' to T``;
#: ``lockgate.sources._db``: ``column c (type): value 'v' is not representable as T``);
#: the value ends at the last ``' to``/``' is not`` before the next column's problem
_QUOTED_VALUE = re.compile(
    r"(?P<head>column '?(?P<col>[^' ]+)'?(?: \([^)]*\))?: (?:cannot convert|value) ')"
    r"(?P<value>.*?)(?P<tail>' (?:to|is not representable as) [^;']*?(?=; (?:[\w ]+: )?column |$))",
    re.DOTALL,
)


def _mask_quoted_values(text: str, pii: PiiColumns) -> str:
    """``text`` with the values quoted for personal columns by a conversion reason masked."""

    def sub(m: re.Match[str]) -> str:
        if m.group("col") not in pii:
            return m.group(0)
        return m.group("head") + MASK + m.group("tail")

    def other(m: re.Match[str]) -> str:  # another engine message about the column's value
        if m.group("col") not in pii:
            return m.group(0)
        return m.group("head") + _mask_quotes(m.group("rest"))

    return _OTHER_VALUE.sub(other, _QUOTED_VALUE.sub(sub, text))


#: ``column 'c': <the engine's message>`` (a CSV cast error in another wording)
_OTHER_VALUE = re.compile(
    r"(?P<head>column '(?P<col>[^']+)': )(?!cannot convert '\*\*\*'|cannot convert '[^']*' to )"
    r"(?P<rest>.*?)(?=; (?:[\w ]+: )?column |$)",
    re.DOTALL,
)


#: engine (DuckDB) error classes whose message quotes the data that failed
_DATA_ERROR = re.compile(
    r"(?P<kind>(?:Conversion|Invalid Input|Constraint|Out of Range) Error: )"
    r"(?P<detail>.*?)(?=\s+LINE \d+:|$)",
    re.DOTALL,
)
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
#: values DuckDB echoes without quotes: ``with value 300``; a strptime error repeats the
#: input after the format specifier, up to its own ``Error:``
_UNQUOTED = (
    (re.compile(r"\bwith value \S+"), f"with value {MASK}"),
    (re.compile(r"(according to format specifier \S+)\s.*?(?=\s*Error:|$)", re.DOTALL), r"\1"),
)


def scrub_engine_error(text: str | None) -> str | None:
    """``text`` with the values an engine error about data quotes masked (conversion,
    invalid input, constraint, out of range); identifiers in other errors (a binder error's
    column names) and the SQL after ``LINE n:`` are kept. For steps that read personal
    columns (:func:`reads_personal`): the error is stored, shown and sent to alerts.

    >>> scrub_engine_error("Conversion Error: Could not convert string 'ann@x.io' to INT32")
    "Conversion Error: Could not convert string '***' to INT32"
    """
    if not text:
        return text

    return _DATA_ERROR.sub(lambda m: m.group("kind") + _mask_quotes(m.group("detail")), text)


def _mask_quotes(text: str) -> str:
    """Every quoted part of an engine message masked, and the values it echoes unquoted."""
    text = _QUOTED.sub(lambda q: q.group(0)[0] + MASK + q.group(0)[0], text)
    for pattern, repl in _UNQUOTED:
        text = pattern.sub(repl, text)
    return text


def refuse_masked_filter(pii: PiiColumns, column: str | None, dataset: str) -> None:
    """Filtering by the value of a masked column would reveal it one guess at a time."""
    if column is not None and column in pii:
        raise UsageError(
            f"column '{column}' of '{dataset}' holds personal data: filtering by its value "
            "needs the right to see it",
            hint="--show-pii on the command line; an admin token in the dashboard",
        )


def mask_profile(profile: Profile, pii: PiiColumns) -> Profile:
    """``profile`` with the values of personal columns masked (min, max, quantiles, top
    values, histogram); counts, lengths and pattern matches stay."""
    import dataclasses

    if not pii:
        return profile
    columns = tuple(
        dataclasses.replace(
            c,
            min=None if c.min is None else MASK,
            max=None if c.max is None else MASK,
            quantiles=tuple((q, MASK) for q, _ in c.quantiles),
            top_values=tuple((MASK, n) for _, n in c.top_values),
            histogram=(),
        )
        if c.name in pii or c.name in _QUOTING
        else c
        for c in profile.columns
    )
    return dataclasses.replace(profile, columns=columns)
