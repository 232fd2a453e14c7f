"""Profiling: per-column statistics of a table in (at most) two scans.

Pass 1 is **one** SQL statement with every aggregate of every column: row count, null
count, approximate distinct count, min/max, mean/stddev, approximate quantiles, string
lengths, counts of well-known formats (email, UUID, ISO date/timestamp) and the
approximate top-k *values* (``approx_top_k``). Its result row is kept in a one-row temp
table.

Pass 2 is needed because DuckDB's ``approx_top_k`` returns the frequent values but not
their counts, and a histogram needs min/max first. It is again **one** statement for all
columns: it cross-joins the table with the pass-1 row and computes, per column, the exact
counts of the top values (``histogram(col) FILTER (WHERE list_contains(top, col))``) and,
per numeric/temporal column, an equal-width histogram. No literals from the data are
formatted into SQL: the top values stay inside DuckDB.

Quantiles use ``approx_quantile`` (t-digest, bounded memory). Measured on 5M doubles it
costs about the same as the exact ``quantile_cont`` (0.38 s vs 0.42 s) but does not hold
every value in memory.

Floating-point NaN is counted in ``nan_count`` and excluded from min/max/mean/stddev/
quantiles/histogram (DuckDB orders NaN above every number, so it would otherwise become
the maximum and poison the mean). Infinities are kept.

Values that Python cannot always receive from DuckDB without extra modules
(``TIMESTAMP WITH TIME ZONE`` needs ``pytz``), and temporal values in general, are
returned as ISO-like strings (``'2024-01-01 10:00:00+00'``), so a profile is always
JSON-serialisable.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from lockgate.engine.base import EngineError
from lockgate.engine.session import as_engine, duckdb_connection
from lockgate.engine.types import is_float, is_integer, is_numeric, is_string, is_temporal
from lockgate.errors import InputError, UsageError
from lockgate.sources.targets import TargetRead, is_delta_table, register_target, target_label

if TYPE_CHECKING:
    from lockgate.engine.session import EngineLike

logger = logging.getLogger(__name__)

DEFAULT_QUANTILES: tuple[float, ...] = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
HISTOGRAM_BINS = 12

#: formats counted on every string column (full match); suggestions use them
PATTERNS: dict[str, str] = {
    "email": r"^[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}$",
    "uuid": r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
    "iso_date": r"^\d{4}-\d{2}-\d{2}$",
    "iso_datetime": r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+\-]\d{2}(:?\d{2})?)?$",
}

Scalar = int | float | str | bool | None


@dataclass(frozen=True)
class HistogramBin:
    """One bar. Integer and DATE bins are closed ranges ``[lo, hi]``; other bins hold
    ``[lo, hi)`` except the last, which includes ``hi``. Timestamps are UTC text."""

    lo: Scalar
    hi: Scalar
    count: int


@dataclass(frozen=True)
class ColumnProfile:
    """Statistics of one column. Fields that do not apply to the column's kind are None."""

    name: str
    type: str
    #: numeric | string | temporal | boolean | other
    kind: str
    rows: int
    null_count: int
    null_pct: float
    distinct_approx: int | None = None
    nan_count: int = 0
    empty_count: int = 0
    min: Scalar = None
    max: Scalar = None
    mean: float | None = None
    stddev: float | None = None
    #: (quantile, value) pairs, e.g. (0.5, 42.0)
    quantiles: tuple[tuple[float, Scalar], ...] = ()
    #: most frequent non-null values with exact counts, most frequent first
    top_values: tuple[tuple[Scalar, int], ...] = ()
    min_len: int | None = None
    max_len: int | None = None
    mean_len: float | None = None
    histogram: tuple[HistogramBin, ...] = ()
    #: number of non-null values that fully match each entry of PATTERNS (strings only)
    patterns: Mapping[str, int] = field(default_factory=dict)

    @property
    def non_null(self) -> int:
        return self.rows - self.null_count

    @property
    def is_integer(self) -> bool:
        return is_integer(self.type)


@dataclass(frozen=True)
class Profile:
    """The profile of one table: what was profiled, when, and per-column statistics."""

    target: str
    rows: int
    columns: tuple[ColumnProfile, ...]
    created_at: str
    seconds: float
    #: number of scans over the data (1 or 2)
    passes: int
    #: input records that could not be read (not in ``rows``): records = rows + rejected
    rejected: int = 0
    #: a few of them: ``{"file", "line", "reason"}``
    rejected_sample: tuple[Mapping[str, Any], ...] = ()

    @property
    def records(self) -> int:
        """Records read: the rows profiled plus the records that could not be read."""
        return self.rows + self.rejected

    def column(self, name: str) -> ColumnProfile:
        """The profile of column ``name`` (KeyError if there is none)."""
        return {c.name: c for c in self.columns}[name]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (``json.dumps(p.to_dict())`` works)."""
        out = _lists(asdict(self))
        assert isinstance(out, dict)
        out["records"] = self.records
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Profile:
        """Inverse of :meth:`to_dict` (e.g. to load a stored JSON baseline)."""
        cols = []
        for c in d["columns"]:
            c = dict(c)
            c["quantiles"] = tuple((float(q), v) for q, v in c.get("quantiles", ()))
            c["top_values"] = tuple((v, int(n)) for v, n in c.get("top_values", ()))
            c["histogram"] = tuple(HistogramBin(**b) for b in c.get("histogram", ()))
            c["patterns"] = dict(c.get("patterns", {}))
            cols.append(ColumnProfile(**c))
        return cls(
            target=d["target"],
            rows=int(d["rows"]),
            columns=tuple(cols),
            created_at=d["created_at"],
            seconds=float(d["seconds"]),
            passes=int(d["passes"]),
            rejected=int(d.get("rejected", 0)),
            rejected_sample=tuple(dict(r) for r in d.get("rejected_sample", ())),
        )


# ----------------------------------------------------------------------------- helpers


def _lists(v: Any) -> Any:
    """Tuples to lists, recursively (what JSON gives back)."""
    if isinstance(v, dict):
        return {k: _lists(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_lists(x) for x in v]
    return v


def _kind(duck_type: str) -> str:
    t = duck_type.upper()
    if is_numeric(t):
        return "numeric"
    if is_string(t) or t.startswith("ENUM"):
        return "string"
    if t == "BOOLEAN":
        return "boolean"
    if is_temporal(t) or t in ("TIME", "TIME WITH TIME ZONE"):  # a time of day has a range
        return "temporal"
    return "other"


def _table_expr(name: str) -> exp.Table:
    """Parse ``name`` (``t``, ``schema.t``, ``db.schema.t``) as a table with quoted parts."""
    parts = name.split(".")
    if not all(parts):
        raise UsageError(f"invalid table name {name!r}")
    ids = [exp.to_identifier(p, quoted=True) for p in parts]
    table = exp.Table(this=ids[-1])
    if len(ids) >= 2:
        table.set("db", ids[-2])
    if len(ids) >= 3:
        table.set("catalog", ids[-3])
    return table


def _col(name: str, table: str | None = None) -> exp.Column:
    return exp.column(name, table=table, quoted=True)


def _fn(name: str, *args: exp.Expr) -> exp.Expr:
    return exp.Anonymous(this=name, expressions=list(args))


def _num(v: float | int) -> exp.Expr:
    if isinstance(v, float) and not math.isfinite(v):
        raise ValueError(v)
    return exp.convert(v)


def _cast(e: exp.Expr, to: str) -> exp.Expr:
    return exp.Cast(this=e, to=exp.DataType.build(to, dialect="duckdb"))


def _filter(agg: exp.Expr, cond: exp.Expr | None) -> exp.Expr:
    return agg if cond is None else exp.Filter(this=agg, expression=exp.Where(this=cond))


def _py(v: Any) -> Scalar:
    """A DuckDB value as a JSON-friendly Python scalar."""
    if v is None or isinstance(v, bool | int | str):
        return v
    if isinstance(v, float):
        return v
    if isinstance(v, Decimal):
        return float(v)
    return str(v)


def _float(v: Any) -> float | None:
    if v is None:
        return None
    f = float(v)
    return None if math.isnan(f) else f


# ----------------------------------------------------------------------------- profile


def profile(
    con: EngineLike,
    relation_or_table: str,
    *,
    top_k: int = 10,
    quantiles: Sequence[float] = DEFAULT_QUANTILES,
    histogram_bins: int = HISTOGRAM_BINS,
    target: str | None = None,
) -> Profile:
    """Profile a table, view or registered relation ``relation_or_table`` of engine ``con``
    (or a DuckDB connection).

    One scan computes every aggregate; a second scan (skipped for an empty table) adds the
    exact counts of the top values and the histograms. ``target`` is the label stored in
    the profile (default: the table name).

    >>> from lockgate.engine.session import DuckDBEngine
    >>> con = DuckDBEngine()
    >>> _ = con.execute("CREATE TABLE t AS SELECT * FROM (VALUES (1, 'a'), (2, NULL)) v(x, s)")
    >>> p = profile(con, "t")
    >>> (p.rows, p.column("s").null_count, p.column("x").max)
    (2, 1, 2)
    """
    if top_k < 1:
        raise UsageError(f"top_k must be >= 1, got {top_k}")
    qs = [float(q) for q in quantiles]
    if any(not 0.0 <= q <= 1.0 for q in qs):
        raise UsageError(f"quantiles must be within [0, 1], got {list(quantiles)}")
    started = time.perf_counter()
    con = as_engine(con)
    table = _table_expr(relation_or_table)
    try:
        described = con.execute(
            exp.Describe(this=exp.select(exp.Star()).from_(table.copy()))
        ).fetchall()
    except EngineError as e:
        raise InputError(
            f"cannot profile {relation_or_table!r}: {e}",
            hint="pass the name of a table or view registered on the connection",
        ) from e
    cols = [(str(r[0]), str(r[1])) for r in described]
    kinds = [_kind(t) for _, t in cols]

    # ---- pass 1: every aggregate of every column, one statement, kept in a temp table
    stats_table = f"_lg_profile_{uuid.uuid4().hex[:12]}"
    aggs: list[exp.Expr] = [exp.alias_(exp.Count(this=exp.Star()), "n", quoted=True)]
    for i, ((name, _typ), kind) in enumerate(zip(cols, kinds, strict=True)):
        aggs.extend(_pass1_aggs(i, name, _typ, kind, top_k, qs))
    pass1 = exp.select(*aggs).from_(table.copy())
    create = exp.Create(
        this=_table_expr(stats_table),
        kind="TABLE",
        expression=pass1,
        properties=exp.Properties(expressions=[exp.TemporaryProperty()]),
    )
    con.execute(create)
    try:
        fetch = exp.select(*_pass1_fetch(cols, kinds)).from_(_table_expr(stats_table))
        s = con.fetch_row(fetch)
        assert s
        rows = int(s["n"])

        # ---- pass 2: exact top-value counts + histograms, one statement
        bins: dict[int, _BinSpec] = {}
        passes = 1
        tops: dict[int, list[tuple[Scalar, int]]] = {}
        hists: dict[int, tuple[HistogramBin, ...]] = {}
        if rows > 0:
            p2: list[exp.Expr] = []
            for i, ((name, typ), kind) in enumerate(zip(cols, kinds, strict=True)):
                p2.extend(_pass2_aggs(i, name, typ, kind, s, stats_table, bins, histogram_bins))
            if p2:
                passes = 2
                q2 = exp.select(*p2).from_(table.copy().as_("_lg_t", quoted=True))
                q2 = q2.join(_table_expr(stats_table).as_("_lg_s", quoted=True), join_type="cross")
                r2 = con.fetch_row(q2)
                assert r2
                for i in range(len(cols)):
                    entries = r2.get(f"c{i}_topn")
                    if entries is not None:
                        order = {_py(v): k for k, v in enumerate(s.get(f"c{i}_top") or [])}
                        pairs = [(_py(e["key"]), int(e["value"])) for e in entries]
                        pairs.sort(key=lambda p: (-p[1], order.get(p[0], 0)))
                        tops[i] = pairs[:top_k]
                    if i in bins and r2.get(f"c{i}_hist") is not None:
                        hists[i] = _hist_bins(bins[i], r2[f"c{i}_hist"])
    finally:
        drop = exp.Drop(tables=[_table_expr(stats_table)], kind="TABLE", exists=True)
        con.execute(drop)

    profiles = [
        _column_profile(i, name, typ, kind, s, rows, qs, tops.get(i, []), hists.get(i, ()))
        for i, ((name, typ), kind) in enumerate(zip(cols, kinds, strict=True))
    ]
    seconds = time.perf_counter() - started
    logger.debug(
        "profiled %s: %d rows, %d columns, %.3fs", relation_or_table, rows, len(cols), seconds
    )
    return Profile(
        target=target or relation_or_table,
        rows=rows,
        columns=tuple(profiles),
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        seconds=round(seconds, 4),
        passes=passes,
    )


def _pass1_aggs(
    i: int, name: str, typ: str, kind: str, top_k: int, qs: list[float]
) -> list[exp.Expr]:
    c = _col(name)
    a = f"c{i}_"
    out: list[exp.Expr] = [exp.alias_(exp.Count(this=c.copy()), a + "nn", quoted=True)]
    if kind == "other" and typ.upper() not in ("UUID", "BLOB", "INTERVAL"):
        return out  # nested types: counts only
    out.append(exp.alias_(_fn("approx_count_distinct", c.copy()), a + "nd", quoted=True))
    floating = is_float(typ)
    ok: exp.Expr | None = None
    if floating:
        isnan = _fn("isnan", c.copy())
        out.append(exp.alias_(_fn("count_if", isnan.copy()), a + "nan", quoted=True))
        ok = exp.Not(this=isnan)
    out.append(
        exp.alias_(_fn("approx_top_k", c.copy(), exp.Literal.number(top_k)), a + "top", quoted=True)
    )
    if kind in ("numeric", "string", "temporal"):
        out.append(exp.alias_(_filter(exp.Min(this=c.copy()), ok), a + "min", quoted=True))
        out.append(exp.alias_(_filter(exp.Max(this=c.copy()), ok), a + "max", quoted=True))
    if kind in ("numeric", "temporal") and qs:
        qlist = exp.Array(expressions=[_num(q) for q in qs])
        out.append(
            exp.alias_(_filter(_fn("approx_quantile", c.copy(), qlist), ok), a + "q", quoted=True)
        )
    if kind == "numeric":
        x = _cast(c.copy(), "DOUBLE")
        out.append(exp.alias_(_filter(exp.Avg(this=x.copy()), ok), a + "mean", quoted=True))
        out.append(exp.alias_(_filter(exp.Stddev(this=x.copy()), ok), a + "sd", quoted=True))
    if kind == "string":
        s = _cast(c.copy(), "VARCHAR")
        ln = exp.Length(this=s.copy())
        out.append(exp.alias_(exp.Min(this=ln.copy()), a + "minlen", quoted=True))
        out.append(exp.alias_(exp.Max(this=ln.copy()), a + "maxlen", quoted=True))
        out.append(exp.alias_(exp.Avg(this=ln.copy()), a + "meanlen", quoted=True))
        empty = exp.EQ(this=s.copy(), expression=exp.Literal.string(""))
        out.append(exp.alias_(_fn("count_if", empty), a + "empty", quoted=True))
        for pname, pattern in PATTERNS.items():
            m = _fn("regexp_full_match", s.copy(), exp.Literal.string(pattern))
            out.append(exp.alias_(_fn("count_if", m), f"{a}pat_{pname}", quoted=True))
    return out


def _pass1_fetch(cols: list[tuple[str, str]], kinds: list[str]) -> list[exp.Expr]:
    """Select the pass-1 row, casting temporal/other values to text so any type can be fetched."""
    out: list[exp.Expr] = [_col("n")]
    for i, ((_name, _typ), kind) in enumerate(zip(cols, kinds, strict=True)):
        for suffix in (
            "nn",
            "nd",
            "nan",
            "top",
            "min",
            "max",
            "q",
            "mean",
            "sd",
            "minlen",
            "maxlen",
            "meanlen",
            "empty",
            *(f"pat_{p}" for p in PATTERNS),
        ):
            if not _has(i, suffix, _typ, kind):
                continue
            e: exp.Expr = _col(f"c{i}_{suffix}")
            if kind in ("temporal", "other") and suffix in ("min", "max"):
                e = _cast(e, "VARCHAR")
            elif kind in ("temporal", "other") and suffix in ("top", "q"):
                e = _cast(e, "VARCHAR[]")
            out.append(exp.alias_(e, f"c{i}_{suffix}", quoted=True))
    return out


def _has(i: int, suffix: str, typ: str, kind: str) -> bool:
    """Whether pass 1 computed ``c{i}_{suffix}`` (mirrors :func:`_pass1_aggs`)."""
    nested = kind == "other" and typ.upper() not in ("UUID", "BLOB", "INTERVAL")
    if suffix == "nn":
        return True
    if nested:
        return False
    if suffix in ("nd", "top"):
        return True
    if suffix == "nan":
        return is_float(typ)
    if suffix in ("min", "max"):
        return kind in ("numeric", "string", "temporal")
    if suffix == "q":
        return kind in ("numeric", "temporal")
    if suffix in ("mean", "sd"):
        return kind == "numeric"
    return kind == "string"


def _pass2_aggs(
    i: int,
    name: str,
    typ: str,
    kind: str,
    s: Mapping[str, Any],
    stats_table: str,
    bins: dict[int, _BinSpec],
    nbins: int,
) -> list[exp.Expr]:
    out: list[exp.Expr] = []
    c = _col(name, "_lg_t")
    if s.get(f"c{i}_top"):
        top = _col(f"c{i}_top", "_lg_s")
        hist = exp.Filter(
            this=_fn("histogram", c.copy()),
            expression=exp.Where(this=_fn("list_contains", top, c.copy())),
        )
        key_type = "VARCHAR" if kind in ("temporal", "other") else typ
        entries = _cast(_fn("map_entries", hist), f"STRUCT(key {key_type}, value BIGINT)[]")
        out.append(exp.alias_(entries, f"c{i}_topn", quoted=True))
    spec = _bin_spec(i, typ, kind, s, nbins)
    if spec is not None:
        bins[i] = spec
        if kind == "numeric":
            x: exp.Expr = _cast(c.copy(), "DOUBLE")
        elif typ.upper() == "DATE":  # whole days since the epoch
            x = exp.Div(this=_fn("epoch", c.copy()), expression=_num(86400))
        else:
            x = _fn("epoch", c.copy())
        offset = exp.Paren(this=exp.Sub(this=x, expression=_num(spec.lo)))
        idx: exp.Expr = exp.Floor(this=exp.Div(this=offset, expression=_num(spec.width)))
        # TRY_CAST: NaN/inf rows are filtered out below, but the cast is evaluated first
        idx = exp.TryCast(this=idx, to=exp.DataType.build("BIGINT"))
        idx = exp.Least(this=idx, expressions=[_num(spec.n - 1)])
        cond: exp.Expr | None = None
        if is_float(typ):  # NaN and infinities fall outside every finite bin
            cond = exp.and_(exp.Not(this=_fn("isnan", c.copy())), _fn("isfinite", c.copy()))
        h = _cast(
            _fn("map_entries", _filter(_fn("histogram", idx), cond)),
            "STRUCT(key BIGINT, value BIGINT)[]",
        )
        out.append(exp.alias_(h, f"c{i}_hist", quoted=True))
    return out


@dataclass(frozen=True)
class _BinSpec:
    lo: float
    width: float
    n: int
    #: values are whole numbers (integers, or days for DATE): bins are integer ranges
    integer: bool
    hi: float
    #: "number" | "date" (lo/width in days) | "timestamp" (lo/width in epoch seconds)
    unit: str


def _bin_spec(i: int, typ: str, kind: str, s: Mapping[str, Any], nbins: int) -> _BinSpec | None:
    """Equal-width bins over a column's finite range, or None when no histogram fits."""
    mn, mx = s.get(f"c{i}_min"), s.get(f"c{i}_max")
    if mn is None or mx is None:
        return None
    t = typ.upper()
    if kind == "numeric":
        lo, hi, integer, unit = float(mn), float(mx), is_integer(t), "number"
    elif t == "DATE":
        lo_d, hi_d = _parse_ts(str(mn)), _parse_ts(str(mx))
        if lo_d is None or hi_d is None:
            return None
        lo, hi, integer, unit = lo_d.timestamp() // 86400, hi_d.timestamp() // 86400, True, "date"
    elif kind == "temporal" and t.startswith("TIMESTAMP"):
        lo_t, hi_t = _parse_ts(str(mn)), _parse_ts(str(mx))
        if lo_t is None or hi_t is None:
            return None
        lo, hi, integer, unit = lo_t.timestamp(), hi_t.timestamp(), False, "timestamp"
    else:
        return None
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return None
    if integer:
        width = float(max(1, math.ceil((hi - lo + 1) / nbins)))
        return _BinSpec(lo, width, math.ceil((hi - lo + 1) / width), True, hi, unit)
    return _BinSpec(lo, (hi - lo) / nbins, nbins, False, hi, unit)


def _parse_ts(text: str) -> datetime | None:
    """Parse DuckDB's text form of a DATE/TIMESTAMP[TZ]; naive values are taken as UTC."""
    try:
        d = datetime.fromisoformat(text)
    except ValueError:
        return None
    return d if d.tzinfo is not None else d.replace(tzinfo=UTC)


def _hist_bins(spec: _BinSpec, entries: list[dict[str, Any]]) -> tuple[HistogramBin, ...]:
    counts = [0] * spec.n
    for e in entries:
        k = int(e["key"])
        if 0 <= k < spec.n:
            counts[k] += int(e["value"])
    out = []
    for k in range(spec.n):
        a = spec.lo + k * spec.width
        # integer bins are closed ranges [a, b]; float bins are [a, b)
        b = min(a + spec.width - 1, spec.hi) if spec.integer else a + spec.width
        la: Scalar
        lb: Scalar
        if spec.unit == "date":
            la = datetime.fromtimestamp(a * 86400, UTC).date().isoformat()
            lb = datetime.fromtimestamp(b * 86400, UTC).date().isoformat()
        elif spec.unit == "timestamp":
            la = datetime.fromtimestamp(a, UTC).isoformat(sep=" ")
            lb = datetime.fromtimestamp(b, UTC).isoformat(sep=" ")
        elif spec.integer:
            la, lb = int(a), int(b)
        else:
            la, lb = round(a, 10), round(b, 10)
        out.append(HistogramBin(lo=la, hi=lb, count=counts[k]))
    return tuple(out)


def _column_profile(
    i: int,
    name: str,
    typ: str,
    kind: str,
    s: Mapping[str, Any],
    rows: int,
    qs: list[float],
    top: list[tuple[Scalar, int]],
    hist: tuple[HistogramBin, ...],
) -> ColumnProfile:
    a = f"c{i}_"
    nn = int(s[a + "nn"])
    nulls = rows - nn
    qvals = s.get(a + "q") or []
    patterns = {p: int(s[f"{a}pat_{p}"] or 0) for p in PATTERNS if f"{a}pat_{p}" in s}
    nd = s.get(a + "nd")
    return ColumnProfile(
        name=name,
        type=typ,
        kind=kind,
        rows=rows,
        null_count=nulls,
        null_pct=round(100.0 * nulls / rows, 4) if rows else 0.0,
        # HyperLogLog can overshoot on tiny inputs: never report more than the non-null rows
        distinct_approx=None if nd is None else min(int(nd), nn),
        nan_count=int(s.get(a + "nan") or 0),
        empty_count=int(s.get(a + "empty") or 0),
        min=_py(s.get(a + "min")),
        max=_py(s.get(a + "max")),
        mean=_float(s.get(a + "mean")),
        stddev=_float(s.get(a + "sd")),
        quantiles=tuple((q, _py(v)) for q, v in zip(qs, qvals, strict=False)),
        top_values=tuple(top),
        min_len=None if s.get(a + "minlen") is None else int(s[a + "minlen"]),
        max_len=None if s.get(a + "maxlen") is None else int(s[a + "maxlen"]),
        mean_len=_float(s.get(a + "meanlen")),
        histogram=hist,
        patterns=patterns,
    )


# ----------------------------------------------------------------------------- targets


def with_rejects(p: Profile, read: TargetRead) -> Profile:
    """``p`` with the records reading its target rejected (they are not in ``p.rows``)."""
    return replace(
        p,
        rejected=read.rejected,
        rejected_sample=tuple(r.to_dict() for r in read.sample),
    )


def profile_target(
    target: str,
    *,
    top_k: int = 10,
    quantiles: Sequence[float] = DEFAULT_QUANTILES,
    con: EngineLike | None = None,
) -> Profile:
    """Profile a file path/glob (CSV/Parquet/JSON by extension), a Delta table folder or a
    PostgreSQL table URL. Records that cannot be read are counted in ``rejected``."""

    own = con is None
    eng = as_engine(con, timezone="UTC")
    try:
        view = f"_lg_target_{uuid.uuid4().hex[:8]}"
        read = register_target(duckdb_connection(eng), view, target)
        result = profile(eng, view, top_k=top_k, quantiles=quantiles, target=target_label(target))
        return with_rejects(result, read)
    finally:
        if own:
            eng.close()


__all__ = [
    "DEFAULT_QUANTILES",
    "PATTERNS",
    "ColumnProfile",
    "HistogramBin",
    "Profile",
    "is_delta_table",
    "profile",
    "profile_target",
    "with_rejects",
]
