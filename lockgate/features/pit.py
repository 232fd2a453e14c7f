"""The point-in-time join as sqlglot expressions: what a feature view knew at time T.

A feature row is *known at T* when ``event_ts <= T AND created_ts <= T``. Among the known
rows of an entity key the answer is the greatest ``(event_ts, created_ts, tie)``, where
``tie`` is a hash of the row's feature values (so equal timestamps still give one
deterministic answer, whatever order the files are in; rows that tie on all three carry the
same values). The TTL is applied *after* the match: a matched row with
``event_ts <= T - ttl`` gives NULL features (the bound is exclusive). An entity row with no
match keeps its row, with NULL features; rows are never dropped, added or reordered.

Two strategies compute the same answer:

- ``range``: join every entity row to every known row of its key, keep the greatest
  (``QUALIFY row_number() = 1``). Cheap when a key has few rows.
- ``timeline``: per key, order the rows by ``known_at = greatest(event_ts, created_ts)`` and
  keep a running arg-max over ``(event_ts, created_ts, tie)`` — the answer for every T in
  ``[known_at, next known_at)`` —, then one ``ASOF JOIN`` on ``T >= known_at``. The rows
  known at T are exactly those with ``known_at <= T`` (a prefix), so the running maximum of
  the prefix is the answer; peers (equal ``known_at``) share one value (a RANGE frame), so
  the ASOF join may pick any of them. Cheap when a key has many rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from sqlglot import exp

from lockgate.sql import ident, table_ref

Strategy = Literal["range", "timeline"]
#: the caller's row number, carried through the joins to restore the caller's order
ROW = "_lg_row"
_TIE = "_lg_tie"
_KNOWN = "_lg_known_at"
_RANK = "_lg_rank"
_EV = "_lg_event_ts"
_CR = "_lg_created_ts"


@dataclass(frozen=True)
class ViewJoin:
    """One feature view to join: its relation and which of its columns play which part."""

    relation: str  # engine relation holding the view's dataset
    entities: tuple[str, ...]
    event_ts: str
    created_ts: str
    features: tuple[str, ...]  # columns of the relation
    outputs: tuple[str, ...]  # the names they get in the result (same length)
    ttl: timedelta | None
    #: column types (engine spelling) of the relation, to normalise time zones
    types: Mapping[str, str]


def col(name: str, table: str | None = None) -> exp.Column:
    return exp.Column(this=ident(name), table=ident(table) if table else None)


def utc(e: exp.Expr, type_name: str) -> exp.Expr:
    """A timestamp expression as a naive UTC ``TIMESTAMP`` (zoned values converted, dates
    at midnight), so zoned and naive timestamps compare correctly."""
    t = type_name.upper()
    if "WITH TIME ZONE" in t or t == "TIMESTAMPTZ":
        return exp.Anonymous(this="timezone", expressions=[exp.Literal.string("UTC"), e])
    if not t.startswith("TIMESTAMP"):
        return exp.cast(e, exp.DataType.build("TIMESTAMP"))
    return e


def feature_rows(v: ViewJoin) -> exp.Select:
    """The view's usable rows: key, ``_lg_event_ts``, ``_lg_created_ts``, the tie hash and
    the features. Rows with a NULL timestamp are never known; NULL keys never match."""
    ev = utc(col(v.event_ts), v.types.get(v.event_ts, "TIMESTAMP"))
    cr = utc(col(v.created_ts), v.types.get(v.created_ts, "TIMESTAMP"))
    tie = exp.Anonymous(this="hash", expressions=[col(f) for f in v.features])
    cols: list[exp.Expr] = [col(k) for k in v.entities]
    cols += [exp.alias_(ev, _EV), exp.alias_(cr, _CR), exp.alias_(tie, _TIE)]
    cols += [exp.alias_(col(f), ident(o)) for f, o in zip(v.features, v.outputs, strict=True)]
    conds: list[exp.Expr] = [
        exp.Not(this=exp.Is(this=col(k), expression=exp.Null())) for k in v.entities
    ]
    conds += [
        exp.Not(this=exp.Is(this=col(c), expression=exp.Null())) for c in {v.event_ts, v.created_ts}
    ]
    return exp.select(*cols).from_(table_ref(v.relation)).where(exp.and_(*conds))


def _ttl_ok(matched_ev: exp.Expr, entity_ts: exp.Expr, ttl: timedelta | None) -> exp.Expr | None:
    if ttl is None:
        return None
    us = ttl // timedelta(microseconds=1)
    bound = exp.Sub(
        this=entity_ts,
        expression=exp.Anonymous(this="to_microseconds", expressions=[exp.Literal.number(us)]),
    )
    return exp.GT(this=matched_ev, expression=bound)


def _masked(value: exp.Expr, ok: exp.Expr | None, name: str) -> exp.Expr:
    if ok is None:
        return exp.alias_(value, ident(name))
    return exp.alias_(exp.If(this=ok, true=value), ident(name))


def range_join(entities: exp.Query, ts: exp.Expr, v: ViewJoin) -> exp.Select:
    """Entity rows (with ``_lg_row``) + the view's features, by range join + QUALIFY."""
    on: list[exp.Expr] = [exp.EQ(this=col(k, "e"), expression=col(k, "f")) for k in v.entities]
    on.append(exp.LTE(this=col(_EV, "f"), expression=ts))
    if v.created_ts != v.event_ts:
        on.append(exp.LTE(this=col(_CR, "f"), expression=ts))
    order = [exp.Ordered(this=col(c, "f"), desc=True, nulls_first=False) for c in (_EV, _CR, _TIE)]
    rn = exp.Window(
        this=exp.RowNumber(),
        partition_by=[col(ROW, "e")],
        order=exp.Order(expressions=order),
    )
    ok = _ttl_ok(col(_EV, "f"), ts, v.ttl)
    sel: list[exp.Expr] = [exp.Column(this=exp.Star(), table=ident("e"))]
    sel += [_masked(col(o, "f"), ok, o) for o in v.outputs]
    return (
        exp.select(*sel)
        .from_(entities.subquery("e"))
        .join(feature_rows(v).subquery("f"), on=exp.and_(*on), join_type="LEFT")
        .qualify(exp.EQ(this=rn, expression=exp.Literal.number(1)))
    )


def timeline(v: ViewJoin) -> exp.Select:
    """Per key and ``known_at``, the row known from then on (until the key's next known_at)."""
    rows = feature_rows(v)
    known = exp.Greatest(this=col(_EV), expressions=[col(_CR)])
    # the rank of each row in (event, created, tie) order: arg_max over a plain integer key
    # keeps values bit for bit (over a struct key DuckDB returns -0.0 as 0.0)
    rank = exp.Window(
        this=exp.RowNumber(),
        partition_by=[col(k) for k in v.entities],
        order=exp.Order(expressions=[exp.Ordered(this=col(c)) for c in (_EV, _CR, _TIE)]),
    )
    ranked = exp.select(exp.Star(), exp.alias_(rank, _RANK)).from_(rows.subquery("r"))

    def running(column: str) -> exp.Expr:
        # one arg_max per column; arg_max_null keeps a NULL value of the winning row
        return exp.alias_(
            exp.Window(
                this=exp.Anonymous(this="arg_max_null", expressions=[col(column), col(_RANK)]),
                partition_by=[col(k) for k in v.entities],
                order=exp.Order(expressions=[exp.Ordered(this=known.copy())]),
                spec=exp.WindowSpec(
                    kind="RANGE", start="UNBOUNDED", start_side="PRECEDING", end="CURRENT ROW"
                ),
            ),
            ident(column),
        )

    return exp.select(
        *[col(k) for k in v.entities],
        exp.alias_(known, _KNOWN),
        *[running(c) for c in (_EV, *v.outputs)],
    ).from_(ranked.subquery("k"))


def asof_join(entities: exp.Query, ts: exp.Expr, v: ViewJoin, tl: exp.Expr) -> exp.Select:
    """Entity rows (with ``_lg_row``) + the view's features, by ASOF join on a timeline."""
    on: list[exp.Expr] = [exp.EQ(this=col(k, "e"), expression=col(k, "t")) for k in v.entities]
    on.append(exp.GTE(this=ts, expression=col(_KNOWN, "t")))

    ok = _ttl_ok(col(_EV, "t"), ts, v.ttl)
    sel: list[exp.Expr] = [exp.Column(this=exp.Star(), table=ident("e"))]
    sel += [_masked(col(o, "t"), ok, o) for o in v.outputs]
    source = tl if isinstance(tl, exp.Table) else exp.Subquery(this=tl)
    return (
        exp.select(*sel)
        .from_(entities.subquery("e"))
        .join(exp.alias_(source, "t", table=True), on=exp.and_(*on), join_type="ASOF LEFT")
    )


def choose(rows_per_key: float, threshold: float) -> Strategy:
    """``range`` for few rows per key (the join fans out by rows/key), else ``timeline``."""
    return "range" if rows_per_key <= threshold else "timeline"


def final(query: exp.Query, keep: Sequence[str]) -> exp.Select:
    """The caller's columns and the features, in the caller's row order."""
    return (
        exp.select(*[col(c) for c in keep])
        .from_(query.subquery("j"))
        .order_by(exp.Ordered(this=col(ROW)))
    )
