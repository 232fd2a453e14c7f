"""The source adapter interface: a registry of :class:`Source` classes keyed by ``type``.

A source *extracts* one dataset into a staging table of the run's engine session without
materialising the data as Python objects. Records it cannot read are never dropped
silently; they land in ``<table>__rejects`` (:data:`REJECT_COLUMNS`) with the file/page,
the line and a human-readable reason.

Adding a connector = one module (inside or outside the package) with a
:class:`SourceConfig` subclass (its ``type: Literal["name"]`` is the tag of ``source:`` in
dataset YAML; the JSON Schema and validation follow from it) and a :class:`Source`
subclass decorated with :func:`register_source`. Nothing else changes: the run loop
builds a :class:`SourceRequest`, calls :meth:`Source.fingerprint` and :meth:`Source.stage`
and stores the adapter's resume token without reading it.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, JsonValue
from sqlglot import exp

from lockgate._suggest import did_you_mean
from lockgate.connections import Connection
from lockgate.errors import ConfigError, Problem
from lockgate.sql import ident

if TYPE_CHECKING:
    from lockgate.engine.session import Session

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

#: an adapter's resume token: any JSON value; the run loop stores it and hands it back
ResumeToken = JsonValue


class SourceConfig(BaseModel):
    """Base of every adapter's ``source:`` config: frozen, unknown keys rejected.

    A subclass declares ``type: Literal["<name>"] = "<name>"`` first, then its fields
    (with descriptions: they become the JSON Schema editors show)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    def declared_columns(self) -> dict[str, str] | None:
        """Columns the source declares (name: SQL type), if its config has ``columns``."""
        cols = getattr(self, "columns", None)
        return dict(cols) if isinstance(cols, Mapping) else None

    def connection_name(self) -> str | None:
        """The named connection (``connection: NAME``) the source reads through, if any."""
        name = getattr(self, "connection", None)
        return name if isinstance(name, str) else None

    def merge_keys(self) -> tuple[str, ...]:
        """The key a dataset merges on when neither it nor the project sets a write mode
        (a source that declares its records' primary key: re-reading them must not append
        them again); empty: the project's default mode applies."""
        return ()


@dataclass(frozen=True)
class IncrementalRequest:
    """The dataset's ``incremental:`` settings, as a source sees them."""

    cursor: str
    lookback: str | int | float | None = None
    late: str = "quarantine"


@dataclass(frozen=True)
class SourceRequest:
    """Everything a source needs to read one dataset (built by the run loop / project).

    ``connection`` is the named connection the config refers to, unresolved: call
    :meth:`Connection.resolve` at connect time (secrets are never stored resolved)."""

    dataset: str
    config: SourceConfig
    project_root: Path
    columns: dict[str, str] | None = None  # the dataset's declared output columns
    incremental: IncrementalRequest | None = None
    connection: Connection | None = None
    defined_in: str | None = None  # dataset file, for messages
    defined_line: int | None = None
    #: the dataset's merge keys (``write.keys`` of a merge), for sources that upsert
    keys: tuple[str, ...] = ()
    #: change sources (:attr:`Source.SUPPORTS_CDC`): the position the dataset's table holds
    #: (its application transaction :meth:`Source.position_id`; None: nothing published,
    #: or a full refresh), and a function that registers the published table in the
    #: engine session and returns its relation name (None: no table) — called only when
    #: the source needs the stored rows (registering reads the table's file list)
    position: int | None = None
    target: Callable[[], str] | None = None
    #: change sources: the version of another application transaction of the dataset's
    #: table (e.g. the GTID a position carries, :attr:`Position.extra`); None: no table
    txn_version: Callable[[str], int | None] | None = None

    def where(self) -> str:
        """`` (defined in file:line)`` for messages, or ``""``."""
        if not self.defined_in:
            return ""
        line = f":{self.defined_line}" if self.defined_line else ""
        return f" (defined in {self.defined_in}{line})"


@dataclass(frozen=True)
class StagedSource:
    """What :meth:`Source.stage` staged.

    ``fingerprint`` equals :meth:`Source.fingerprint` taken just before the read, so the
    run loop can store it and compare a later ``fingerprint()`` with it to detect "no
    change". ``resume`` is the adapter's token for the next run (see :meth:`Source.stage`).
    ``files`` are what was read (project-relative POSIX paths for files); ``columns`` maps
    each staged column to its type."""

    rows: int
    rejected: int
    fingerprint: JsonValue
    files: list[str]
    columns: dict[str, str] = field(default_factory=dict)
    resume: ResumeToken = None
    #: records read but not staged, by named reason (counted in the step's accounting)
    skipped: dict[str, int] = field(default_factory=dict)
    #: change sources: the table's new position (ONE commit with the data carries it)
    position: Position | None = None
    #: change sources: a staged table of rows that delete (``<table>__deletes``): not
    #: audited (a row leaving has nothing to check), published in the same commit
    deletes: str | None = None
    deleted_rows: int = 0
    #: what the step should report (e.g. a replication slot holding back much WAL)
    warnings: list[str] = field(default_factory=list)
    #: a change source stopped before the end of its log (batch size, truncate, DDL)
    more: bool = False
    #: nothing was read and the source cannot know the columns (e.g. a REST endpoint with
    #: no records and no ``columns:``): the staged table is a placeholder, not published
    schemaless: bool = False


@dataclass(frozen=True)
class Position:
    """Where a change source is in its log after a batch: the application transaction
    ``app_id`` = ``value`` the dataset's commit carries (e.g. ``cdc:<slot>`` = end LSN), and
    the staged ``column`` holding each row's own position (quarantined rows keep it)."""

    app_id: str
    value: int
    column: str
    #: how deletes land: ``delete`` (rows removed) or ``soft`` (flagged, values kept)
    deletes: str = "delete"
    #: the flag column of soft deletes
    deleted_flag: str | None = None
    #: the change-kind column (``d`` marks a delete row)
    op_column: str = "_lg_op"
    #: more application transactions of the same commit (e.g. the GTID of the last change
    #: applied, so a failover to another server can resume): (app_id, version) pairs
    extra: tuple[tuple[str, int], ...] = ()


class Source(ABC):
    """One kind of source (``type:`` in a dataset's ``source:`` block).

    Capability flags let the run loop and validation ask what a source can do without
    ``isinstance``; an adapter sets the ones it supports."""

    #: the ``type:`` string this class handles
    TYPE: ClassVar[str]
    #: its ``source:`` config model (a :class:`SourceConfig` with ``type: Literal[TYPE]``)
    CONFIG: ClassVar[type[SourceConfig]]
    #: ``incremental:`` is allowed: the source stages whole inputs or rows from a cursor,
    #: and the run loop settles re-read rows against the watermark
    SUPPORTS_INCREMENTAL: ClassVar[bool] = False
    #: captures unreadable records in ``<table>__rejects`` instead of failing
    SUPPORTS_REJECTS: ClassVar[bool] = False
    #: :meth:`fingerprint` is cheap and changes when the input changes (enables no-op
    #: runs); without it every run reads the source
    SUPPORTS_FINGERPRINT: ClassVar[bool] = False
    #: reads partitions in parallel (several connections sharing one snapshot)
    SUPPORTS_PARALLEL: ClassVar[bool] = False
    #: reads a change stream (CDC): the resume token is a log position
    SUPPORTS_CDC: ClassVar[bool] = False

    def __init__(self, request: SourceRequest) -> None:
        self.request = request
        self.config = request.config
        self.project_root = Path(request.project_root)

    @property
    def dataset(self) -> str:
        return self.request.dataset

    def fingerprint(self) -> JsonValue:
        """A cheap, JSON-serialisable description of the current input (no data read):
        the run loop's pinned input. Only called when :attr:`SUPPORTS_FINGERPRINT`; None
        means "none for this config" (the source is read on every run)."""
        raise NotImplementedError(f"source type {self.TYPE!r} has no fingerprint")

    @classmethod
    def position_id(cls, request: SourceRequest) -> str | None:
        """Change sources: the application-transaction id whose version in the dataset's
        table is the source's position (the run loop reads it into ``request.position``)."""
        return None

    def acknowledge(self, position: int) -> None:  # noqa: B027 - only change sources confirm
        """Change sources: the dataset's table now holds everything up to ``position``
        (called after the commit): confirm it at the source (advance the slot)."""

    def status(self) -> dict[str, JsonValue]:
        """Change sources: the health of the source's position (e.g. its replication slot:
        retained WAL bytes, ``wal_status``), for ``lockgate cdc status`` and metrics."""
        raise NotImplementedError(f"source type {self.TYPE!r} keeps no position")

    def reset(self) -> bool:
        """Change sources: drop what the source keeps at the server (its replication slot);
        True if there was something. The next run starts with a new snapshot once the table
        is rebuilt (``--full-refresh``)."""
        raise NotImplementedError(f"source type {self.TYPE!r} keeps no position")

    @abstractmethod
    def stage(self, session: Session, table: str, *, resume: ResumeToken = None) -> StagedSource:
        """Create ``table`` (good records) and ``table + "__rejects"`` in ``session``.

        ``resume`` is the token this adapter returned (``StagedSource.resume``) on the last
        successful step of the same definition, handed back when the step continues a
        published table (incremental, not a full refresh); ``None`` means read from
        scratch. The token is opaque to the run loop: only this adapter reads it."""


_REGISTRY: dict[str, type[Source]] = {}
_ON_REGISTER: list[Callable[[], None]] = []

S = TypeVar("S", bound=type[Source])


def register_source(cls: S) -> S:
    """Class decorator: make ``cls`` the implementation of ``source.type == cls.TYPE``
    (and ``cls.CONFIG`` a member of the ``source:`` union)."""
    existing = _REGISTRY.get(cls.TYPE)
    if existing is not None and existing is not cls:
        raise ValueError(f"source type {cls.TYPE!r} is already registered by {existing!r}")
    tag = cls.CONFIG.model_fields.get("type")
    if tag is None or tag.default != cls.TYPE:
        raise ValueError(f"{cls.CONFIG.__name__} needs a field type: Literal[{cls.TYPE!r}]")
    _REGISTRY[cls.TYPE] = cls
    for hook in list(_ON_REGISTER):
        hook()
    return cls


def on_register(hook: Callable[[], None]) -> None:
    """Call ``hook`` after every registration (the project rebuilds its ``source:`` union)."""
    _ON_REGISTER.append(hook)


def registered_types() -> list[str]:
    """The ``type:`` strings that have an implementation, sorted."""
    return sorted(_REGISTRY)


def source_configs() -> list[type[SourceConfig]]:
    """The config model of every registered source, by type."""
    return [_REGISTRY[t].CONFIG for t in registered_types()]


def source_class(type_: str, *, file: str | None = None, line: int | None = None) -> type[Source]:
    """The class registered for ``type_`` (``ConfigError`` with a did-you-mean if none)."""
    cls = _REGISTRY.get(type_)
    if cls is None:
        raise ConfigError(
            [
                Problem(
                    f"unknown source type {type_!r}; known: {', '.join(registered_types())}",
                    file=file,
                    line=line,
                    hint=did_you_mean(type_, _REGISTRY),
                )
            ]
        )
    return cls


def source_for(request: SourceRequest) -> Source:
    """The :class:`Source` reading ``request``."""
    cls = source_class(
        str(getattr(request.config, "type", "?")),
        file=request.defined_in,
        line=request.defined_line,
    )
    return cls(request)


# --- helpers shared by implementations -------------------------------------------------


class Cursor(Protocol):
    def fetchall(self) -> list[Any]: ...


class SqlConnection(Protocol):
    """What the helpers need of an engine connection (a DuckDB connection has it)."""

    def execute(self, query: str, parameters: object = None) -> Cursor: ...


def create_rejects_table(con: SqlConnection, table: str) -> str:
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


def cap_raw_records(con: SqlConnection, rejects: str) -> None:
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


def table_columns(con: SqlConnection, relation: exp.Expr) -> dict[str, str]:
    """Column name → DuckDB type of a query or table, from DESCRIBE (binds, reads nothing)."""
    query = relation if isinstance(relation, exp.Query) else exp.select("*").from_(relation)
    rows = con.execute("DESCRIBE " + query.sql("duckdb")).fetchall()
    return {str(r[0]): str(r[1]) for r in rows}


def staged_table(con: SqlConnection, table: str, rejected: int, **more: Any) -> StagedSource:
    """What a read staged in ``table`` (its rows and columns, read now) and ``rejected``
    records, with ``more`` of :class:`StagedSource`'s fields (resume token, position, skips,
    deletes…); a database or change source has no fingerprint and no files."""
    return StagedSource(
        rows=count_rows(con, table),
        rejected=rejected,
        fingerprint=None,
        files=[],
        columns=table_columns(con, exp.Table(this=ident(table))),
        **more,
    )


def count_rows(con: SqlConnection, table: str) -> int:
    rows = con.execute(
        exp.select(exp.func("count", exp.Star())).from_(exp.Table(this=ident(table))).sql("duckdb")
    ).fetchall()
    return int(rows[0][0]) if rows else 0
