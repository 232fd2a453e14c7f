"""``type: rest`` — the records of one REST endpoint, every page, as one dataset.

.. code-block:: yaml

    source:
      type: rest
      base_url: https://api.example.com/v1
      path: /orders
      auth: {type: bearer, token: "${SHOP_API_TOKEN}"}
      paginator: {type: cursor, cursor_path: meta.next, cursor_param: after}
      record_path: data
      since_param: updated_since        # with incremental: {cursor: updated_at}
      primary_key: [id]
      rate_limit: 10                    # requests per second

Config: :mod:`lockgate.sources._rest_config`; HTTP (auth, retries honouring
``Retry-After``, rate limit, paginators, page cap, loop detection): :mod:`._rest_http`.

Each page's records are written to a spill file (memory holds a page or two) and staged by
DuckDB while the next pages are fetched (:mod:`._rest_spill`); a spill that does not stage
strictly goes, as NDJSON, through the same record-level quarantine as JSON files: a record that
is not an object or has a value that does not fit its declared type goes to
``<table>__rejects`` with the page URL (secrets hidden), its number in the page and the
reason. A name repeated inside one object keeps its last value, as JSON parsers do (RFC 8259
leaves it to the reader; checking every page for it would need the slow parser). A
response that is not JSON, a pagination loop or an error status fails the step:
nothing is published. A record read twice in one run (offset pagination over a list that
changed) is skipped under the named reason ``duplicate_record``: records read = published
+ quarantined + skipped.

With ``incremental: {cursor: col}`` on the dataset and ``since_param:``, each run asks for
records from the last cursor value read (minus ``incremental.lookback``); the run loop
classifies the records read again (``already_published``).
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import threading
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from sqlglot import exp

from lockgate._duration import parse_duration
from lockgate.errors import ConfigError, InputError, Problem
from lockgate.sources import _records
from lockgate.sources._records import tbl
from lockgate.sources._rest_config import RestSourceSpec
from lockgate.sources._rest_http import PageReader, resolve_secrets
from lockgate.sources._rest_parent import ParentOutcome, child_pages
from lockgate.sources._rest_spill import ChunkedSpill, fast_read, prefetched
from lockgate.sources.base import (
    REJECTS_SUFFIX,
    ResumeToken,
    Source,
    SourceConfig,
    StagedSource,
    cap_raw_records,
    count_rows,
    create_rejects_table,
    register_source,
    table_columns,
)
from lockgate.sql import ident

if TYPE_CHECKING:
    import duckdb

    from lockgate.engine.session import Session


log = logging.getLogger(__name__)

#: the longest record (characters) staged; longer ones are quarantined
MAX_RECORD_CHARS = 16 * 1024 * 1024


@register_source
class RestSource(Source):
    """Pages of a REST endpoint → NDJSON spill → typed staging table (+ rejects)."""

    TYPE: ClassVar[str] = "rest"
    CONFIG: ClassVar[type[SourceConfig]] = RestSourceSpec
    SUPPORTS_INCREMENTAL: ClassVar[bool] = True
    SUPPORTS_REJECTS: ClassVar[bool] = True

    def stage(self, session: Session, table: str, *, resume: ResumeToken = None) -> StagedSource:
        config = self.config
        assert isinstance(config, RestSourceSpec)
        self._check()
        secrets = resolve_secrets(config, self.dataset, self.project_root)
        since = self._since(resume)
        con = session.con
        rejects = create_rejects_table(con, table)
        tmp_root = getattr(session, "tmp_dir", None)
        if tmp_root is not None:
            Path(tmp_root).mkdir(parents=True, exist_ok=True)
        outcome = ParentOutcome()
        with (
            tempfile.TemporaryDirectory(prefix="lg_rest_", dir=tmp_root) as tmp,
            PageReader(config, secrets, dataset=self.dataset) as reader,
            in_file_order(con),
            ChunkedSpill(con, table, Path(tmp), self._columns()) as spill,
        ):
            read = (
                reader.pages(since)
                if config.parent is None
                else child_pages(reader, since, outcome)
            )
            # closed chunks are staged meanwhile (_rest_spill); closing() stops and joins the
            # fetch thread when writing fails (Ctrl-C, disk full), not when the traceback goes
            mark = getattr(session, "interrupts", 0)  # the step's timeout: see prefetched
            cancelled = lambda: getattr(session, "interrupts", 0) != mark  # noqa: E731
            with contextlib.closing(prefetched(read, cancelled=cancelled)) as fetched:
                spill.write(fetched)
            pages, lines = spill.index, spill.lines
            log.info(
                "dataset %s: %d record(s) from %d page(s) of %s",
                self.dataset,
                lines,
                len(pages),
                reader.show(reader.start_url()),
            )
            if not spill.finish():
                joined = spill.joined()
                self._stage_spill(
                    con,
                    table,
                    rejects,
                    joined,
                    lines,
                    spill.odd,
                    spill.wide,
                    spill.keys,
                    spill.sample,
                )
        if lines:
            _locate_rejects(con, rejects, pages)
        cap_raw_records(con, rejects)
        skipped = dict(outcome.skipped)
        duplicates = self._dedupe(con, table)
        if duplicates:
            skipped["duplicate_record"] = duplicates
        cursor = self.request.incremental.cursor if self.request.incremental else None
        last = _max_cursor(con, table, cursor) if cursor else None
        return StagedSource(
            rows=count_rows(con, table),
            rejected=count_rows(con, rejects),
            fingerprint=None,
            files=[],
            columns=table_columns(con, tbl(table)),
            resume={"cursor": last} if last is not None else resume,
            skipped=skipped,
            warnings=outcome.warnings(config.parent.name) if config.parent is not None else [],
            schemaless=lines == 0 and not self._columns(),
        )

    # ---- config ----

    def _problem(self, message: str, hint: str | None = None) -> ConfigError:
        return ConfigError(
            [
                Problem(
                    f"dataset '{self.dataset}': {message}",
                    file=self.request.defined_in,
                    line=self.request.defined_line,
                    hint=hint,
                )
            ]
        )

    def _check(self) -> None:
        config = self.config
        assert isinstance(config, RestSourceSpec)
        inc = self.request.incremental
        if config.since_param and inc is None:
            raise self._problem(
                "'since_param:' needs 'incremental: {cursor: …}' on the dataset",
                hint="the cursor column's largest value read is sent as since_param next run",
            )
        if inc is not None and config.since_param is None:
            log.info(
                "dataset %s: incremental without since_param: every run reads the whole "
                "endpoint; records already published are skipped",
                self.dataset,
            )

    def _columns(self) -> dict[str, str] | None:
        config = self.config
        assert isinstance(config, RestSourceSpec)
        return dict(config.columns) if config.columns else self.request.columns

    def _since(self, resume: ResumeToken) -> str | None:
        """since_param's value: the last cursor read minus the lookback, or since_initial."""
        config = self.config
        assert isinstance(config, RestSourceSpec)
        if not config.since_param:
            return None
        last = resume.get("cursor") if isinstance(resume, dict) else None
        if last is None:
            return config.since_initial
        value: Any = last
        lookback = self.request.incremental.lookback if self.request.incremental else None
        stamp = _as_datetime(str(last))
        if stamp is not None:
            if lookback is not None:
                stamp = stamp - parse_duration(lookback)
            if config.since_format:
                return stamp.strftime(config.since_format)
            return stamp.isoformat()
        if lookback is not None and isinstance(lookback, int | float):
            try:
                value = Decimal(str(last)) - Decimal(str(lookback))
            except ArithmeticError:
                value = last
        return str(value)

    # ---- staging ----

    def _stage_spill(
        self,
        con: duckdb.DuckDBPyConnection,
        table: str,
        rejects: str,
        spill: Path,
        lines: int,
        odd: bool,
        wide: dict[str, str] | None = None,
        keys: set[str] | None = None,
        sample: int | None = None,
    ) -> None:
        declared = self._columns()
        if lines == 0:
            # no record, no columns: the key's columns at least (the merge on it, its
            # implicit not-null checks); JSON, which any later type casts from and to
            key_cols = {k: "JSON" for k in self.config.merge_keys()}
            cols = declared or key_cols or {"column0": "VARCHAR"}
            create = exp.Create(
                this=exp.Schema(
                    this=tbl(table),
                    expressions=[
                        exp.ColumnDef(this=ident(c), kind=exp.DataType.build(t, dialect="duckdb"))
                        for c, t in cols.items()
                    ],
                ),
                kind="TABLE",
                replace=True,
            )
            con.execute(create.sql("duckdb"))
            return
        if not odd and fast_read(con, table, spill, declared, wide, keys, sample):
            return
        _records.stage_json_lines(
            con,
            table=table,
            rejects=rejects,
            files=[(spill, _SPILL)],
            ndjson_only=True,
            declared=declared,
            max_line_size=MAX_RECORD_CHARS * 4 + 1024,
            where=lambda cols: (None, []),
        )

    def _dedupe(self, con: duckdb.DuckDBPyConnection, table: str) -> int:
        """Delete records read twice in this run; returns how many (``duplicate_record``).

        With ``primary_key``: the last copy of a key wins (a later page is newer). Else, with
        ``dedupe``: records identical in every column, first copy kept."""
        config = self.config
        assert isinstance(config, RestSourceSpec)
        cols = table_columns(con, tbl(table))
        if count_rows(con, table) == 0:  # nothing read: no keys to check (columns unknown)
            return 0
        if config.primary_key:
            missing = [k for k in config.primary_key if k not in cols]
            if missing:
                raise InputError(
                    f"dataset '{self.dataset}': primary_key column(s) {', '.join(missing)} "
                    f"not in the records (columns: {', '.join(list(cols)[:20])})",
                    hint="fix primary_key (names are the records' keys)",
                )
            keys, order = list(config.primary_key), exp.Ordered(this=exp.column("rowid"), desc=True)
        elif config.dedupe and cols:
            keys, order = list(cols), exp.Ordered(this=exp.column("rowid"))
        else:
            return 0
        window = exp.Window(
            this=exp.RowNumber(),
            partition_by=[exp.column(ident(k)) for k in keys],
            order=exp.Order(expressions=[order]),
        )
        ranked = exp.select(exp.column("rowid").as_("rid"), exp.alias_(window, "rn")).from_(
            tbl(table)
        )
        if config.primary_key:  # a record without its key is not a copy of another one
            ranked = ranked.where(
                exp.and_(*[exp.column(ident(k)).is_(exp.Null()).not_() for k in keys])
            )
        dups = exp.select("rid").from_(ranked.subquery("r")).where("rn > 1")
        before = count_rows(con, table)
        con.execute(
            exp.delete(
                tbl(table), where=exp.In(this=exp.column("rowid"), query=dups.subquery())
            ).sql("duckdb")
        )
        return before - count_rows(con, table)


_SPILL = "<rest spill>"


#: in_file_order's holders per database: (how many, the setting before the first)
_ORDER_HOLDERS: dict[tuple[Any, ...], list[Any]] = {}
_ORDER_LOCK = threading.Lock()


def _database_key(con: duckdb.DuckDBPyConnection) -> tuple[Any, ...]:
    """What tells one DuckDB database instance from another (the run's worker cursors share
    one): its temp directory (one per run) and attached databases."""
    row = con.execute("SELECT current_setting('temp_directory')").fetchone()
    dbs = con.execute(
        "SELECT database_name, path FROM duckdb_databases() WHERE NOT internal ORDER BY 1"
    ).fetchall()
    return (row[0] if row else None, tuple(map(tuple, dbs)))


@contextlib.contextmanager
def in_file_order(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Stage rows in spill order: the work session reads with ``preserve_insertion_order``
    off, and then a large spill's rows land out of order (DuckDB reads it in parallel
    blocks) — the duplicate rule "the later page's copy wins" needs their order.

    The setting is the database's, shared by the run's worker cursors: with two REST steps
    at once, the first to finish must not switch it off under the other (counted per
    database; the last holder restores it)."""
    with _ORDER_LOCK:
        key = _database_key(con)
        held = _ORDER_HOLDERS.get(key)
        if held is None:
            row = con.execute("SELECT current_setting('preserve_insertion_order')").fetchone()
            held = _ORDER_HOLDERS[key] = [0, bool(row[0]) if row else True]
        held[0] += 1
        con.execute("SET preserve_insertion_order = true")
    try:
        yield
    finally:
        with _ORDER_LOCK:
            held[0] -= 1
            if held[0] == 0:
                _ORDER_HOLDERS.pop(key, None)
                con.execute(f"SET preserve_insertion_order = {'true' if held[1] else 'false'}")


def _locate_rejects(
    con: duckdb.DuckDBPyConnection, rejects: str, pages: list[tuple[int, int, str]]
) -> None:
    """Spill line numbers in ``rejects`` → page URL, page number and record number."""
    if count_rows(con, rejects) == 0:
        return
    import pyarrow as pa

    index = pa.table(
        {
            "first": [p[0] for p in pages],
            "last": [
                (pages[i + 1][0] - 1) if i + 1 < len(pages) else 2**62 for i in range(len(pages))
            ],
            "page": [p[1] for p in pages],
            "url": [p[2] for p in pages],
        }
    )
    con.register("__lg_rest_pages", index)
    try:
        con.execute(
            f"""
            UPDATE "{rejects}" AS r SET
              _lg_source_file = p.url,
              _lg_line = r._lg_line - p.first + 1,
              _lg_reason = regexp_replace(r._lg_reason, '^line [0-9]+',
                 'page ' || p.page || ', record ' || (r._lg_line - p.first + 1))
            FROM __lg_rest_pages AS p
            WHERE r._lg_source_file = ? AND r._lg_line BETWEEN p.first AND p.last
            """,
            [_SPILL],
        )
    finally:
        con.unregister("__lg_rest_pages")
    assert rejects.endswith(REJECTS_SUFFIX)


def _as_datetime(text: str) -> datetime | None:
    if len(text) < 10 or not text[:4].isdigit() or text[4] != "-":
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    return value


def _max_cursor(con: duckdb.DuckDBPyConnection, table: str, cursor: str) -> str | None:
    """The largest cursor value staged, as ISO text for timestamps (what APIs parse)."""
    cols = table_columns(con, tbl(table))
    if cursor not in cols:
        return None
    row = con.execute(
        exp.select(exp.func("max", exp.column(ident(cursor)))).from_(tbl(table)).sql("duckdb")
    ).fetchone()
    value = None if row is None else row[0]
    if value is None:
        return None
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)
