"""Incremental cursors: watermark encoding, lookback, the input filter, and the
classification of rows a run reads again (:func:`settle_rereads`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from sqlglot import exp

from lockgate.project.models import IncrementalSpec, WriteMode, parse_duration
from lockgate.sql import ident, table_ref
from lockgate.storage.base import TableStore
from lockgate.storage.scan import scan_select

if TYPE_CHECKING:
    from lockgate.engine.session import Session

#: a cursor value as the engine returns it (a datetime, date, number or string); opaque to
#: the run loop except where watermarks are compared (:func:`advance`)
Cursor = object


def encode(value: Cursor) -> tuple[str, str] | None:
    """Watermark value → (text, type) for the state store and commit metadata."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat(), "timestamp"
    if isinstance(value, date):
        return value.isoformat(), "date"
    if isinstance(value, bool):
        return str(value), "str"
    if isinstance(value, int):
        return str(value), "int"
    if isinstance(value, Decimal):  # exact: a float would blur the > boundary
        return str(value), "decimal"
    if isinstance(value, float):
        return repr(value), "float"
    return str(value), "str"


def decode(text: str, kind: str) -> Cursor:
    if kind == "timestamp":
        return datetime.fromisoformat(text)
    if kind == "date":
        return date.fromisoformat(text)
    if kind == "int":
        return int(text)
    if kind == "float":
        return float(text)
    if kind == "decimal":
        return Decimal(text)
    return text


def advance(watermark: Cursor, batch_max: Cursor) -> Cursor:
    """The new watermark: never below the old one (a batch of only re-read or accepted late
    rows has a lower maximum, and the watermark must not go back)."""
    if watermark is None:
        return batch_max
    if batch_max is None:
        return watermark
    try:
        # cursors of one column compare; a TypeError says the column's type changed
        return batch_max if batch_max > watermark else watermark  # type: ignore[operator]
    except TypeError:  # not comparable (the cursor's type changed): the batch's value
        return batch_max


def min_cursor(spec: IncrementalSpec, watermark: Cursor) -> Cursor:
    """The lowest cursor value to (re)read: watermark minus lookback."""
    if watermark is None or spec.lookback is None:
        return watermark
    if isinstance(watermark, datetime | date):
        delta = parse_duration(spec.lookback)
        if isinstance(watermark, datetime):
            return watermark - delta
        return watermark - timedelta(days=max(delta.days, 0))
    if isinstance(watermark, Decimal) and isinstance(spec.lookback, int | float):
        return watermark - Decimal(str(spec.lookback))
    if isinstance(watermark, int | float) and isinstance(spec.lookback, int | float):
        return watermark - spec.lookback
    return watermark


def literal(value: Cursor) -> exp.Expression:
    """A typed SQL literal for a cursor value."""
    if isinstance(value, datetime):
        lit = exp.Literal.string(value.isoformat(sep=" "))
        t = "TIMESTAMPTZ" if value.tzinfo else "TIMESTAMP"
        return exp.Cast(this=lit, to=exp.DataType.build(t))
    if isinstance(value, date):
        return exp.Cast(this=exp.Literal.string(value.isoformat()), to=exp.DataType.build("DATE"))
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, int | float | Decimal):
        return exp.Literal.number(str(value))
    return exp.Literal.string(str(value))


def cursor_filter(cursor: str, lowest: Cursor, *, inclusive: bool) -> exp.Expression:
    """``cursor > watermark`` without lookback; ``cursor >= watermark - lookback`` with one
    (the re-read window is de-duplicated on publish: merge upserts, append anti-joins)."""
    col = exp.Column(this=ident(cursor))
    if inclusive:
        return exp.GTE(this=col, expression=literal(lowest))
    return exp.GT(this=col, expression=literal(lowest))


def input_filter(cursor: str, lowest: Cursor) -> exp.Expression:
    """What an incremental transform reads of an upstream table: ``cursor >= lowest`` and
    every NULL-cursor row (no watermark can place those; :func:`settle_rereads` drops the
    ones already published). Inclusive: rows *at* the watermark may be new ones."""
    null = exp.Is(this=exp.Column(this=ident(cursor)), expression=exp.Null())
    return exp.paren(exp.Or(this=cursor_filter(cursor, lowest, inclusive=True), expression=null))


def incremental_scan(
    store: TableStore, table: str, version: int, previous: int | None, cursor: str, lowest: Cursor
) -> exp.Select | None:
    """An incremental transform's view of an upstream table version: rows past
    :func:`input_filter` *and* every row of the files added since ``previous`` (the version
    its last run read) — rows appended upstream with an older cursor (accepted late rows, a
    non-monotonic cursor) would otherwise never be seen. ``None`` when the table needs the
    Arrow path (then only the cursor filter applies)."""
    scan = scan_select(store.scan(table, version))
    if scan is None or cursor not in [e.alias_or_name for e in scan.expressions]:
        return None
    where: exp.Expr = input_filter(cursor, lowest)
    added = store.added_files(table, previous, version)
    reader = scan.find(exp.Anonymous)
    if added and reader is not None:
        reader.append(
            "expressions",
            exp.EQ(this=exp.column("filename"), expression=exp.Literal.string("_lg_file")),
        )
        new = exp.In(
            this=exp.column("_lg_file"), expressions=[exp.Literal.string(f) for f in added]
        )
        where = exp.or_(where, new)
    return scan.where(where)


# --------------------------------------------------------------------------------------------
# rows read again


@dataclass
class Rereads:
    """What :func:`settle_rereads` did to the staged batch."""

    skipped: dict[str, int] = field(default_factory=dict)  # reason → rows deleted
    late: int = 0  # late rows moved to ``late_table`` (policy ``quarantine``)
    late_table: str | None = None
    known_rejects: int = 0  # unreadable records deleted: already in the quarantine


@dataclass(frozen=True)
class Tables:
    """Relations :func:`settle_rereads` compares the batch with: name → column types."""

    target: tuple[str, Mapping[str, str]]
    quarantine: tuple[str, Mapping[str, str]] | None = None


_S, _T = "__s", "__t"
_DROPPED = ("already_published", "superseded", "already_quarantined")


def settle_rereads(
    ses: Session,
    stage: str,
    *,
    spec: IncrementalSpec,
    mode: WriteMode,
    keys: Sequence[str],
    watermark: Cursor,
    lowest: Cursor,
    tables: Tables,
) -> Rereads:
    """Classify the staged rows a run may have seen before and take them out of the batch,
    each counted under a named reason — nothing disappears silently.

    Re-read rows are those with a NULL cursor or a cursor at or below the watermark (the
    lookback window, the boundary, a file read again because it grew). Among them:
    ``already_published`` (an equal row with a cursor in the same range is in the table: on
    the keys for append with keys,
    on every column otherwise), ``superseded`` (merge: the table holds the key with a newer
    cursor — upserting would go back in time), ``already_quarantined`` (an equal row is in the
    quarantine), and ``late``: cursor below watermark - lookback and not seen before, handled
    by ``spec.late`` (quarantine → moved to ``<stage>__late``; skip → deleted; accept → kept).
    Overwrite modes replace what they write, so only the late rule applies to them."""
    cursor = spec.cursor
    s_cur = exp.column(cursor, table=_S, quoted=True)
    reread: exp.Expr = exp.Is(this=s_cur, expression=exp.Null())
    if watermark is not None:
        reread = exp.or_(reread, exp.LTE(this=s_cur.copy(), expression=literal(watermark)))
    if tables.quarantine is not None and mode in (WriteMode.APPEND, WriteMode.MERGE):
        # quarantined rows do not move the watermark: a file read again can hold some above it
        highest = _quarantined_max(cursor, tables.quarantine, ses.columns(stage).get(cursor))
        if highest is not None:
            reread = exp.or_(reread, exp.LTE(this=s_cur.copy(), expression=highest))
    n, lo, hi = _range(ses, stage, s_cur, reread)
    if n == 0:
        return Rereads()
    whens = _seen_before(ses.columns(stage), spec.cursor, mode, keys, tables, (lo, hi))
    if lowest is not None:
        whens.append(("late", exp.LT(this=s_cur.copy(), expression=literal(lowest))))
    if not whens:
        return Rereads()
    return _apply(ses, stage, reread, whens, spec.late)


def _seen_before(
    stage_cols: Mapping[str, str],
    cursor: str,
    mode: WriteMode,
    keys: Sequence[str],
    tables: Tables,
    cursor_range: tuple[Cursor, Cursor],
) -> list[tuple[str, exp.Expr]]:
    """(reason, condition) for a re-read row already in the table or the quarantine
    (``cursor_range``: the lowest and highest cursor of the re-read rows)."""
    lo, hi = cursor_range
    s_cur = exp.column(cursor, table=_S, quoted=True)
    whens: list[tuple[str, exp.Expr]] = []
    if mode not in (WriteMode.APPEND, WriteMode.MERGE):
        return whens
    tname, tcols = tables.target
    t_cur = exp.column(cursor, table=_T, quoted=True)
    # append with keys: equal keys, else equal on every column; either way only target
    # rows within the re-read rows' cursor range (a copy has the same cursor; the scan
    # can skip the rest of the table)
    on = list(keys) if keys and mode == WriteMode.APPEND else list(stage_cols)
    published = _match(on, stage_cols, tcols)
    if cursor in tcols:
        published = exp.and_(published, _within(t_cur, lo, hi))
    whens.append(("already_published", _exists(tname, published)))
    if mode == WriteMode.MERGE and cursor in tcols and lo is not None:
        newer = exp.and_(
            exp.GT(this=t_cur.copy(), expression=s_cur.copy()),
            exp.GT(this=t_cur.copy(), expression=literal(lo)),
        )
        whens.append(
            ("superseded", _exists(tname, exp.and_(_match(keys, stage_cols, tcols), newer)))
        )
    if tables.quarantine is not None:
        qname, qcols = tables.quarantine
        cond = _match(list(stage_cols), stage_cols, qcols)
        if "_lg_raw_record" in qcols:  # not an unparseable record's row
            raw = exp.column("_lg_raw_record", table=_T, quoted=True)
            cond = exp.and_(cond, exp.Is(this=raw, expression=exp.Null()))
        whens.append(("already_quarantined", _exists(qname, cond)))
    return whens


def settle_rejects(ses: Session, rejects: str, quarantine: tuple[str, Mapping[str, str]]) -> int:
    """Delete from ``rejects`` the unreadable records the quarantine already holds (same
    file, line and raw text: a file read again because it grew); returns how many."""
    qname, qcols = quarantine
    cols = ("_lg_source_file", "_lg_line", "_lg_raw_record")
    if not all(c in qcols for c in cols) or ses.count(rejects) == 0:
        return 0
    before = ses.count(rejects)
    s_cols = {c: "VARCHAR" if c != "_lg_line" else "BIGINT" for c in cols}
    cond = _match(list(cols), s_cols, qcols).transform(
        lambda n: (
            exp.column(n.name, table=rejects, quoted=True)
            if isinstance(n, exp.Column) and n.table == _S
            else n
        )
    )
    ses.execute(exp.delete(table_ref(rejects), where=_exists(qname, cond)))
    return before - ses.count(rejects)


def _range(
    ses: Session, stage: str, s_cur: exp.Column, region: exp.Expr
) -> tuple[int, Cursor, Cursor]:
    """Rows of the batch in ``region`` and their lowest and highest cursor."""
    row = ses.execute(
        exp.select(
            exp.Count(this=exp.Star()), exp.Min(this=s_cur.copy()), exp.Max(this=s_cur.copy())
        )
        .from_(_aliased(stage, _S))
        .where(region)
    ).fetchone()
    return (int(row[0]), row[1], row[2]) if row else (0, None, None)


def _within(t_cur: exp.Column, lo: Cursor, hi: Cursor) -> exp.Expr:
    """The target row's cursor is NULL or within ``[lo, hi]`` (lets the scan skip files)."""
    null = exp.Is(this=t_cur.copy(), expression=exp.Null())
    if lo is None:
        return null
    between = exp.Between(this=t_cur.copy(), low=literal(lo), high=literal(hi))
    return exp.paren(exp.or_(null, between))


def _quarantined_max(
    cursor: str, quarantine: tuple[str, Mapping[str, str]], stage_type: str | None
) -> exp.Expr | None:
    """``(SELECT max(cursor) FROM quarantine WHERE it is a data row)``, or None when the
    quarantine has no such column of the batch's type."""
    qname, qcols = quarantine
    if qcols.get(cursor) != stage_type:
        return None
    q = exp.select(exp.Max(this=exp.column(cursor, quoted=True))).from_(table_ref(qname))
    if "_lg_raw_record" in qcols:
        q = q.where(exp.Is(this=exp.column("_lg_raw_record", quoted=True), expression=exp.Null()))
    return q.subquery()


def _apply(
    ses: Session, stage: str, reread: exp.Expr, whens: list[tuple[str, exp.Expr]], policy: str
) -> Rereads:
    why = exp.Case(ifs=[exp.If(this=cond, true=exp.Literal.string(name)) for name, cond in whens])
    rid = exp.alias_(exp.column("rowid", table=_S), "rid")
    inner = exp.select(rid, exp.alias_(why, "why")).from_(_aliased(stage, _S)).where(reread)
    cls = f"{stage}__reread"
    ses.drop(cls)
    query = exp.select("*").from_(inner.subquery("c")).where("why IS NOT NULL")
    ses.execute(exp.Create(this=table_ref(cls), kind="TABLE", expression=query))
    try:
        counts = dict(
            ses.execute(
                exp.select("why", exp.Count(this=exp.Star())).from_(table_ref(cls)).group_by("why")
            ).fetchall()
        )
        out = Rereads(skipped={k: int(v) for k, v in counts.items() if k in _DROPPED})
        late = int(counts.get("late", 0))
        dropped = list(_DROPPED)
        if late and policy == "quarantine":
            out.late, out.late_table = late, f"{stage}__late"
            ses.drop(out.late_table)
            rows = exp.select("*").from_(table_ref(stage)).where(_rowid_in(cls, ["late"]))
            ses.execute(exp.Create(this=table_ref(out.late_table), kind="TABLE", expression=rows))
            dropped.append("late")
        elif late and policy == "skip":
            out.skipped["late"] = late
            dropped.append("late")
        ses.execute(exp.delete(table_ref(stage), where=_rowid_in(cls, dropped)))
        return out
    finally:
        ses.drop(cls)


def _aliased(name: str, alias: str) -> exp.Table:
    return exp.Table(this=ident(name), alias=exp.TableAlias(this=ident(alias)))


def _rowid_in(cls: str, reasons: list[str]) -> exp.Expr:
    pick = (
        exp.select("rid")
        .from_(table_ref(cls))
        .where(exp.In(this=exp.column("why"), expressions=[exp.Literal.string(r) for r in reasons]))
    )
    return exp.In(this=exp.column("rowid"), query=pick.subquery())


def _exists(table: str, cond: exp.Expr) -> exp.Expr:
    return exp.Exists(this=exp.select(exp.Literal.number(1)).from_(_aliased(table, _T)).where(cond))


def _match(
    columns: Sequence[str], stage_cols: Mapping[str, str], other: Mapping[str, str]
) -> exp.Expr:
    """The batch row (``__s``) equals the other relation's row (``__t``) on ``columns``,
    NULL-safe; a column the other relation lacks matches only a NULL (its rows hold NULL
    there); differing types compare as text."""
    conds: list[exp.Expr] = []
    for c in columns:
        s: exp.Expr = exp.column(c, table=_S, quoted=True)
        if c not in other:
            conds.append(exp.Is(this=s, expression=exp.Null()))
            continue
        t: exp.Expr = exp.column(c, table=_T, quoted=True)
        if stage_cols.get(c) != other[c]:
            s, t = exp.cast(s, "VARCHAR"), exp.cast(t, "VARCHAR")
        conds.append(exp.NullSafeEQ(this=t, expression=s))
    return exp.and_(*conds) if conds else exp.true()
