"""The DuckDB engine adapter: one DuckDB session per run, file-backed so staging spills to disk.

Inputs (published datasets) are registered as views over Delta tables read through
``deltalake`` → pyarrow datasets at *pinned* versions; DuckDB scans them streaming, with
projection and filter pushdown. Nothing is materialised as Python objects.

``Session`` is the historical name of :class:`DuckDBEngine` (the run loop's session).
DuckDB's errors are raised as :class:`~lockgate.engine.base.EngineError` (the driver's error
is the ``__cause__``); :attr:`DuckDBEngine.con` is the raw connection, for the DuckDB file
readers only.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from sqlglot import exp

from lockgate.engine.base import Engine, EngineError, Result, register_engine
from lockgate.engine.workdir import clean_stale_work
from lockgate.sql import ident, table_ref

if TYPE_CHECKING:  # pyarrow.dataset imports pandas: ~0.2 s at start-up, needed rarely
    import duckdb
    import pyarrow as pa
    import pyarrow.dataset as pads

    from lockgate.engine.transforms import PythonTransform

log = logging.getLogger(__name__)

__all__ = ["Connection", "DuckDBEngine", "Session", "clean_stale_work", "ident", "table_ref"]

if TYPE_CHECKING:
    from typing import TypeAlias

    #: the engine's connection, as code outside the engine package names its type
    Connection: TypeAlias = duckdb.DuckDBPyConnection
    #: what the quality functions accept: an engine, or a DuckDB connection (wrapped)
    EngineLike: TypeAlias = Engine | duckdb.DuckDBPyConnection

#: DuckDB column types whose Parquet encoding is the Arrow/Delta type they are read back as
_PARQUET_NATIVE = frozenset(
    {
        "BOOLEAN",
        "TINYINT",
        "SMALLINT",
        "INTEGER",
        "BIGINT",
        "FLOAT",
        "DOUBLE",
        "VARCHAR",
        "DATE",
        "TIMESTAMP",
        "TIMESTAMP WITH TIME ZONE",
        "BLOB",
    }
)


@contextlib.contextmanager
def _mapped() -> Iterator[None]:
    """DuckDB's errors as EngineError (same message, the driver's error as the cause)."""
    import duckdb

    try:
        yield
    except duckdb.Error as e:
        raise EngineError(" ".join(str(e).split())) from e


@register_engine("duckdb")
class DuckDBEngine(Engine):
    """A DuckDB connection; file-backed in ``work_dir`` (removed on close) or in memory."""

    dialect = "duckdb"
    DISTRIBUTION = "duckdb"
    SUPPORTS_PYTHON_TRANSFORMS = True
    SUPPORTS_PROGRESS = True
    SUPPORTS_ROWID = True
    SUPPORTS_PARQUET_WRITE = True
    SUPPORTS_CONCURRENT_CURSORS = True
    SUPPORTS_PYTHON_FUNCTIONS = True

    def __init__(
        self,
        work_dir: Path | None = None,
        run_id: str = "session",
        *,
        memory_limit: str | None = None,
        threads: int | None = None,
        timezone: str | None = None,
        con: duckdb.DuckDBPyConnection | None = None,
    ) -> None:
        """File-backed in ``work_dir`` (``<run_id>.duckdb``), else in memory; ``con`` wraps
        an existing connection (it is not closed by :meth:`close`)."""
        import duckdb

        self.work_dir = work_dir
        self.db_path: Path | None = None
        self.tmp_dir: Path | None = None
        self._owned = con is None
        if con is not None:
            self.con = con
        elif work_dir is not None:
            work_dir.mkdir(parents=True, exist_ok=True)
            self.db_path = work_dir / f"{run_id}.duckdb"
            self.tmp_dir = work_dir / f"{run_id}.tmp"
            self.con = duckdb.connect(str(self.db_path))
            self._set("temp_directory", str(self.tmp_dir))
            self.con.execute("SET preserve_insertion_order = false")
        else:
            self.con = duckdb.connect()
        if memory_limit:
            self._set("memory_limit", memory_limit)
        if threads:
            self.con.execute(f"SET threads = {int(threads)}")
        if timezone:
            self._set("TimeZone", timezone)
        self._parent: DuckDBEngine | None = None  # set on a worker cursor (see cursor())
        self.interrupts = 0  # how many times interrupt() was called (see interrupt())

    def _set(self, option: str, value: str) -> None:
        q = exp.Set(
            expressions=[
                exp.SetItem(
                    this=exp.EQ(
                        this=exp.to_identifier(option), expression=exp.Literal.string(value)
                    )
                )
            ]
        )
        self.con.execute(q.sql(dialect="duckdb"))

    @classmethod
    def wrap(cls, con: duckdb.DuckDBPyConnection) -> DuckDBEngine:
        """An engine over an existing connection (left open by :meth:`close`)."""
        return cls(con=con)

    # -- inputs -----------------------------------------------------------------------------
    def register_arrow(
        self, name: str, data: pa.Table | pa.RecordBatchReader | pads.Dataset
    ) -> None:
        """Expose an Arrow dataset/table under ``name`` (replacing an earlier one)."""
        self.settle()
        self.unregister(name)
        with _mapped():
            self.con.register(name, data)

    def register_function(
        self,
        name: str,
        fn: Callable[[pa.Array], pa.Array],
        arg_types: Sequence[str],
        return_type: str,
    ) -> None:
        """An Arrow-vectorised scalar function (replacing an earlier one of that name)."""
        import duckdb

        self.settle()
        with contextlib.suppress(duckdb.Error):
            self.con.remove_function(name)
        # the option values as strings: their enum's module moved between DuckDB releases
        create: Any = self.con.create_function
        with _mapped():
            create(
                name,
                fn,
                [duckdb.sqltype(t) for t in arg_types],
                duckdb.sqltype(return_type),
                type="arrow",
                null_handling="special",
                side_effects=False,
            )

    def unregister(self, name: str) -> None:
        import duckdb

        self.settle()
        with contextlib.suppress(duckdb.Error):
            self.con.unregister(name)

    # -- execution --------------------------------------------------------------------------
    def execute(self, e: exp.Expr | str, params: Sequence[object] | None = None) -> Result:
        sql = e if isinstance(e, str) else self.sql(e)
        log.debug("sql: %s", sql)
        self.settle()
        with _mapped():
            return self.con.execute(sql, params)

    def executemany(self, e: exp.Expr, rows: Sequence[Sequence[object]]) -> None:
        self.settle()
        with _mapped():
            self.con.executemany(self.sql(e), rows)

    def reader(self, e: exp.Expr, batch_rows: int = 122_880) -> pa.RecordBatchReader:
        """Stream a query's result as Arrow record batches (never the whole result at once)."""
        sql = self.sql(e)
        log.debug("sql (stream): %s", sql)
        self.settle()
        with _mapped():
            return self.con.sql(sql).to_arrow_reader(batch_rows)

    def settle(self) -> None:
        """Finish any half-read ``execute()`` result: DuckDB refuses relation-API work on a
        connection while one is pending."""
        self.con.complete()

    def columns(self, relation: str) -> dict[str, str]:
        """Column name → DuckDB type of a table, view or registered relation."""
        self.settle()
        with _mapped():
            rows = self.con.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_name = ? AND table_schema = current_schema() "
                "AND table_catalog IN (current_database(), 'temp') ORDER BY ordinal_position",
                [relation],
            ).fetchall()
        if rows:
            return {str(r[0]): str(r[1]) for r in rows}
        return self.query_columns(exp.select("*").from_(table_ref(relation)))

    def query_columns(self, e: exp.Query) -> dict[str, str]:
        """Column name → DuckDB type of a query's result (nothing is read)."""
        self.settle()
        with _mapped():
            rel = self.con.sql(self.sql(e))
        return {str(n): str(t) for n, t in zip(rel.columns, rel.types, strict=True)}

    # -- staging and writing ----------------------------------------------------------------------
    def stage_sql(self, dataset: str, sql_text: str, table: str, where: str) -> None:
        from lockgate.engine.transforms import stage_sql

        stage_sql(self, dataset, sql_text, table, where)

    def stage_python(
        self, dataset: str, tf: PythonTransform, table: str, input_views: dict[str, str]
    ) -> None:
        from lockgate.engine.transforms import stage_python

        stage_python(self, dataset, tf, table, input_views)

    def writes_arrow_types(self, e: exp.Query) -> bool:
        """Whether DuckDB's Parquet writer stores every column of ``e`` in the type its Arrow
        schema declares (no unsigned, huge, nested or time types)."""
        return all(
            t.upper() in _PARQUET_NATIVE or t.upper().startswith("DECIMAL")
            for t in self.query_columns(e).values()
        )

    def write_parquet(
        self, e: exp.Expr, directory: Path, compression: str = "snappy"
    ) -> list[Path]:
        """Run ``e`` into Parquet files in the new folder ``directory`` (one per thread)."""
        opts = [
            exp.CopyParameter(this=exp.var("FORMAT"), expression=exp.var("parquet")),
            exp.CopyParameter(this=exp.var("COMPRESSION"), expression=exp.var(compression)),
            exp.CopyParameter(this=exp.var("PER_THREAD_OUTPUT"), expression=exp.true()),
            exp.CopyParameter(
                this=exp.var("FILENAME_PATTERN"), expression=exp.Literal.string("data_{i}")
            ),
        ]
        copy = exp.Copy(
            this=exp.Subquery(this=e.copy()),
            kind=False,
            files=[exp.Literal.string(str(directory))],
            params=opts,
        )
        self.execute(copy)
        return sorted(directory.glob("*.parquet"))

    # -- threads, progress ----------------------------------------------------------------------
    def cursor(self, name: str | None = None) -> Self:
        """A handle on the same database for another thread (its close() closes only it).

        With ``name`` (a run's worker thread) the handle creates its tables and views in a
        work database of its own, attached as ``name``: steps running at once never see each
        other's objects, and a dataset's SQL finds its inputs by name as in this session.
        Close it (from any thread) before this session."""
        handle = type(self)(con=self.con.cursor())
        handle._owned = True  # the cursor's own connection
        if name is not None and self.db_path is not None:
            handle.db_path = self.db_path.with_name(f"{self.db_path.stem}.{name}.duckdb")
            handle._parent = self
            db = exp.Attach(this=exp.alias_(exp.Literal.string(str(handle.db_path)), name))
            handle.execute(db)
            handle.execute(exp.Use(this=table_ref(name)))
        return handle

    def enable_progress(self) -> None:
        """Let :meth:`progress` report on running queries (DuckDB tracks it only when asked)."""
        self.con.execute("SET enable_progress_bar = true")
        self.con.execute("SET enable_progress_bar_print = false")

    def progress(self) -> float | None:
        """Percent done of the query running now (safe to call from another thread)."""
        import duckdb

        try:
            pct = float(self.con.query_progress())
        except duckdb.Error:
            return None
        return pct if pct >= 0 else None

    def interrupt(self) -> None:
        """Abort the query running now (safe to call from another thread); a source
        waiting on something else than a query (HTTP) sees :attr:`interrupts` change."""
        self.interrupts += 1
        self.con.interrupt()

    # -- lifecycle --------------------------------------------------------------------------
    def close(self) -> None:
        if not self._owned:
            return
        with contextlib.suppress(Exception):
            self.con.close()
        if self._parent is not None and self.db_path is not None:
            # a worker cursor: detach its work database, remove it
            name = self.db_path.stem.rsplit(".", 1)[-1]
            with contextlib.suppress(Exception):
                self._parent.execute(exp.Detach(this=exp.var(name)))
        if self.db_path is not None:
            for p in (self.db_path, Path(str(self.db_path) + ".wal")):
                with contextlib.suppress(FileNotFoundError):
                    p.unlink()
        if self.tmp_dir is not None and self._parent is None:
            shutil.rmtree(self.tmp_dir, ignore_errors=True)

    # -- static knowledge of the dialect --------------------------------------------------------
    @classmethod
    def version(cls) -> str:
        import duckdb

        return f"DuckDB {duckdb.__version__}"

    @classmethod
    def canonical_type(cls, type_name: str) -> str:
        """A declared type in DuckDB's canonical spelling (``int8`` → ``BIGINT``)."""
        import duckdb

        try:
            return str(duckdb.sqltype(type_name))
        except (duckdb.Error, TypeError, ValueError):
            return type_name

    @classmethod
    def syntax_error(cls, sql_text: str) -> tuple[str, int | None, int | None] | None:
        """Parse (without running) ``sql_text`` with DuckDB's own parser — stricter than
        sqlglot; ``None`` when it parses, else (message, line, column)."""
        import duckdb

        from lockgate.engine.transforms import sql_syntax_error

        try:
            duckdb.extract_statements(sql_text)
        except duckdb.ParserException as e:
            return sql_syntax_error(e)
        return None

    @classmethod
    def regex_error(cls, pattern: str) -> str | None:
        """Why RE2 (DuckDB's regex library) refuses ``pattern``; None when it compiles.

        >>> DuckDBEngine.regex_error(r"\\pL+") is None
        True
        >>> DuckDBEngine.regex_error(r"(a)\\1") is not None
        True
        """
        import duckdb

        con = duckdb.connect()
        try:
            con.execute("SELECT regexp_full_match('', ?)", [pattern]).fetchall()
        except duckdb.Error as e:
            return str(e).split("Error: ", 1)[-1].strip()
        finally:
            con.close()
        return None

    @classmethod
    def binder(cls) -> DuckDBBinder:
        return DuckDBBinder()


class DuckDBBinder:
    """An in-memory DuckDB, without file or network access, holding one empty table per
    dataset of known schema: binding a query over them gives its output schema."""

    def __init__(self) -> None:
        import duckdb

        self.con = duckdb.connect(config={"enable_external_access": False})

    def close(self) -> None:
        self.con.close()

    def add(self, name: str, columns: Mapping[str, str]) -> bool:
        """Create the empty table ``name``; False when a type is not one DuckDB knows."""
        try:
            defs = [
                exp.ColumnDef(this=ident(c), kind=exp.DataType.build(t, dialect="duckdb"))
                for c, t in columns.items()
            ]
            create = exp.Create(
                this=exp.Schema(this=exp.Table(this=ident(name)), expressions=defs),
                kind="TABLE",
            )
            self.con.execute(create.sql("duckdb"))
        except Exception:  # sqlglot or DuckDB: an exotic type; the schema stays unknown
            return False
        return True

    def bind(self, sql: str) -> tuple[dict[str, str] | None, str | None]:
        """The output schema of ``sql`` (column → type), or DuckDB's message refusing it."""
        import duckdb

        try:
            rel = self.con.sql(sql)
        except duckdb.Error as e:
            return None, str(e)
        if rel is None:
            return None, None
        return {c: str(t) for c, t in zip(rel.columns, rel.types, strict=True)}, None


#: the run loop's name for the DuckDB engine
Session = DuckDBEngine


def as_engine(con: EngineLike | None = None, *, timezone: str | None = None) -> Engine:
    """``con`` as an engine: an engine as is, a DuckDB connection wrapped (left open when the
    engine closes), None → a new in-memory DuckDB engine (in ``timezone``)."""
    if isinstance(con, Engine):
        return con
    if con is None:
        return DuckDBEngine(timezone=timezone)
    return DuckDBEngine.wrap(con)


def open_session(
    name: str,
    work_dir: Path,
    run_id: str,
    *,
    memory_limit: str | None = None,
    threads: int | None = None,
) -> DuckDBEngine:
    """The run's engine session, adapter ``name`` from the registry. The run loop's file
    readers still hand DuckDB connections around, so the adapter must be DuckDB-based."""
    from lockgate.engine.base import engine_class
    from lockgate.errors import UsageError

    cls = engine_class(name)
    if not issubclass(cls, DuckDBEngine):
        raise UsageError(
            f"engine {name!r} cannot run pipelines yet: the run loop's file readers need DuckDB",
            hint="use `engine: duckdb` (or an adapter derived from DuckDBEngine)",
        )
    return cls(work_dir, run_id, memory_limit=memory_limit, threads=threads)


def duckdb_connection(e: Engine) -> duckdb.DuckDBPyConnection:
    """The DuckDB connection under engine ``e``, for the readers that are DuckDB-specific by
    nature (files, targets); EngineError for an engine of another kind."""
    if isinstance(e, DuckDBEngine):
        return e.con
    raise EngineError(
        f"engine {e.name!r} cannot read files or targets: the readers need DuckDB",
        hint="use `engine: duckdb` (or an adapter derived from DuckDBEngine)",
    )
