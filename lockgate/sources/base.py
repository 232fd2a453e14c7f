"""The source adapter interface: a registry of :class:`Source` classes keyed by ``type``.

A source *extracts* one dataset into a DuckDB staging table without materialising the
data as Python objects: DuckDB reads the input itself and spills to disk when needed.
Records it cannot read are never dropped silently; they land in ``<table>__rejects``
(:data:`REJECT_COLUMNS`) with the file, the line and a human-readable reason.

Adding a connector = one module with a ``Source`` subclass decorated with
:func:`register_source`, imported in ``lockgate/sources/__init__.py``.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import duckdb
from sqlglot import exp

from lockgate._suggest import did_you_mean
from lockgate.errors import ConfigError, Problem
from lockgate.project.models import DatasetSpec

log = logging.getLogger(__name__)

#: suffix of the table that holds the records a source could not read
REJECTS_SUFFIX = "__rejects"

#: columns of ``<table>__rejects`` (name, DuckDB type), in order
REJECT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("_lg_source_file", "VARCHAR"),
    ("_lg_line", "BIGINT"),
    ("_lg_raw_record", "VARCHAR"),
    ("_lg_reason", "VARCHAR"),
)


@dataclass(frozen=True)
class StagedSource:
    """What :func:`stage_source` staged.

    ``fingerprint`` equals :func:`fingerprint` taken just before the read (stat only), so the
    run loop can store it and compare a later ``fingerprint()`` with it to detect "no change".
    ``files`` are project-relative POSIX paths (as matched, sorted); ``columns`` maps each
    staged column to its DuckDB type.
    """

    rows: int
    rejected: int
    fingerprint: dict[str, Any]
    files: list[str]
    columns: dict[str, str] = field(default_factory=dict)


class Source(ABC):
    """One kind of source (``type:`` in a dataset's ``source:`` block).

    Capability flags let the run loop ask what a source can do without ``isinstance``.
    """

    #: the ``type:`` string this class handles
    TYPE: ClassVar[str]
    #: can filter rows on the incremental cursor while staging (``min_cursor``)
    SUPPORTS_INCREMENTAL: ClassVar[bool] = False
    #: captures unreadable records in ``<table>__rejects`` instead of failing
    SUPPORTS_REJECTS: ClassVar[bool] = False
    #: :meth:`fingerprint` is cheap and changes when the input changes (enables no-op runs)
    SUPPORTS_FINGERPRINT: ClassVar[bool] = False

    def __init__(self, spec: DatasetSpec, project_root: Path) -> None:
        self.spec = spec
        self.project_root = Path(project_root)

    @abstractmethod
    def fingerprint(self) -> dict[str, Any]:
        """A cheap, JSON-serialisable description of the current input (no data read)."""

    @abstractmethod
    def stage(
        self,
        con: duckdb.DuckDBPyConnection,
        table: str,
        *,
        min_cursor: object | None = None,
        skip_files: Collection[tuple[str, int, int]] = (),
    ) -> StagedSource:
        """Create ``table`` (good records) and ``table + "__rejects"`` on ``con``.

        ``skip_files`` is only honoured by sources whose ``SUPPORTS_FINGERPRINT`` inputs are
        files; others ignore it."""


_REGISTRY: dict[str, type[Source]] = {}

S = TypeVar("S", bound=type[Source])


def register_source(cls: S) -> S:
    """Class decorator: make ``cls`` the implementation of ``source.type == cls.TYPE``."""
    existing = _REGISTRY.get(cls.TYPE)
    if existing is not None and existing is not cls:
        raise ValueError(f"source type {cls.TYPE!r} is already registered by {existing!r}")
    _REGISTRY[cls.TYPE] = cls
    return cls


def registered_types() -> list[str]:
    """The ``type:`` strings that have an implementation, sorted."""
    return sorted(_REGISTRY)


def source_for(spec: DatasetSpec, project_root: Path) -> Source:
    """The :class:`Source` for ``spec`` (raises ``ConfigError`` for a transform dataset or an
    unknown ``type``)."""
    if spec.source is None:
        raise ConfigError(
            [
                Problem(
                    f"dataset '{spec.name}' has no 'source' (it is a transform)",
                    file=spec.defined_in,
                    line=spec.defined_line,
                )
            ]
        )
    cls = _REGISTRY.get(spec.source.type)
    if cls is None:
        raise ConfigError(
            [
                Problem(
                    f"dataset '{spec.name}': unknown source type {spec.source.type!r}; "
                    f"known: {', '.join(registered_types())}",
                    file=spec.defined_in,
                    line=spec.defined_line,
                    hint=did_you_mean(spec.source.type, _REGISTRY),
                )
            ]
        )
    return cls(spec, project_root)


def stage_source(
    con: duckdb.DuckDBPyConnection,
    spec: DatasetSpec,
    project_root: Path,
    table: str,
    *,
    min_cursor: object | None = None,
    skip_files: Collection[tuple[str, int, int]] = (),
) -> StagedSource:
    """Extract ``spec``'s source into DuckDB table ``table`` (+ ``table__rejects``).

    ``skip_files``: ``(path, size, mtime_ns)`` of files an incremental run already published
    unchanged; they are not read again.

    ``min_cursor``: for incremental datasets (``spec.incremental.cursor``) keep only rows
    with ``cursor >= min_cursor`` (the caller has already subtracted the lookback). The
    comparison is inclusive on purpose: rows at exactly the watermark are re-read, and
    merge/de-duplication on the dataset's keys makes that harmless, whereas ``>`` could lose
    rows that share the watermark value but arrived after the last run. Rows whose cursor
    is NULL are kept (never silently dropped) so a ``not_null`` check can quarantine them.
    """
    return source_for(spec, project_root).stage(
        con, table, min_cursor=min_cursor, skip_files=skip_files
    )


def fingerprint(spec: DatasetSpec, project_root: Path) -> dict[str, Any]:
    """Cheap fingerprint of ``spec``'s current input (stat only, no data read)."""
    return source_for(spec, project_root).fingerprint()


# --- helpers shared by implementations -------------------------------------------------


def ident(name: str) -> exp.Identifier:
    """A quoted identifier (user-provided names are always quoted)."""
    return exp.to_identifier(name, quoted=True)


def create_rejects_table(con: duckdb.DuckDBPyConnection, table: str) -> str:
    """(Re)create the empty ``table__rejects`` and return its name."""
    name = table + REJECTS_SUFFIX
    create = exp.Create(
        this=exp.Schema(
            this=exp.Table(this=ident(name)),
            expressions=[
                exp.ColumnDef(this=ident(col), kind=exp.DataType.build(typ))
                for col, typ in REJECT_COLUMNS
            ],
        ),
        kind="TABLE",
        replace=True,
    )
    con.execute(create.sql("duckdb"))
    return name


#: longest raw record kept in ``_lg_raw_record`` (characters); longer ones are cut with
#: a marker so a 10 MB line is not copied into the quarantine and the state store
MAX_RAW_RECORD = 4096


def cap_raw_records(con: duckdb.DuckDBPyConnection, rejects: str) -> None:
    """Cut every ``_lg_raw_record`` longer than :data:`MAX_RAW_RECORD` to that length,
    followed by ``… [truncated: N characters in total]`` (file, line and reason stay)."""
    raw = exp.column(ident("_lg_raw_record"))
    length = exp.func("length", raw.copy())
    cut = exp.DPipe(
        this=exp.DPipe(
            this=exp.func("left", raw.copy(), exp.Literal.number(MAX_RAW_RECORD)),
            expression=exp.Literal.string("… [truncated: "),
            safe=True,
        ),
        expression=exp.DPipe(
            this=exp.cast(length.copy(), "VARCHAR"),
            expression=exp.Literal.string(" characters in total]"),
            safe=True,
        ),
        safe=True,
    )
    update = exp.update(
        exp.Table(this=ident(rejects)),
        {"_lg_raw_record": cut},
        where=exp.GT(this=length, expression=exp.Literal.number(MAX_RAW_RECORD)),
    )
    con.execute(update.sql("duckdb"))


def table_columns(con: duckdb.DuckDBPyConnection, relation: exp.Expr) -> dict[str, str]:
    """Column name → DuckDB type of a query or table, from DESCRIBE (binds, reads nothing)."""
    query = relation if isinstance(relation, exp.Query) else exp.select("*").from_(relation)
    rows = con.execute("DESCRIBE " + query.sql("duckdb")).fetchall()
    return {str(r[0]): str(r[1]) for r in rows}


def count_rows(con: duckdb.DuckDBPyConnection, table: str) -> int:
    rows = con.execute(
        exp.select(exp.func("count", exp.Star())).from_(exp.Table(this=ident(table))).sql("duckdb")
    ).fetchall()
    return int(rows[0][0]) if rows else 0
