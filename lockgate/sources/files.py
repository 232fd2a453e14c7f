"""``type: file`` — local CSV, JSON (array or NDJSON) and Parquet files, one path or a glob.

DuckDB reads the files itself (``read_csv`` / ``read_json`` / ``read_parquet``) straight
into the staging table, so memory stays bounded whatever the file size. Every record ends
up either in the staging table, with its values unchanged in the declared (or inferred)
type, or in ``<table>__rejects`` with its file, line/row and reason — never neither:

* CSV (:mod:`lockgate.sources._csv`): each file is sniffed and read on its own, its
  header matched to the dataset's columns by name (ignoring case and surrounding
  spaces), so files may order, add or lack columns; DuckDB's reject machinery
  (``store_rejects``) catches ragged rows, values that do not convert, invalid encoding
  and lines longer than ``max_line_size``; each reject keeps its physical line number
  (1-based, the header is line 1) and raw line.
* JSON / NDJSON: the fast path is one strict ``read_json`` of objects (it fails instead
  of dropping, ``ignore_errors`` is never used); undeclared nested values are kept as
  ``JSON`` text. When it fails, :mod:`lockgate.sources._records` re-reads each file line
  by line (an array file element by element; ``_lg_line`` is then the element number)
  and rejects malformed lines, non-objects, objects with a duplicate or empty key and
  values that do not convert.
* Parquet: files with the same schema are read together; otherwise each is read on its
  own and unioned by name, a column whose type differs between files gets its declared
  (or unified, :mod:`lockgate.sources._schema`) type with a per-row ``TRY_CAST``, and
  rows whose value does not convert are rejected with their file and row number.

Raw records longer than :data:`~lockgate.sources.base.MAX_RAW_RECORD` characters are
cut with a marker (file, line and reason stay), so a 10 MB line is not copied into the
quarantine or the state store.

Empty files (0 bytes) are not read; each gives one reject row with reason
``"empty file"``. A CSV with only a header line gives 0 rows and *no* reject (it is a
valid, empty batch). When no file has data and no ``columns`` are declared the staged
table has DuckDB's placeholder column ``column0 VARCHAR``.
"""

from __future__ import annotations

import glob
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import JsonValue
from sqlglot import exp

from lockgate._suggest import did_you_mean
from lockgate.errors import ConfigError, InputError, Problem
from lockgate.sources import _csv, _records, _schema
from lockgate.sources._file_config import (
    OPTIONS_BY_FORMAT,
    FileFormat,
    FileSourceSpec,
    format_of,
)
from lockgate.sources._records import tbl
from lockgate.sources.base import (
    ResumeToken,
    Source,
    SourceConfig,
    SourceRequest,
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


def _file_stats(value: JsonValue) -> list[dict[str, Any]]:
    """The ``files`` list of a fingerprint or resume token (``[]`` for anything else)."""
    files = value.get("files") if isinstance(value, dict) else None
    return [f for f in files if isinstance(f, dict)] if isinstance(files, list) else []


def _reject_files(
    con: duckdb.DuckDBPyConnection, rejects: str, files: Sequence[tuple[str, str]]
) -> None:
    """Reject whole files (``(relative path, reason)``): each counts as one record read."""
    if files:
        rows = exp.values([(name, None, None, why) for name, why in files])
        con.execute(exp.insert(exp.select("*").from_(rows), tbl(rejects)).sql("duckdb"))


#: byte order marks of text that is not UTF-8 (longest first: UTF-32 LE starts like UTF-16 LE)
_FOREIGN_BOMS = (
    (b"\xff\xfe\x00\x00", "UTF-32"),
    (b"\x00\x00\xfe\xff", "UTF-32"),
    (b"\xff\xfe", "UTF-16"),
    (b"\xfe\xff", "UTF-16"),
)


def _not_utf8_text(path: Path, size: int) -> str | None:
    """Why a CSV/JSON file is rejected whole before DuckDB reads it (None: read it): a UTF-8
    byte order mark alone is an empty file; a UTF-16/32 one (Excel's "Unicode text") would
    be misread as UTF-8 garbage with columns named ''."""
    if size >= 2:
        try:
            with path.open("rb") as f:
                head = f.read(4)
        except OSError:
            return None  # the reader reports it
        if head[:3] == b"\xef\xbb\xbf" and size == 3:
            return "empty file"
        for bom, name in _FOREIGN_BOMS:
            if head.startswith(bom):
                return (
                    f"file is {name} text (byte order mark {bom.hex(' ')}); lockgate reads "
                    "UTF-8: save it as UTF-8"
                )
    return None


def _mixed_line_endings(path: Path, sample: int = 1 << 20) -> bool:
    """Whether the start of a text file ends some lines with ``\\r\\n`` and others with a
    bare ``\\n`` (a file concatenated from Windows and Unix parts): DuckDB cannot sniff it."""
    try:
        with path.open("rb") as f:
            head = f.read(sample)
    except OSError:
        return False
    crlf = head.count(b"\r\n")
    return 0 < crlf < head.count(b"\n")


def _stat_key(f: Mapping[str, Any]) -> tuple[str, int, int]:
    return (str(f["path"]), int(f["size"]), int(f["mtime_ns"]))


#: user option name → DuckDB ``read_csv`` parameter (the allow-list)
def _json_types(
    con: duckdb.DuckDBPyConnection, paths: exp.Array, opts: Mapping[str, object]
) -> dict[str, str] | None:
    """DuckDB's inferred columns of the JSON files (bad records ignored while inferring),
    nested ones as ``JSON``: type hints for the record-level path; None if it cannot
    tell."""
    import duckdb

    reader = exp.func(
        "read_json",
        paths.copy(),
        *(named_arg(k, v) for k, v in {**opts, "ignore_errors": True}.items()),
    )
    try:
        columns = table_columns(con, exp.select("*").from_(reader))
    except duckdb.Error:
        return None
    return {c: "JSON" if _is_nested(t) else t for c, t in columns.items()}


def _is_nested(typ: str) -> bool:
    return typ.endswith("]") or typ.startswith(("STRUCT", "MAP", "UNION"))


def _exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    query = (
        exp.select(exp.func("count", exp.Star()))
        .from_("duckdb_tables()")
        .where(exp.EQ(this=exp.column("table_name"), expression=exp.Literal.string(name)))
    )
    row = con.execute(query.sql("duckdb")).fetchone()
    return bool(row and row[0])


def named_arg(name: str, value: object) -> exp.Expr:
    """``name := value`` for a DuckDB table function (``name`` from an allow-list)."""
    return exp.PropertyEQ(this=exp.to_identifier(name), expression=_literal(value))


def _literal(value: object) -> exp.Expr:
    if isinstance(value, Mapping):
        return exp.Struct(
            expressions=[
                exp.PropertyEQ(this=exp.Literal.string(str(k)), expression=_literal(v))
                for k, v in value.items()
            ]
        )
    if isinstance(value, list | tuple):
        return exp.Array(expressions=[_literal(v) for v in value])
    return exp.convert(value)


@dataclass(frozen=True)
class _Batch:
    """One staging call of a reader: where to write and what to read."""

    con: duckdb.DuckDBPyConnection
    table: str
    rejects: str
    files: list[Path]
    options: dict[str, object]
    declared: dict[str, str] | None
    min_cursor: object | None


@register_source
class FileSource(Source):
    """Local files: ``source: {type: file, path: data/orders_*.csv}``."""

    TYPE: ClassVar[str] = "file"
    CONFIG: ClassVar[type[SourceConfig]] = FileSourceSpec
    SUPPORTS_INCREMENTAL: ClassVar[bool] = True
    SUPPORTS_REJECTS: ClassVar[bool] = True
    SUPPORTS_FINGERPRINT: ClassVar[bool] = True

    def __init__(self, request: SourceRequest) -> None:
        super().__init__(request)
        assert isinstance(request.config, FileSourceSpec)
        self.source: FileSourceSpec = request.config

    # --- resolution -------------------------------------------------------------------

    def _where(self) -> str:
        if self.request.defined_in:
            return f" (defined in {self.request.defined_in})"
        return ""

    def resolve(self) -> list[Path]:
        """The matched files, sorted; raises ``InputError`` when nothing usable matches."""
        pattern = self.source.path
        full = os.path.join(self.project_root, pattern)
        if glob.has_magic(pattern):
            matches = [Path(p) for p in sorted(glob.glob(full, recursive=True))]
            if not matches:
                raise InputError(
                    f"dataset '{self.dataset}': glob '{pattern}' matched no files under "
                    f"{self.project_root}{self._where()}",
                    hint="check source.path (it is relative to the project folder; use '**' "
                    "to match sub-folders) and that the files exist",
                )
        else:
            matches = [Path(full)]
            if not matches[0].exists():
                raise InputError(
                    f"dataset '{self.dataset}': source file '{pattern}' does not exist "
                    f"(looked for {matches[0]}){self._where()}",
                    hint="check source.path (it is relative to the project folder)",
                )
        for path in matches:
            if path.is_dir():
                raise InputError(
                    f"dataset '{self.dataset}': source path '{self._rel(path)}' is a "
                    "directory, not a file",
                    hint="point source.path at files, e.g. 'data/orders/*.csv'",
                )
            if not os.access(path, os.R_OK):
                raise InputError(
                    f"dataset '{self.dataset}': cannot read source file '{self._rel(path)}' "
                    "(permission denied)",
                    hint="fix the file's permissions",
                )
        return matches

    def _rel(self, path: Path) -> str:
        return Path(os.path.relpath(path, self.project_root)).as_posix()

    def fingerprint(self) -> dict[str, JsonValue]:
        """``{"type": "file", "path": <pattern>, "files": [{path, size, mtime_ns}, ...]}``."""
        files: list[JsonValue] = []
        for path in self.resolve():
            st = path.stat()
            files.append({"path": self._rel(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns})
        return {"type": self.TYPE, "path": self.source.path, "files": files}

    def file_format(self, files: list[Path]) -> FileFormat:
        if self.source.format is not None:
            return self.source.format
        found: set[FileFormat] = set()
        for path in files:
            fmt = format_of(path)
            if fmt is None:
                raise InputError(
                    f"dataset '{self.dataset}': cannot tell the format of "
                    f"'{self._rel(path)}' from its extension",
                    hint="set source.format to one of: " + ", ".join(f.value for f in FileFormat),
                )
            found.add(fmt)
        if len(found) > 1:
            raise InputError(
                f"dataset '{self.dataset}': files matched by '{self.source.path}' have "
                f"different formats ({', '.join(sorted(f.value for f in found))})",
                hint="narrow source.path or set source.format",
            )
        return found.pop()

    def reader_options(self, fmt: FileFormat) -> dict[str, object]:
        """``source.options`` mapped to DuckDB parameter names (``ConfigError`` if unknown)."""
        allowed = OPTIONS_BY_FORMAT[fmt]
        out: dict[str, object] = {}
        problems = []
        for key, value in self.source.options.items():
            param = allowed.get(key)
            if param is None:
                suggestion = did_you_mean(key, allowed)
                problems.append(
                    self._problem(
                        f"unknown {fmt.value} source option {key!r}; "
                        f"allowed: {', '.join(sorted(allowed))}",
                        suggestion,
                    )
                )
                continue
            out[param] = value
        if problems:
            raise ConfigError(problems)
        return out

    def _problem(self, message: str, hint: str | None) -> Problem:
        """A configuration problem of this dataset's source, where it is defined."""
        return Problem(
            f"dataset '{self.dataset}': {message}",
            file=self.request.defined_in,
            line=self.request.defined_line,
            hint=hint,
        )

    def declared_columns(self) -> dict[str, str] | None:
        """``source.columns`` (or the dataset's ``columns``), validated as DuckDB types."""
        declared = self.source.columns or self.request.columns
        if not declared:
            return None
        problems = []
        for col, typ in declared.items():
            try:
                exp.DataType.build(typ, dialect="duckdb")
            except Exception as e:  # sqlglot raises ParseError/ValueError
                problems.append(
                    self._problem(
                        f"column '{col}' has an invalid type {typ!r} ({e})",
                        "use a DuckDB type, e.g. BIGINT, DOUBLE, DECIMAL(12,2), DATE",
                    )
                )
        if problems:
            raise ConfigError(problems)
        return dict(declared)

    # --- staging ----------------------------------------------------------------------

    def stage(self, session: Session, table: str, *, resume: ResumeToken = None) -> StagedSource:
        """Stage the matched files. ``resume`` (this adapter's token: the files published
        by the last step, ``{"files": [{path, size, mtime_ns}, ...]}``) makes an
        incremental step skip the files it published unchanged; the token returned lists
        every matched file."""
        return self.stage_files(session.con, table, resume=resume)

    def stage_files(
        self,
        con: duckdb.DuckDBPyConnection,
        table: str,
        *,
        resume: ResumeToken = None,
        min_cursor: object | None = None,
    ) -> StagedSource:
        """:meth:`stage` on a DuckDB connection; ``min_cursor`` keeps only rows with
        ``cursor >= min_cursor`` (or a NULL cursor)."""
        import duckdb

        fp = self.fingerprint()
        fp_files = _file_stats(fp)
        files = self.resolve()
        all_files = files
        # incremental: files already published unchanged (same path, size, mtime) are
        # not read again; the fingerprint still lists them (it pins the whole input)
        unchanged = {_stat_key(f) for f in _file_stats(resume)}
        if unchanged:
            fp_files = [f for f in fp_files if _stat_key(f) not in unchanged]
            keep = {f["path"] for f in fp_files}
            files = [p for p in files if self._rel(p) in keep]
        fmt = self.file_format(files or all_files)
        options = self.reader_options(fmt)
        declared = self.declared_columns()
        rejects = create_rejects_table(con, table)
        sizes = {self._rel(p): f["size"] for p, f in zip(files, fp_files, strict=True)}
        refused = {
            self._rel(p): why
            for p in files
            if fmt != FileFormat.PARQUET and (why := _not_utf8_text(p, sizes[self._rel(p)]))
        }
        readable = [p for p in files if sizes[self._rel(p)] > 0 and self._rel(p) not in refused]
        empty = [self._rel(p) for p in files if sizes[self._rel(p)] == 0]
        whole = [(name, "empty file") for name in empty] + list(refused.items())
        _reject_files(con, rejects, whole)
        log.debug(
            "staging dataset %s: %d file(s), format %s, %d empty",
            self.dataset,
            len(files),
            fmt.value,
            len(empty),
        )
        try:
            if not readable:
                self._stage_nothing(con, table, declared)
            else:
                batch = _Batch(con, table, rejects, readable, options, declared, min_cursor)
                if fmt == FileFormat.CSV:
                    self._stage_csv(batch)
                elif fmt == FileFormat.PARQUET:
                    self._stage_parquet(batch)
                else:
                    self._stage_json(batch, fmt)
        except duckdb.IOException as e:
            raise InputError(
                f"dataset '{self.dataset}': cannot read '{self.source.path}': {e}",
                hint="check that the files are readable and in the declared format",
            ) from e
        cap_raw_records(con, rejects)
        cols = table_columns(con, tbl(table))
        staged = StagedSource(
            rows=count_rows(con, table),
            rejected=count_rows(con, rejects),
            fingerprint=fp,
            files=[self._rel(p) for p in files],
            columns=cols,
            resume={"files": fp["files"]},
        )
        log.info(
            "staged dataset %s: %d rows, %d rejected, from %d file(s)",
            self.dataset,
            staged.rows,
            staged.rejected,
            len(files),
        )
        return staged

    def _input_error(self, what: str, e: Exception, hint: str) -> InputError:
        return InputError(f"dataset '{self.dataset}': {what} '{self.source.path}': {e}", hint=hint)

    def check_declared_present(self, columns: Mapping[str, str]) -> None:
        """Declared columns must exist in the input (DuckDB's CSV reader ignores unknown
        names in ``types`` when rejects are stored)."""
        missing = [c for c in self.declared_columns() or {} if c not in columns]
        if missing:
            raise InputError(
                f"dataset '{self.dataset}': declared column(s) {', '.join(missing)} not "
                f"found in '{self.source.path}' (found: {', '.join(columns)})",
                hint=did_you_mean(missing[0], columns) or "check the dataset's columns",
            )

    def cursor_filter(
        self, columns: dict[str, str], min_cursor: object | None
    ) -> tuple[exp.Expr | None, list[object]]:
        """``cursor >= CAST(? AS <type>) OR cursor IS NULL`` and its parameter, or no filter."""
        if self.request.incremental is None or min_cursor is None:
            return None, []
        cursor = self.request.incremental.cursor
        if cursor not in columns:
            hint = did_you_mean(cursor, columns) or f"columns: {', '.join(columns)}"
            raise InputError(
                f"dataset '{self.dataset}': incremental cursor column '{cursor}' is not in "
                f"the source '{self.source.path}'",
                hint=hint,
            )
        col = exp.column(ident(cursor))
        typ = exp.DataType.build(columns[cursor], dialect="duckdb")
        cond = exp.or_(
            exp.GTE(this=col, expression=exp.cast(exp.Placeholder(), typ)),
            exp.Is(this=col.copy(), expression=exp.Null()),
        )
        return cond, [min_cursor]

    def _create_from(
        self,
        con: duckdb.DuckDBPyConnection,
        table: str,
        query: exp.Select,
        min_cursor: object | None,
    ) -> None:
        """``CREATE OR REPLACE TABLE table AS query [WHERE cursor filter]`` — one pass."""
        columns = table_columns(con, query)
        self.check_declared_present(columns)
        cond, params = self.cursor_filter(columns, min_cursor)
        if cond is not None:
            query = query.where(cond)
        create = exp.Create(this=tbl(table), kind="TABLE", replace=True, expression=query)
        con.execute(create.sql("duckdb"), params)

    def _stage_nothing(
        self, con: duckdb.DuckDBPyConnection, table: str, declared: dict[str, str] | None
    ) -> None:
        cols = declared or {"column0": "VARCHAR"}
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

    # CSV -----------------------------------------------------------------------------

    def _stage_csv(self, b: _Batch) -> None:
        """Each file sniffed and read on its own (see :mod:`lockgate.sources._csv`)."""
        import duckdb

        con, table, rejects, files = b.con, b.table, b.rejects, b.files
        options, declared, min_cursor = b.options, b.declared, b.min_cursor
        errs, scans = _records.temp_name("rej"), _records.temp_name("scan")
        options = {"header": True, **options}
        try:
            sniffed = [_csv.sniff(con, p, options, declared or ()) for p in files]
            per_file = self._csv_columns(con, sniffed, options, declared)
            target: dict[str, str] = {}
            for cols in per_file:
                target.update({c: t for c, t in cols.items() if c not in target})
            self.check_declared_present(target)
            con.execute(
                exp.Create(
                    this=exp.Schema(this=tbl(table), expressions=_csv.column_defs(target)),
                    kind="TABLE",
                    replace=True,
                ).sql("duckdb")
            )
            cond, params = self.cursor_filter(target, min_cursor)
            for sniff, cols, paths in _csv.runs(sniffed, per_file):
                select = exp.select(*(ident(c) for c in cols)).from_(
                    _csv.reader(sniff, cols, options, (errs, scans), paths)
                )
                if cond is not None:
                    select = select.where(cond.copy())
                insert = exp.insert(select, tbl(table), columns=[ident(c) for c in cols])
                con.execute(insert.sql("duckdb"), params)
            if _exists(con, errs):
                quoted = {str(s.path): s.path for s in sniffed if s.quoted}
                fixed = _csv.fix_lines(con, errs, scans, quoted)
                if fixed is not None:
                    _records.drop(con, errs)
                    errs = fixed
                _csv.insert_rejects(
                    con,
                    errs=errs,
                    scans=scans,
                    rejects=rejects,
                    file_case=lambda col: self._file_case(col, files),
                    max_line=int(str(options.get("max_line_size", _csv.DEFAULT_MAX_LINE))),
                )
        except (duckdb.BinderException, duckdb.InvalidInputException, ValueError) as e:
            mixed = [self._rel(p) for p in files if _mixed_line_endings(p)]
            hint = (
                f"{', '.join(mixed[:3])} mix(es) line endings (\\r\\n and \\n): convert to "
                "one (e.g. dos2unix)"
                if mixed
                else "check source.columns against the file header and source.options "
                "(delimiter, header, quote)"
            )
            raise self._input_error("cannot read CSV", e, hint) from e
        finally:
            _records.drop(con, errs, scans)

    def _csv_columns(
        self,
        con: duckdb.DuckDBPyConnection,
        sniffed: list[_csv.Sniffed],
        options: Mapping[str, object],
        declared: dict[str, str] | None,
    ) -> list[dict[str, str]]:
        """Each file's columns (canonical name → type to read it as), in file order."""
        if not options.get("header", True):
            if declared:  # no header: declared columns are positional
                return [dict(declared) for _ in sniffed]
            schemas = [s.columns for s in sniffed]
        else:
            schemas = []
            for s in sniffed:
                cols = s.columns
                # a header-only file is sniffed as all-text: its types say nothing
                if (
                    len(sniffed) > 1
                    and set(cols.values()) == {"VARCHAR"}
                    and not _csv.has_rows(con, _csv.reader(s, cols, options, None))
                ):
                    cols = dict.fromkeys(cols, "")
                schemas.append(cols)
        target = _schema.union_columns(con, schemas, declared, text_wins=True)
        out = []
        for s, schema in zip(sniffed, schemas, strict=True):
            try:
                mapping = _schema.file_mapping(schema, target)
            except ValueError as e:
                raise ValueError(f"file '{self._rel(s.path)}': {e}") from None
            out.append({name: target[name] for name in mapping.values()})
        return out

    # Parquet -------------------------------------------------------------------------

    def _stage_parquet(self, b: _Batch) -> None:
        import duckdb

        con, table, rejects, files = b.con, b.table, b.rejects, b.files
        options, declared, min_cursor = b.options, b.declared, b.min_cursor
        opts = [named_arg(k, v) for k, v in options.items() if k != "union_by_name"]

        def reader(paths: list[Path], *extra: exp.Expr) -> exp.Expr:
            array = exp.Array(expressions=[exp.Literal.string(str(p)) for p in paths])
            return exp.func("read_parquet", array, *(o.copy() for o in opts), *extra)

        try:
            # one footer read per file: files may differ in column order, set and types; a
            # file whose footer cannot be read (truncated, not Parquet) is rejected whole
            schemas, readable, unreadable = [], [], []
            for p in files:
                try:
                    schemas.append(table_columns(con, exp.select("*").from_(reader([p]))))
                    readable.append(p)
                except duckdb.Error as e:
                    why = str(e).splitlines()[0].replace(str(p), self._rel(p))
                    unreadable.append((self._rel(p), f"not a readable Parquet file: {why}"))
            _reject_files(con, rejects, unreadable)
            if not readable:
                self._stage_nothing(con, table, declared)
                return
            files = readable
            if not declared and all(s == schemas[0] for s in schemas):
                self._create_from(con, table, exp.select("*").from_(reader(files)), min_cursor)
                return
            target = _schema.union_columns(con, schemas, declared)
            self.check_declared_present(target)
            union, carried = self._parquet_union(files, schemas, target, reader)
            source = _records.temp_name("src")
            _records.create_temp(con, source, union, kind="VIEW")
            try:
                self._parquet_project(
                    con, table, rejects, source, files, target, carried, min_cursor
                )
            finally:
                con.execute(exp.Drop(tables=[tbl(source)], kind="VIEW", exists=True).sql("duckdb"))
        except (duckdb.BinderException, duckdb.InvalidInputException) as e:
            raise self._input_error(
                "cannot read Parquet", e, "check that the files are Parquet files"
            ) from e

    @staticmethod
    def _parquet_union(
        files: list[Path],
        schemas: list[dict[str, str]],
        target: dict[str, str],
        reader: Callable[..., exp.Expr],
    ) -> tuple[exp.Query, dict[str, str]]:
        """Each run of files with one schema read by one scan, columns renamed to their
        canonical names; a column whose type differs between files is carried as VARCHAR
        (cast per row later). Returns the query and each column's carried type."""
        mappings = [_schema.file_mapping(s, target) for s in schemas]
        file_types: dict[str, set[str]] = {}
        for schema, mapping in zip(schemas, mappings, strict=True):
            for col, name in mapping.items():
                file_types.setdefault(name, set()).add(schema[col])
        carried = {n: next(iter(t)) if len(t) == 1 else "VARCHAR" for n, t in file_types.items()}
        groups: list[tuple[list[Path], dict[str, str], dict[str, str]]] = []
        for path, schema, mapping in zip(files, schemas, mappings, strict=True):
            if groups and groups[-1][1] == schema:  # same schema: one scan for the run
                groups[-1][0].append(path)
            else:
                groups.append(([path], schema, mapping))
        selects = []
        for paths, schema, mapping in groups:
            cols = []
            for col, name in mapping.items():
                value: exp.Expr = exp.column(ident(col))
                if carried[name] != schema[col]:
                    value = exp.cast(value, "VARCHAR")
                cols.append(exp.alias_(value, ident(name)))
            extra = (named_arg("filename", "_lg_file"), named_arg("file_row_number", True))
            selects.append(
                exp.select(*cols, "_lg_file", "file_row_number").from_(reader(paths, *extra))
            )
        query: exp.Query = selects[0]
        for s in selects[1:]:
            query = exp.Union(this=query, expression=s, distinct=False, by_name=True)
        return query, carried

    def _parquet_project(
        self,
        con: duckdb.DuckDBPyConnection,
        table: str,
        rejects: str,
        source: str,
        files: list[Path],
        target: dict[str, str],
        carried: dict[str, str],
        min_cursor: object | None,
    ) -> None:
        """Cast each column whose carried type is not its target type per row (TRY_CAST);
        rows where a value does not convert are rejected with file and row number."""
        row = exp.Add(this=exp.column("file_row_number"), expression=exp.Literal.number(1))
        fields = [
            _records.TypedField(
                name=c,
                raw=exp.column(ident(c)),
                typed=exp.TryCast(
                    this=exp.column(ident(c)), to=exp.DataType.build(t, dialect="duckdb")
                ),
                type=t,
            )
            for c, t in target.items()
            if carried[c] != t
        ]
        data_cols = [exp.column(ident(c)) for c in target]
        _records.typed_projection(
            con,
            source=source,
            table=table,
            rejects=rejects,
            fields=fields,
            passthrough=[c for c in target if carried[c] == target[c]],
            file_expr=self._file_case(exp.column("_lg_file"), files),
            line_expr=row,
            prefix_expr=exp.DPipe(
                this=exp.Literal.string("row "),
                expression=exp.cast(row.copy(), "VARCHAR"),
                safe=True,
            ),
            raw_record=exp.cast(
                exp.func("to_json", exp.func("struct_pack", *data_cols)), "VARCHAR"
            ),
            where=lambda cols: self.cursor_filter(cols, min_cursor),
            order=list(target),
        )

    def _file_case(self, column: exp.Expr, files: list[Path]) -> exp.Expr:
        """Map the absolute paths DuckDB reports back to project-relative names."""
        return exp.Case(
            ifs=[
                exp.If(
                    this=exp.EQ(this=column.copy(), expression=exp.Literal.string(str(p))),
                    true=exp.Literal.string(self._rel(p)),
                )
                for p in files
            ],
            default=column.copy(),
        )

    # JSON ----------------------------------------------------------------------------

    def _stage_json(self, b: _Batch, fmt: FileFormat) -> None:
        import duckdb

        con, table, rejects, files = b.con, b.table, b.rejects, b.files
        options, declared, min_cursor = b.options, b.declared, b.min_cursor
        opts: dict[str, object] = {
            "format": "newline_delimited" if fmt == FileFormat.NDJSON else "auto",
            # every record must be an object: a scalar/array element (or an empty key,
            # which DuckDB reads as a MAP) fails here and the slow path rejects it
            "records": True,
            **options,
        }
        paths = exp.Array(expressions=[exp.Literal.string(str(p)) for p in files])
        if declared:
            opts["columns"] = declared
        reader = exp.func("read_json", paths, *(named_arg(k, v) for k, v in opts.items()))
        try:
            # strict: any malformed record, unconvertible value or key outside the
            # inferred schema raises, nothing is dropped (explicit columns would drop keys)
            query = exp.select("*").from_(reader)
            nested = [c for c, t in table_columns(con, query).items() if _is_nested(t)]
            if declared or not nested:
                self._create_from(con, table, query, min_cursor)
                if not _records.has_null_records(con, table, paths, opts):
                    return
                # a top-level ``null`` reads as an all-NULL record: the slow path rejects it
                log.info("dataset %s: a JSON record is null, not an object", self.dataset)
            # DuckDB's nested types are lossy ([false, 0] → ['false', '0']): the
            # record-level path keeps such values as JSON text
            log.info("dataset %s: nested columns %s staged as JSON", self.dataset, nested)
        except (
            duckdb.InvalidInputException,
            duckdb.ConversionException,
            duckdb.BinderException,
        ) as e:
            log.info(
                "dataset %s: strict JSON read failed (%s); re-reading line by line to "
                "separate bad records",
                self.dataset,
                str(e).splitlines()[0],
            )
        inferred = None if declared else _json_types(con, paths, opts)
        _records.stage_json_lines(
            con,
            table=table,
            rejects=rejects,
            files=[(p, self._rel(p)) for p in files],
            ndjson_only=fmt == FileFormat.NDJSON,
            declared=declared,
            hints=inferred or {},
            max_line_size=int(str(options.get("maximum_object_size", 16 * 1024 * 1024))),
            where=lambda cols: self.cursor_filter(cols, min_cursor),
        )
