"""One DuckDB session per run: a file-backed work database so staging spills to disk.

Inputs (published datasets) are registered as views over Delta tables read through
``deltalake`` → pyarrow datasets at *pinned* versions; DuckDB scans them streaming, with
projection and filter pushdown. Nothing is materialised as Python objects.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa
from sqlglot import exp

if TYPE_CHECKING:  # pyarrow.dataset imports pandas: ~0.2 s at start-up, needed rarely
    import pyarrow.dataset as pads

log = logging.getLogger(__name__)

#: the engine's connection, as code outside the engine package names its type
Connection = duckdb.DuckDBPyConnection


def ident(name: str) -> exp.Identifier:
    return exp.to_identifier(name, quoted=True)


def table_ref(name: str) -> exp.Table:
    return exp.Table(this=ident(name))


class Session:
    """A DuckDB connection whose database file lives in ``work_dir`` and is removed on close."""

    def __init__(
        self,
        work_dir: Path,
        run_id: str,
        *,
        memory_limit: str | None = None,
        threads: int | None = None,
    ) -> None:
        self.work_dir = work_dir
        work_dir.mkdir(parents=True, exist_ok=True)
        self.db_path = work_dir / f"{run_id}.duckdb"
        self.tmp_dir = work_dir / f"{run_id}.tmp"
        self.con = duckdb.connect(str(self.db_path))
        self.con.execute(f"SET temp_directory = '{_sql_str(str(self.tmp_dir))}'")
        self.con.execute("SET preserve_insertion_order = false")
        if memory_limit:
            self.con.execute(f"SET memory_limit = '{_sql_str(memory_limit)}'")
        if threads:
            self.con.execute(f"SET threads = {int(threads)}")
        self._registered: dict[str, Any] = {}

    # -- inputs -----------------------------------------------------------------------------
    def register_arrow(self, name: str, data: pads.Dataset | Any) -> None:
        """Expose an Arrow dataset/table under ``name`` (replacing an earlier one)."""
        self.unregister(name)
        self.con.register(name, data)
        self._registered[name] = data

    def unregister(self, name: str) -> None:
        """Remove what :meth:`register_arrow` exposed as ``name`` (nothing if it is not there)."""
        self.settle()
        with contextlib.suppress(duckdb.Error):
            self.con.unregister(name)
        self._registered.pop(name, None)

    def register_filtered(self, name: str, source: str, where: exp.Expression | None) -> None:
        """Create view ``name`` as ``SELECT * FROM source [WHERE where]``."""
        q = exp.select("*").from_(table_ref(source))
        if where is not None:
            q = q.where(where)
        self.execute(exp.Create(this=table_ref(name), kind="VIEW", expression=q, replace=True))

    # -- execution --------------------------------------------------------------------------
    def execute(self, e: exp.Expression | str) -> duckdb.DuckDBPyConnection:
        sql = e if isinstance(e, str) else e.sql(dialect="duckdb")
        log.debug("sql: %s", sql)
        self.settle()
        return self.con.execute(sql)

    def reader(self, e: exp.Expression, batch_rows: int = 122_880) -> pa.RecordBatchReader:
        """Stream a query's result as Arrow record batches (never the whole result at once)."""
        sql = e.sql(dialect="duckdb")
        log.debug("sql (stream): %s", sql)
        self.settle()
        return self.con.sql(sql).to_arrow_reader(batch_rows)

    def settle(self) -> None:
        """Finish any half-read ``execute()`` result: DuckDB refuses relation-API work on a
        connection while one is pending."""
        self.con.complete()

    def columns(self, table: str) -> dict[str, str]:
        """Column name → DuckDB type of a table or view."""
        self.settle()
        rows = self.con.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = ? ORDER BY ordinal_position",
            [table],
        ).fetchall()
        if rows:
            return {str(r[0]): str(r[1]) for r in rows}
        desc = self.execute(exp.select("*").from_(table_ref(table)).limit(0)).description or []
        return {str(d[0]): str(d[1]) for d in desc}

    def count(self, table: str) -> int:
        rows = self.execute(
            exp.select(exp.Count(this=exp.Star())).from_(table_ref(table))
        ).fetchall()
        return int(rows[0][0]) if rows else 0

    def drop(self, *tables: str) -> None:
        for t in tables:
            self.execute(exp.Drop(tables=[table_ref(t)], kind="TABLE", exists=True))

    # -- progress ---------------------------------------------------------------------------
    def enable_progress(self) -> None:
        """Let :meth:`progress` report on running queries (DuckDB tracks it only when asked)."""
        self.con.execute("SET enable_progress_bar = true")
        self.con.execute("SET enable_progress_bar_print = false")

    def progress(self) -> float | None:
        """Percent done of the query running now (safe to call from another thread)."""
        try:
            pct = float(self.con.query_progress())
        except duckdb.Error:
            return None
        return pct if pct >= 0 else None

    # -- lifecycle --------------------------------------------------------------------------
    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.con.close()
        for p in (self.db_path, Path(str(self.db_path) + ".wal")):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
        shutil.rmtree(self.tmp_dir, ignore_errors=True)

    def __enter__(self) -> Session:
        return self

    def __exit__(
        self,
        et: type[BaseException] | None,
        ev: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def clean_stale_work(work_dir: Path, keep: str | None = None) -> None:
    """Remove work databases left by killed runs (call while holding the project lock)."""
    if not work_dir.is_dir():
        return
    for p in work_dir.iterdir():
        if keep and p.name.startswith(keep):
            continue
        if p.suffix in (".duckdb", ".wal", ".tmp") or p.name.endswith(".duckdb.wal"):
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    os.unlink(p)


def _sql_str(s: str) -> str:
    return s.replace("'", "''")
