"""Enrichment from reference datasets: a LEFT JOIN of each batch on one row per key of a
project table, kept in the engine and re-read only when the table's version changes.

Each reference is materialised once per version as an engine table of its key and the
asked columns, one row per key (``DISTINCT ON`` the key: a reference with duplicate keys
must never multiply events); the batch joins all references in one query, and a column
``__lg_miss_<i>`` tells which events had no match in reference ``i``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from sqlglot import exp

from lockgate.engine.base import Engine
from lockgate.errors import ConfigError, Problem
from lockgate.sql import col, table_ref
from lockgate.storage.base import TableStore
from lockgate.streams.config import EnrichSpec

MISS_PREFIX = "__lg_miss_"
_REF = "__lg_enrich_{}"
_SRC = "__lg_enrich_src"


class Enricher:
    """The stream's ``enrich:`` list on engine ``con``, reading references from ``store``."""

    def __init__(self, specs: Sequence[EnrichSpec], store: TableStore, con: Engine) -> None:
        self.specs, self.store, self.con = tuple(specs), store, con
        self._versions: list[int | None] = [None] * len(self.specs)
        self._checked: list[float] = [float("-inf")] * len(self.specs)

    def refresh(self, stream: str) -> None:
        """Re-read each reference whose table changed (looked at every ``refresh``)."""
        now = time.monotonic()
        for i, e in enumerate(self.specs):
            if self._versions[i] is not None and now - self._checked[i] < _seconds(e.refresh):
                continue
            self._checked[i] = now
            version = self.store.version(e.dataset)
            if version is None:
                msg = f"stream '{stream}': enrich: dataset '{e.dataset}' has no table yet"
                raise ConfigError([Problem(msg, hint=f"run `lockgate run {e.dataset}` first")])
            if version != self._versions[i]:
                self._load(i, e, version, stream)
                self._versions[i] = version

    def _load(self, i: int, e: EnrichSpec, version: int, stream: str) -> None:
        have = self.store.schema(e.dataset)
        names = set(have.names) if have is not None else set()
        missing = [c for c in (*e.keys, *e.column_types) if c not in names]
        if missing:
            msg = (
                f"stream '{stream}': enrich: dataset '{e.dataset}' has no column(s) "
                f"{', '.join(missing)}"
            )
            raise ConfigError([Problem(msg)])
        self.con.register_arrow(_SRC, self.store.arrow_dataset(e.dataset, version))
        try:
            pick = exp.select(*[col(c) for c in (*e.keys, *e.column_types)]).from_(_SRC)
            pick = pick.distinct(*[col(k) for k in e.keys])
            self.con.execute(
                exp.Create(
                    this=table_ref(_REF.format(i)), kind="TABLE", expression=pick, replace=True
                )
            )
        finally:
            self.con.unregister(_SRC)

    def query(self, batch: str, columns: Sequence[str]) -> exp.Select:
        """``batch`` with every reference's columns and a miss flag per reference."""
        b = "__lg_b"
        sel: list[exp.Expr] = [col(c, b) for c in columns]
        q = exp.select().from_(exp.to_table(batch).as_(b))
        for i, e in enumerate(self.specs):
            r = f"__lg_r{i}"
            sel += [col(c, r) for c in e.column_types]
            sel.append(
                exp.alias_(
                    exp.Is(this=col(e.keys[0], r), expression=exp.null()), MISS_PREFIX + str(i)
                )
            )
            on = exp.and_(*[exp.EQ(this=col(k, b), expression=col(k, r)) for k in e.keys])
            q = q.join(exp.to_table(_REF.format(i)).as_(r), on=on, join_type="LEFT")
        return q.select(*sel)

    def close(self) -> None:
        self.con.drop(*[_REF.format(i) for i in range(len(self.specs))])


def _seconds(value: str | float) -> float:
    from lockgate._duration import parse_duration

    return parse_duration(value).total_seconds()
