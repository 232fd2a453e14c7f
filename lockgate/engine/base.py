"""The engine seam: one small ABC every SQL engine adapter implements, and its registry.

An engine stages data (Arrow datasets, filtered views, SQL), executes sqlglot expressions
generated in *its* dialect (:attr:`Engine.dialect`), streams results as Arrow, counts,
describes, drops, writes Parquet and reports progress. Checks are compiled by
:mod:`lockgate.quality.compile` into sqlglot expressions; the engine only renders and runs
them, so a second engine (Spark, …) reuses every check through sqlglot's transpiler.

What an engine can do beyond the core is said by capability flags (class attributes, as
SQLMesh's engine adapters do); callers read the flags, never the adapter's kind. Errors the
engine's driver raises are mapped to :class:`EngineError` inside the adapter.

Adapters register by name (a dict, nothing heavier)::

    @register_engine("duckdb")
    class DuckDBEngine(Engine): ...

    engine = engine_for("duckdb", work_dir=path, run_id="r1")
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, Self, TypeVar

from sqlglot import exp

from lockgate.errors import TerminalError, UsageError
from lockgate.sql import table_ref

if TYPE_CHECKING:  # pyarrow (+ numpy) ~0.3 s at start-up, pyarrow.dataset (pandas) ~0.2 s
    import pyarrow as pa
    import pyarrow.dataset as pads

    from lockgate.engine.transforms import PythonTransform


class EngineError(TerminalError):
    """The engine refused or failed a statement (the driver's error is the ``__cause__``)."""


class Result(Protocol):
    """What :meth:`Engine.execute` returns: a DB-API-like cursor over the result."""

    @property
    def description(self) -> Sequence[Sequence[Any]] | None: ...

    def fetchone(self) -> tuple[Any, ...] | None: ...

    def fetchall(self) -> list[tuple[Any, ...]]: ...


class SchemaBinder(Protocol):
    """An engine-side binder over empty tables of known schemas (see
    :mod:`lockgate.project.binding`): ``bind`` returns the query's output schema, or the
    engine's message when it refused the query."""

    def add(self, name: str, columns: Mapping[str, str]) -> bool: ...

    def bind(self, sql: str) -> tuple[dict[str, str] | None, str | None]: ...

    def close(self) -> None: ...


class Engine(ABC):
    """One engine session (a connection and its scratch space) used by one run or command.

    Subclasses set :attr:`name`, :attr:`dialect` and the capability flags, and implement the
    abstract methods; everything else is written once here in terms of them.
    """

    #: registry name (``engine:`` in lockgate.yaml)
    name: ClassVar[str] = ""
    #: sqlglot dialect the engine's SQL is generated in
    dialect: ClassVar[str] = ""
    #: the Python distribution of the engine's driver: its version keys the engine's
    #: remembered static answers (:mod:`lockgate.engine.memo`); None: never remembered
    DISTRIBUTION: ClassVar[str | None] = None

    # -- capability flags ---------------------------------------------------------------------
    #: runs Python transforms (hands inputs to user code as relations/Arrow)
    SUPPORTS_PYTHON_TRANSFORMS: ClassVar[bool] = False
    #: reports the progress of a running query (:meth:`progress`)
    SUPPORTS_PROGRESS: ClassVar[bool] = False
    #: base tables have a stable ``rowid`` pseudo-column (the audit marks sparsely by it)
    SUPPORTS_ROWID: ClassVar[bool] = False
    #: writes query results to Parquet files itself (:meth:`write_parquet`)
    SUPPORTS_PARQUET_WRITE: ClassVar[bool] = False
    #: several threads may each use their own :meth:`cursor` concurrently
    SUPPORTS_CONCURRENT_CURSORS: ClassVar[bool] = False
    #: runs vectorised Python scalar functions inside queries (:meth:`register_function`)
    SUPPORTS_PYTHON_FUNCTIONS: ClassVar[bool] = False

    # -- SQL --------------------------------------------------------------------------------
    def sql(self, e: exp.Expr) -> str:
        """``e`` rendered in the engine's dialect."""
        return e.sql(dialect=self.dialect)

    @abstractmethod
    def execute(self, e: exp.Expr | str, params: Sequence[object] | None = None) -> Result:
        """Run one statement (an expression, or SQL text in the engine's dialect)."""

    @abstractmethod
    def executemany(self, e: exp.Expr, rows: Sequence[Sequence[object]]) -> None:
        """Run a statement with ``?`` placeholders once per row of ``rows``."""

    @abstractmethod
    def reader(self, e: exp.Expr, batch_rows: int = 122_880) -> pa.RecordBatchReader:
        """Stream a query's result as Arrow record batches (never the whole result)."""

    def arrow(self, e: exp.Expr) -> pa.Table:
        """A (small) query's whole result as an Arrow table."""
        return self.reader(e).read_all()

    def arrow_schema(self, e: exp.Query) -> pa.Schema:
        """The Arrow schema of a query's result (no row is read)."""
        return self.reader(exp.select(exp.Star()).from_(e.subquery("__lg_q")).limit(0)).schema

    def fetch_row(self, e: exp.Expr) -> dict[str, Any]:
        """The first row of a query as {column: value} (empty when there is none)."""
        cur = self.execute(e)
        values = cur.fetchone()
        names = [str(d[0]) for d in cur.description or []]
        return {} if values is None else dict(zip(names, values, strict=True))

    # -- relations --------------------------------------------------------------------------
    @abstractmethod
    def register_arrow(
        self, name: str, data: pa.Table | pa.RecordBatchReader | pads.Dataset
    ) -> None:
        """Expose Arrow ``data`` (a table, dataset or reader) as relation ``name``."""

    def register_function(
        self,
        name: str,
        fn: Callable[[pa.Array], pa.Array],
        arg_types: Sequence[str],
        return_type: str,
    ) -> None:
        """Make ``fn`` (Arrow array in, Arrow array out) callable as ``name(...)`` in queries."""
        msg = f"the {self.name} engine cannot run Python functions in queries ({name})"
        raise EngineError(msg)

    @abstractmethod
    def unregister(self, name: str) -> None:
        """Forget relation ``name`` registered by :meth:`register_arrow` (no error if absent)."""

    def register_filtered(self, name: str, source: str, where: exp.Expr | None) -> None:
        """Create view ``name`` as ``SELECT * FROM source [WHERE where]``."""
        q = exp.select("*").from_(table_ref(source))
        if where is not None:
            q = q.where(where)
        self.execute(exp.Create(this=table_ref(name), kind="VIEW", expression=q, replace=True))

    def columns(self, relation: str) -> dict[str, str]:
        """Column name → type (in the engine's dialect) of a table, view or relation."""
        return self.query_columns(exp.select(exp.Star()).from_(table_ref(relation)))

    @abstractmethod
    def query_columns(self, e: exp.Query) -> dict[str, str]:
        """Column name → type (in the engine's dialect) of a query's result; reads no data."""

    def count(self, relation: str) -> int:
        row = self.execute(exp.select(exp.Count(this=exp.Star())).from_(table_ref(relation)))
        first = row.fetchone()
        return int(first[0]) if first else 0

    def drop(self, *tables: str) -> None:
        for t in tables:
            self.execute(exp.Drop(tables=[table_ref(t)], kind="TABLE", exists=True))

    def has_rowid(self, table: str) -> bool:
        """Whether ``table`` is a base table with a visible, stable ``rowid``."""
        if not self.SUPPORTS_ROWID:
            return False
        try:
            self.execute(exp.select(exp.column("rowid")).from_(table_ref(table)).limit(0))
        except EngineError:
            return False
        return True

    # -- staging and writing ----------------------------------------------------------------------
    def stage_sql(self, dataset: str, sql_text: str, table: str, where: str) -> None:
        """``CREATE TABLE table AS <sql_text>`` (a transform's query, written in the project's
        SQL dialect, transpiled to the engine's)."""
        import sqlglot

        query = sqlglot.parse_one(sql_text, read=DEFAULT_ENGINE)
        self.execute(exp.Create(this=table_ref(table), kind="TABLE", expression=query))

    def stage_python(
        self, dataset: str, tf: PythonTransform, table: str, input_views: dict[str, str]
    ) -> None:
        """Run a Python transform into ``table`` (engines with SUPPORTS_PYTHON_TRANSFORMS)."""
        raise EngineError(
            f"engine {self.name!r} does not run Python transforms (dataset '{dataset}')",
            hint="choose an engine that does (e.g. `engine: duckdb` in lockgate.yaml)",
        )

    def writes_arrow_types(self, e: exp.Query) -> bool:
        """Whether :meth:`write_parquet` stores every column of ``e`` in the Arrow type the
        engine reads it back as (else the caller streams :meth:`reader` instead)."""
        return False

    def write_parquet(
        self, e: exp.Expr, directory: Path, compression: str = "snappy"
    ) -> list[Path]:
        """Write the result of query ``e`` as Parquet files into the new folder
        ``directory``; returns the files (engines with SUPPORTS_PARQUET_WRITE)."""
        raise EngineError(f"engine {self.name!r} does not write Parquet files")

    # -- threads, progress, lifecycle -----------------------------------------------------------
    @abstractmethod
    def cursor(self, name: str | None = None) -> Self:
        """A handle on the same database for another thread (closing it leaves this one).
        ``name``: a run's worker, whose work objects must not collide with other workers'."""

    def enable_progress(self) -> None:
        """Let :meth:`progress` report on running queries (no-op without SUPPORTS_PROGRESS)."""
        return None

    def progress(self) -> float | None:
        """Percent done of the query running now, None when unknown."""
        return None

    def interrupt(self) -> None:
        """Abort the query running now, from another thread (a step's timeout); no-op by
        default: an engine that cannot interrupt lets the query finish."""
        return None

    def settle(self) -> None:
        """Finish any half-read result before the next statement (no-op by default)."""
        return None

    @abstractmethod
    def close(self) -> None:
        """Release the connection and remove the engine's scratch files."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- static knowledge of the dialect (used when validating a project) ------------------
    @classmethod
    def version(cls) -> str:
        """The engine and its version, for bug reports (``DuckDB 1.2.0``)."""
        return cls.name

    @classmethod
    def canonical_type(cls, type_name: str) -> str:
        """A declared type in the engine's canonical spelling (unknown types unchanged)."""
        return type_name

    @classmethod
    def syntax_error(cls, sql_text: str) -> tuple[str, int | None, int | None] | None:
        """The engine parser's (message, line, column) for ``sql_text``; None if it parses."""
        return None

    @classmethod
    def regex_error(cls, pattern: str) -> str | None:
        """Why the engine's regular-expression library refuses ``pattern`` (None: accepted)."""
        return None

    @classmethod
    def binder(cls) -> SchemaBinder | None:
        """A binder for static schema inference, None when the engine has none."""
        return None


# ---- registry ---------------------------------------------------------------------------------

_E = TypeVar("_E", bound=type[Engine])
_ENGINES: dict[str, type[Engine]] = {}
DEFAULT_ENGINE = "duckdb"


def register_engine(name: str) -> Callable[[_E], _E]:
    """Class decorator: make ``cls`` selectable as ``engine: <name>`` in lockgate.yaml."""

    def deco(cls: _E) -> _E:
        if not name or not name.isidentifier():
            raise ValueError(f"engine name must be an identifier, got {name!r}")
        cls.name = name
        _ENGINES[name] = cls
        return cls

    return deco


def registered_engines() -> list[str]:
    """Names of the registered engines, sorted."""
    _load_builtin()
    return sorted(_ENGINES)


def engine_class(name: str = DEFAULT_ENGINE) -> type[Engine]:
    """The adapter class registered as ``name`` (UsageError with a did-you-mean if none)."""
    _load_builtin()
    try:
        return _ENGINES[name]
    except KeyError:
        from lockgate._suggest import did_you_mean

        known = registered_engines()
        raise UsageError(
            f"unknown engine {name!r}",
            hint=did_you_mean(name, known) or f"registered engines: {', '.join(known)}",
        ) from None


def engine_for(name: str = DEFAULT_ENGINE, **options: Any) -> Engine:
    """A new engine session of adapter ``name`` (options go to its constructor)."""
    return engine_class(name)(**options)


def _load_builtin() -> None:
    """Import the adapters shipped with lockgate (they register themselves)."""
    if DEFAULT_ENGINE not in _ENGINES:
        import lockgate.engine.session  # noqa: F401
