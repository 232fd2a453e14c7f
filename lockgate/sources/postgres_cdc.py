"""``type: postgres_cdc`` — change data capture of one PostgreSQL table, exactly once.

::

    source: {type: postgres_cdc, connection: shop_db, table: public.orders}
    write: {mode: merge, keys: [id]}        # the primary key (or replica identity)

The first run creates the replication slot (``lg_<dataset>``, pgoutput) and its publication
with an exported snapshot and copies the table in that snapshot (``_lg_op = 'r'``); later
runs read the changes committed since, in micro-batches of whole transactions
(:mod:`lockgate.sources._cdc_slot`, :mod:`lockgate.sources._cdc_batch`), reduced to the last
change per key. The staged rows carry ``_lg_lsn`` (their transaction's end LSN, an integer),
``_lg_op`` (``r`` snapshot, ``c`` insert, ``u`` update, ``d`` delete) and ``_lg_commit_ts``;
checks and transforms can use them. Deletes are staged apart (never audited) and remove the
row — or, with ``deletes: soft``, set ``_lg_deleted`` and keep its last values.

Exactly once: the dataset's Delta commit carries the application transaction
``cdc:<slot>`` = the batch's end LSN next to the run's own; only after that commit the run
loop calls :meth:`PostgresCdcSource.acknowledge`, which advances the slot. After a crash the
slot hands out again what the table may already hold: transactions whose end LSN is at or
below the table's position are skipped (``already_applied``).
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field
from sqlglot import exp

from lockgate.errors import ConfigError, InputError, Problem
from lockgate.sources._cdc_batch import ChangeBatch, collect
from lockgate.sources._cdc_slot import (
    advance,
    drop_slot,
    exported_snapshot,
    flush_lsn,
    peek,
    require_usable,
    slot_info,
)
from lockgate.sources._cdc_snapshot import SnapshotPlan, copy_snapshot
from lockgate.sources._cdc_stage import (
    LSN,
    add_flag,
    change_position,
    crashpoint,
    meta_columns,
    meta_select,
    stage_changes,
    with_changes,
)
from lockgate.sources._db import CAST, HEX, NATIVE, Column, convert
from lockgate.sources._pg_read import pg_column, pg_errors, translate_error
from lockgate.sources._pgoutput import Relation, decode
from lockgate.sources.base import (
    Position,
    ResumeToken,
    Source,
    SourceConfig,
    SourceRequest,
    StagedSource,
    create_rejects_table,
    register_source,
    staged_table,
)
from lockgate.sql import ident, table_ref

if TYPE_CHECKING:
    from lockgate.engine.session import Session

log = logging.getLogger(__name__)

_NAME = r"^[a-z_][a-z0-9_]{0,62}$"


class PostgresCdcSpec(SourceConfig):
    """Change data capture of one PostgreSQL table through logical replication (pgoutput)."""

    type: Literal["postgres_cdc"] = "postgres_cdc"
    connection: str = Field(description="name of a connection in lockgate.yaml (connections:)")
    table: str = Field(description="the table, as schema.name")
    slot: str | None = Field(
        default=None, pattern=_NAME, description="replication slot (default: lg_<dataset>)"
    )
    publication: str | None = Field(
        default=None,
        pattern=_NAME,
        description="publication of the table (default: lg_<dataset>; created when missing)",
    )
    deletes: Literal["delete", "soft"] = Field(
        default="delete",
        description="a deleted source row is removed ('delete') or kept with _lg_deleted = "
        "true and its last values ('soft')",
    )
    snapshot_partitions: int | None = Field(
        default=None,
        ge=1,
        le=64,
        description="the initial snapshot is copied on this many connections at once, each "
        "a range of the integer primary key in the same exported snapshot (1: one "
        "connection; unset: 4 when the table has more than ~1M rows (pg_class.reltuples), "
        "else 1; a composite or non-integer key is always copied on one connection)",
    )
    max_changes: int = Field(
        default=200_000,
        ge=1,
        description="changes per micro-batch (whole transactions: a batch may be larger)",
    )
    max_latency: str = Field(
        default="1s",
        description="follow mode (lockgate run --follow): how long to wait for new changes "
        "before the next batch",
    )
    heartbeat_bytes: int = Field(
        default=16 << 20,
        ge=0,
        description="when the slot holds no change of the table, move the table's position "
        "and the slot past the WAL read (an empty commit) once it is this many bytes behind, "
        "so an idle table in a busy (or idle) database does not hold back WAL",
    )
    warn_retained_wal: int = Field(
        default=1 << 30,
        ge=0,
        description="warn when the slot holds back more WAL than this many bytes",
    )

    def slot_name(self, dataset: str) -> str:
        return self.slot or f"lg_{dataset.lower()}"[:63]

    def publication_name(self, dataset: str) -> str:
        return self.publication or f"lg_{dataset.lower()}"[:63]


def conninfo_of(request: SourceRequest) -> str:
    """The libpq connection string of the request's connection (secrets resolved now)."""
    from lockgate.sources.postgres import PostgresSource

    return PostgresSource(request)._conninfo()


@register_source
class PostgresCdcSource(Source):
    """Snapshot, then micro-batches of committed changes, merged by key, exactly once."""

    TYPE: ClassVar[str] = "postgres_cdc"
    CONFIG: ClassVar[type[SourceConfig]] = PostgresCdcSpec
    SUPPORTS_REJECTS: ClassVar[bool] = True
    SUPPORTS_CDC: ClassVar[bool] = True

    @property
    def spec(self) -> PostgresCdcSpec:
        assert isinstance(self.config, PostgresCdcSpec)
        return self.config

    @property
    def slot(self) -> str:
        return self.spec.slot_name(self.dataset)

    @classmethod
    def position_id(cls, request: SourceRequest) -> str | None:
        config = request.config
        assert isinstance(config, PostgresCdcSpec)
        return "cdc:" + config.slot_name(request.dataset)

    def stage(self, session: Session, table: str, *, resume: ResumeToken = None) -> StagedSource:
        create_rejects_table(session.con, table)
        conninfo = conninfo_of(self.request)
        try:
            return self._stage(session, table, conninfo)
        except pg_errors() as e:
            raise translate_error(e, f"{self.spec.table} (change data capture)") from None

    def _stage(self, session: Session, table: str, conninfo: str) -> StagedSource:
        import psycopg

        position = self.request.position
        with psycopg.connect(conninfo, autocommit=True) as pg:
            session_setup(pg)
            described = describe(pg, self.spec.table, self.request.keys, self.dataset)
            ensure_publication(
                pg,
                self.spec.publication_name(self.dataset),
                described,
                own=self.spec.publication is None,
            )
            if position is None:
                return self._snapshot(pg, session, table, conninfo, described)
            info = require_usable(slot_info(pg, self.slot), self.slot, self.dataset, position)
            warnings = []
            if (
                info.retained_bytes is not None
                and info.retained_bytes > self.spec.warn_retained_wal
            ):
                warnings.append(
                    f"replication slot '{self.slot}' holds back {info.retained_bytes:,} bytes "
                    f"of WAL (wal_status={info.wal_status}): run more often or drop the slot"
                )
                log.warning("%s", warnings[-1])
            flushed = flush_lsn(pg)  # before the peek: it reads every commit up to here
            messages = peek(
                pg, self.slot, self.spec.publication_name(self.dataset), self.spec.max_changes
            )
            relation = _relation_in(messages, described.oid) or described.relation
            columns = (
                described.columns
                if relation == described.relation
                else (plan_columns(pg, relation))
            )
        from lockgate.sources._cdc_fast import collect_fast  # numpy: imported when used

        batch = collect_fast(messages, relation, described.keys, applied_lsn=position)
        if batch is None:  # key changes, unchanged TOAST values, truncate, DDL: exact path
            batch = collect(messages, relation, described.keys, applied_lsn=position)
        crashpoint(f"cdc {self.slot}: decoded, not committed")
        staged = stage_changes(
            session,
            table,
            batch,
            columns,
            described.keys,
            origin=f"postgres_cdc:{self.spec.table}",
            soft=self.spec.deletes == "soft",
            target=self.request.target,
            select=_blob_fix(columns),
        )
        full = len(messages) >= self.spec.max_changes
        new = max(self._moved_to(batch, position, None if full else flushed), position)
        more = (batch.cut or full) and new > position  # a batch that moved nothing: done
        return with_changes(staged, position=self._position(new), warnings=warnings, more=more)

    def _moved_to(self, batch: ChangeBatch, position: int, read_to_end: int | None) -> int:
        """The batch's new position: its last change's transaction; with no change of the
        table, past the transactions read (a full batch of other tables' changes: always,
        else the slot would hand them out again forever) or, when the peek read to the end
        of the WAL, up to ``read_to_end`` — once that is ``heartbeat_bytes`` ahead."""
        if batch.end_lsn is not None:
            return batch.end_lsn
        if read_to_end is None:
            return batch.read_lsn or position
        idle = max(batch.read_lsn or 0, read_to_end)
        return idle if idle - position >= max(self.spec.heartbeat_bytes, 1) else position

    def _position(self, value: int) -> Position:
        return change_position("cdc:" + self.slot, value, self.spec.deletes)

    def acknowledge(self, position: int) -> None:
        """Advance the slot to ``position`` (the table holds everything up to it)."""
        import psycopg

        crashpoint(f"cdc {self.slot}: committed, not acknowledged")
        try:
            with psycopg.connect(conninfo_of(self.request), autocommit=True) as pg:
                advance(pg, self.slot, position)
        except pg_errors() as e:
            # the table holds the position: the next run skips what it already has
            raise translate_error(e, f"slot {self.slot} (advance)") from None

    def status(self) -> dict[str, Any]:
        """The slot's health: exists, active, confirmed/restart LSN, retained WAL bytes,
        wal_status, safe_wal_size."""
        import dataclasses

        import psycopg

        with psycopg.connect(conninfo_of(self.request), autocommit=True) as pg:
            info = slot_info(pg, self.slot)
        out: dict[str, Any] = {"slot": self.slot, "exists": info is not None}
        if info is not None:
            out.update(dataclasses.asdict(info))
            del out["name"]
            out["warn"] = (info.retained_bytes or 0) > self.spec.warn_retained_wal or (
                info.wal_status in ("unreserved", "lost")
            )
        return out

    def reset(self) -> bool:
        """Drop the dataset's replication slot (``lockgate cdc drop-slot``)."""
        import psycopg

        with psycopg.connect(conninfo_of(self.request), autocommit=True) as pg:
            return drop_slot(pg, self.slot)

    # -- the snapshot ------------------------------------------------------------------

    def _snapshot(
        self, pg: Any, session: Session, table: str, conninfo: str, described: Described
    ) -> StagedSource:
        """A new slot and the table copied in its exported snapshot (``_lg_op = 'r'``)."""
        drop_slot(pg, self.slot)  # nothing was published from it (the table has no position)
        work = self.project_root / ".lockgate" / "cdc"
        work.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=work) as tmp:
            with exported_snapshot(conninfo, self.slot) as (lsn, snapshot):
                plan = self._copy(pg, conninfo, snapshot, described, Path(tmp))
            warnings = [plan.warning] if plan.warning else []
            raw = table + "__raw"
            parts = str(Path(tmp) / "part-*.csv")
            _load_csv(session, raw, parts, [c.name for c in described.columns])
            meta = meta_select(lsn, "r", None)
            session.execute(
                exp.Create(
                    this=table_ref(raw + "2"),
                    kind="TABLE",
                    replace=True,
                    expression=exp.select(*_blob_fix(described.columns), *meta).from_(
                        table_ref(raw)
                    ),
                )
            )
            session.drop(raw)
            rejected = convert(
                session,
                raw + "2",
                table,
                [*described.columns, *meta_columns()],
                f"postgres_cdc:{self.spec.table}",
                line=LSN,
            )
        if self.spec.deletes == "soft":
            add_flag(session, table, False)
        log.info("cdc %s: snapshot at %s staged", self.slot, lsn)
        staged = staged_table(session.con, table, rejected, position=self._position(lsn))
        return with_changes(staged, warnings=warnings) if warnings else staged

    def _copy(
        self, pg: Any, conninfo: str, snapshot: str, described: Described, out: Path
    ) -> SnapshotPlan:
        """COPY the table as CSV (text values) in the exported snapshot to
        ``out/part-<i>.csv``, on one connection or one per key range
        (:mod:`lockgate.sources._cdc_snapshot`)."""
        return copy_snapshot(
            conninfo,
            snapshot,
            described,
            self.spec.snapshot_partitions,
            pg,
            out,
            setup=session_setup,
            mid_snapshot=lambda: crashpoint(f"cdc {self.slot}: mid-snapshot"),
        )


# ---- catalog ------------------------------------------------------------------------------


class Described:
    """The source table: oid, columns (read plan), key columns, as the catalog says."""

    def __init__(
        self,
        oid: int,
        schema: str,
        name: str,
        columns: list[Column],
        keys: tuple[str, ...],
        relation: Relation,
    ) -> None:
        self.oid, self.schema, self.name = oid, schema, name
        self.columns, self.keys, self.relation = columns, keys, relation


_TABLE_SQL = (
    "SELECT c.oid, n.nspname, c.relname, c.relreplident FROM pg_class c JOIN pg_namespace n "
    "ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s AND c.relkind IN ('r','p')"
)
_COLS_SQL = (
    "SELECT a.attname, format_type(a.atttypid, a.atttypmod), t.typtype, t.typcategory, "
    "format_type(t.typelem, a.atttypmod), a.atttypid, a.atttypmod FROM pg_attribute a "
    "JOIN pg_type t ON t.oid = a.atttypid WHERE a.attrelid = %s AND a.attnum > 0 "
    "AND NOT a.attisdropped ORDER BY a.attnum"
)
_IDENTITY_SQL = (
    "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND "
    "a.attnum = ANY(i.indkey) WHERE i.indrelid = %s AND (CASE WHEN %s = 'i' THEN "
    "i.indisreplident ELSE i.indisprimary END) ORDER BY array_position(i.indkey, a.attnum)"
)


def session_setup(pg: Any) -> None:
    """Text output lockgate parses back exactly (ISO dates in UTC, round-trip floats)."""
    pg.execute("SET TimeZone = 'UTC'")
    pg.execute("SET DateStyle = 'ISO, YMD'")
    pg.execute("SET IntervalStyle = 'postgres'")
    pg.execute("SET extra_float_digits = 3")
    pg.execute("SET bytea_output = 'hex'")


def cdc_column(name: str, typ: str, typtype: str, category: str, elem: str) -> Column:
    """A column's read plan when every value arrives as PostgreSQL's text."""
    if category == "A" or typ == "money":  # arrays keep PostgreSQL's text form ({1,2});
        # money's text is lc_monetary's ('$1,234.50'): the read's cast to numeric is not
        # applied to what the slot hands out
        return Column(name, exp.column(ident(name)), "VARCHAR", NATIVE, typ)
    c = pg_column(name, typ, typtype, category, elem)
    if c.type == "BLOB":
        return Column(name, c.remote, "BLOB", HEX, typ)
    if c.how == NATIVE and c.type != "VARCHAR":
        return Column(name, c.remote, c.type, CAST, typ)
    return c


def describe(pg: Any, table: str, keys: tuple[str, ...], dataset: str) -> Described:
    """The table's columns and key; a ConfigError when deletes could not be keyed."""
    schema, _, name = table.rpartition(".")
    row = pg.execute(_TABLE_SQL, (schema or "public", name)).fetchone()
    if row is None:
        raise InputError(f"dataset '{dataset}': PostgreSQL table {table} not found")
    oid, schema, name, identity = int(row[0]), row[1], row[2], row[3]
    cols = pg.execute(_COLS_SQL, (oid,)).fetchall()
    columns = [cdc_column(*r[:5]) for r in cols]
    identity_cols = tuple(r[0] for r in pg.execute(_IDENTITY_SQL, (oid, identity)).fetchall())
    problem = key_problem(table, identity, identity_cols, keys)
    if problem:
        raise ConfigError([Problem(f"dataset '{dataset}': {problem[0]}", hint=problem[1])])
    relation = Relation(
        oid,
        schema,
        name,
        identity,
        tuple(r[0] for r in cols),
        tuple(r[0] in keys for r in cols),
        tuple(int(r[5]) for r in cols),
    )
    return Described(oid, schema, name, columns, keys, relation)


def key_problem(
    table: str, identity: str, identity_cols: tuple[str, ...], keys: tuple[str, ...]
) -> tuple[str, str] | None:
    """Why changes of ``table`` cannot be merged on ``keys`` (None: they can).

    >>> key_problem("public.t", "d", (), ("id",))[0][:48]
    'table public.t has no primary key and REPLICA ID'
    >>> key_problem("public.t", "d", ("id",), ("id",)) is None
    True
    """
    fix_identity = (
        f"add a primary key, or ALTER TABLE {table} REPLICA IDENTITY FULL "
        "(and set write.keys to columns that identify a row)"
    )
    if identity == "n" or (identity in ("d", "i") and not identity_cols):
        return (
            f"table {table} has no primary key and REPLICA IDENTITY is not FULL: its "
            "updates and deletes cannot be matched to rows",
            fix_identity,
        )
    if not keys:
        want = ", ".join(identity_cols) or "<unique columns>"
        return (
            "postgres_cdc needs write: {mode: merge, keys: [...]}",
            f"set write: {{mode: merge, keys: [{want}]}}",
        )
    if identity != "f" and set(keys) != set(identity_cols):
        return (
            f"write.keys ({', '.join(keys)}) differ from the replica identity of {table} "
            f"({', '.join(identity_cols)}): deletes carry only those columns",
            f"set write.keys to [{', '.join(identity_cols)}]",
        )
    return None


def ensure_publication(pg: Any, publication: str, described: Described, *, own: bool) -> None:
    """The publication exists (created FOR TABLE when missing) and includes the table
    (added to lockgate's ``own`` publication: a re-created table leaves it)."""
    from psycopg import sql

    row = pg.execute("SELECT 1 FROM pg_publication WHERE pubname = %s", (publication,)).fetchone()
    target = sql.Identifier(described.schema, described.name)
    if row is None:
        pg.execute(
            sql.SQL("CREATE PUBLICATION {} FOR TABLE {}").format(
                sql.Identifier(publication), target
            )
        )
        return
    has = pg.execute(
        "SELECT 1 FROM pg_publication_tables WHERE pubname = %s AND schemaname = %s "
        "AND tablename = %s",
        (publication, described.schema, described.name),
    ).fetchone()
    if has is None and own:
        pg.execute(
            sql.SQL("ALTER PUBLICATION {} ADD TABLE {}").format(sql.Identifier(publication), target)
        )
    elif has is None:
        raise InputError(
            f"publication '{publication}' exists but does not include "
            f"{described.schema}.{described.name}",
            hint=f"ALTER PUBLICATION {publication} ADD TABLE {described.schema}.{described.name}",
        )


def plan_columns(pg: Any, relation: Relation) -> list[Column]:
    """The read plan of a Relation message's columns (the table changed since the catalog
    was read: its types by oid)."""
    out = []
    for name, oid, mod in zip(
        relation.columns, relation.type_oids, relation.type_mods, strict=True
    ):
        row = pg.execute(
            "SELECT format_type(t.oid, %s), t.typtype, t.typcategory, format_type(t.typelem, %s) "
            "FROM pg_type t WHERE t.oid = %s",
            (mod, mod, oid),
        ).fetchone()
        out.append(
            cdc_column(name, *row)
            if row
            else Column(name, exp.column(ident(name)), "VARCHAR", NATIVE, "?")
        )
    return out


def _relation_in(messages: list[bytes], oid: int) -> Relation | None:
    """The first Relation message of table ``oid`` in the batch."""
    for m in messages:
        if m[0] == 82:  # 'R'
            rel = decode(m)
            if isinstance(rel, Relation) and rel.oid == oid:
                return rel
    return None


# ---- staging helpers ------------------------------------------------------------------------


def _blob_fix(columns: list[Column]) -> list[exp.Expr]:
    """PostgreSQL's ``\\x…`` bytea text without the prefix (the HEX conversion decodes it)."""
    out: list[exp.Expr] = []
    for c in columns:
        col = exp.column(ident(c.name))
        if c.how == HEX:
            out.append(exp.alias_(exp.func("substr", col, exp.Literal.number(3)), c.name))
        else:
            out.append(col)
    return out


def _load_csv(session: Session, name: str, path: str, columns: list[str]) -> None:
    from lockgate.sources.postgres import _load_csv as load

    session.execute(load(name, str(path), dict.fromkeys(columns, "VARCHAR")))
