"""Read a check/profile *target* into DuckDB: a file or glob (CSV/TSV, Parquet, JSON/NDJSON,
by extension, ``.gz``/``.zst`` allowed), a Delta table folder, or a PostgreSQL table by URL
(``postgresql://user@host:port/db?table=schema.name``).

One reader for ``lockgate check``, ``lockgate profile`` and ``lockgate suggest``.
"""

from __future__ import annotations

import glob as _glob
import logging
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
from sqlglot import exp

from lockgate.errors import InputError
from lockgate.redact import redact, remember
from lockgate.sources.files import FileFormat, format_of
from lockgate.sources.postgres import load_table, split_table_url
from lockgate.sql import table_ref

log = logging.getLogger(__name__)

_READERS = {
    FileFormat.PARQUET: "read_parquet",
    FileFormat.CSV: "read_csv",
    FileFormat.JSON: "read_json",
    FileFormat.NDJSON: "read_json",
}


def is_delta_table(path: Path) -> bool:
    return path.is_dir() and (path / "_delta_log").is_dir()


def reader_for(file: str) -> str:
    """The DuckDB table function for a file, from its extension."""
    fmt = format_of(file)
    if fmt is None:
        suffixes = [s.lower() for s in Path(file).suffixes if s not in (".gz", ".zst", ".gzip")]
        raise InputError(
            f"cannot tell the format of {file} from its extension "
            f"{suffixes[-1] if suffixes else '(none)'}",
            hint="use a .parquet, .csv, .tsv, .json/.ndjson file or glob, a Delta folder or a "
            "postgresql://…?table=schema.name URL",
        )
    return _READERS[fmt]


@dataclass(frozen=True)
class RejectedRecord:
    """One input record that could not be read (so it is in no count of the checks)."""

    file: str | None
    line: int | None
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "reason": self.reason}


@dataclass(frozen=True)
class TargetRead:
    """What reading a target gave: ``rows`` readable as the relation, and the records that
    could not be read (``rejected``: a value that does not convert to its column's type, a
    ragged or malformed line, invalid bytes, an empty file), with a sample of them.
    ``records = rows + rejected``; ``label`` is the target with any password hidden."""

    label: str
    rows: int | None = None
    rejected: int = 0
    sample: tuple[RejectedRecord, ...] = ()

    @property
    def records(self) -> int | None:
        return None if self.rows is None else self.rows + self.rejected

    def to_dict(self) -> dict[str, Any]:
        return {"count": self.rejected, "sample": [r.to_dict() for r in self.sample]}


def target_label(target: str) -> str:
    """``target`` as it may be shown: any password hidden."""
    return redact(target)


def is_postgres(target: str) -> bool:
    return target.startswith(("postgresql://", "postgresql+", "postgres://"))


def register_target(
    con: duckdb.DuckDBPyConnection, name: str, target: str, tmp: str | None = None
) -> TargetRead:
    """Expose ``target`` as relation ``name`` on ``con``.

    CSV and JSON/NDJSON files are read record by record into a table by the same reader
    as a project's file sources (:class:`lockgate.sources.files.FileSource`): a record that
    does not read is rejected with its file, line and reason, never dropped silently, and
    every column is converted once, so the counts do not depend on which columns a check
    reads. Parquet files and Delta tables are read in place (a view); a PostgreSQL table
    is copied into a table. ``tmp`` (a folder) is where DuckDB may spill.
    """
    if is_postgres(target):
        remember(target)
        conninfo, schema, table = split_table_url(target)
        with tempfile.TemporaryDirectory(prefix="lockgate-pg-", dir=tmp) as d:
            rejected, sample = load_table(con, name, conninfo, schema, table, d)
        label = target_label(target)
        count = exp.select(exp.func("count", exp.Star())).from_(table_ref(name))
        row = con.execute(count.sql("duckdb")).fetchone()
        return TargetRead(
            label=label,
            rows=int(row[0]) if row else None,
            rejected=rejected,
            sample=tuple(RejectedRecord(label, line, reason) for line, reason in sample),
        )
    path = Path(target).expanduser()
    if is_delta_table(path):
        _register_delta(con, name, path)
        return TargetRead(label=target_label(target))
    if path.is_dir():
        raise InputError(
            f"{target!r} is a folder but not a Delta table (no _delta_log/)",
            hint="pass a file, a glob such as 'data/*.parquet', or a Delta table folder",
        )
    pattern = str(path)
    files = sorted(_glob.glob(pattern)) if _glob.has_magic(pattern) else [pattern]
    files = [f for f in files if Path(f).is_file()]
    if not files:
        raise InputError(f"no file matches {target!r}", hint="check the path or glob")
    readers = {reader_for(f) for f in files}
    if len(readers) != 1:
        raise InputError(f"{target!r} matches files of different formats: {sorted(readers)}")
    reader = readers.pop()
    if reader != "read_parquet":
        if tmp is not None:
            con.execute("SET temp_directory = ?", [tmp])
        return _stage_records(con, name, target)
    fn = exp.Anonymous(
        this=reader,
        expressions=[exp.Array(expressions=[exp.Literal.string(f) for f in files])],
    )
    view = exp.Create(
        this=table_ref(name),
        kind="VIEW",
        replace=True,
        expression=exp.select(exp.Star()).from_(exp.Table(this=fn)),
    )
    try:
        con.execute(view.sql("duckdb"))
        con.execute(exp.Describe(this=table_ref(name)).sql("duckdb")).fetchall()
    except duckdb.Error as e:
        raise InputError(f"cannot read {target!r}: {str(e).splitlines()[0]}") from None
    return TargetRead(label=target_label(target))


#: rejected records listed per target (the count is always complete)
REJECT_SAMPLE = 5
_REASON_CHARS = 300


def _stage_records(con: duckdb.DuckDBPyConnection, name: str, target: str) -> TargetRead:
    """CSV / JSON / NDJSON file or glob → table ``name`` (+ ``name__rejects``)."""
    from lockgate.sources import REJECTS_SUFFIX, SourceRequest
    from lockgate.sources.files import FileSource, FileSourceSpec

    root, rel, shown = _split_pattern(target)
    request = SourceRequest(dataset="target", config=FileSourceSpec(path=rel), project_root=root)
    try:
        staged = FileSource(request).stage_files(con, name)
    except InputError as e:
        raise InputError(e.message.replace("dataset 'target': ", ""), hint=e.hint) from None
    except duckdb.Error as e:
        raise InputError(f"cannot read {target!r}: {str(e).splitlines()[0]}") from None
    sample: list[RejectedRecord] = []
    if staged.rejected:
        rejects = exp.Table(this=exp.to_identifier(name + REJECTS_SUFFIX, quoted=True))
        q = (
            exp.select("_lg_source_file", "_lg_line", "_lg_reason")
            .from_(rejects)
            .order_by("_lg_source_file", "_lg_line")
            .limit(REJECT_SAMPLE)
        )
        for f, line, reason in con.execute(q.sql("duckdb")).fetchall():
            text = re.sub(r"^(line|record) \d+: ", "", str(reason or ""))  # line is its own field
            if len(text) > _REASON_CHARS:  # a reason may quote a megabyte-long value
                text = text[: _REASON_CHARS - 1] + f"… ({len(text):,} characters)"
            file = None if f is None else (os.path.join(shown, f) if shown else str(f))
            sample.append(RejectedRecord(file, None if line is None else int(line), text))
        log.info(
            "%s: %d record(s) could not be read and are not counted as rows: %s%s",
            target_label(target),
            staged.rejected,
            "; ".join(f"{r.file}:{r.line}: {r.reason}" for r in sample[:3]),
            " …" if staged.rejected > 3 else "",
        )
    if not staged.rows and list(staged.columns) == ["column0"] and sample:
        # nothing readable at all (e.g. only empty files): no columns to check or profile
        first = sample[0]
        raise InputError(
            f"{target_label(target)!r} has no readable record ({staged.rejected:,} rejected; "
            f"{first.file}: {first.reason})",
            hint="check the file(s): empty, or not in the format their extension says",
        )
    return TargetRead(
        label=target_label(target), rows=staged.rows, rejected=staged.rejected, sample=tuple(sample)
    )


def _split_pattern(target: str) -> tuple[Path, str, str]:
    """(folder to resolve in, pattern relative to it, folder as the user wrote it): the
    folder is the longest leading part of ``target`` without glob characters."""
    parts = Path(target).parts
    i = next((k for k, p in enumerate(parts) if _glob.has_magic(p)), len(parts) - 1)
    shown = str(Path(*parts[:i])) if i else ""
    root = Path(shown or ".").expanduser().resolve()
    return root, str(Path(*parts[i:])), shown


def _register_delta(con: duckdb.DuckDBPyConnection, name: str, path: Path) -> None:
    """DuckDB's own Parquet reader over the active files when the table is plain (lower
    memory, parallel); a pyarrow dataset otherwise."""
    from deltalake import DeltaTable

    from lockgate.storage.scan import native_scan

    try:
        scan = native_scan(path, None)
        if scan is not None:
            con.execute(
                exp.Create(this=table_ref(name), kind="VIEW", replace=True, expression=scan).sql(
                    "duckdb"
                )
            )
            return
        con.register(name, DeltaTable(str(path)).to_pyarrow_dataset())
    except duckdb.Error as e:
        raise InputError(f"cannot read Delta table {path}: {str(e).splitlines()[0]}") from None
    except Exception as e:  # deltalake raises several unrelated types
        raise InputError(f"cannot read Delta table {path}: {e}") from e
