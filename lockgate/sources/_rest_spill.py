"""The spill of ``type: rest``: pages → NDJSON chunk files → DuckDB, overlapped.

Each page's records are written as NDJSON lines (orjson when the page was read exactly,
else the stdlib encoder) to chunk files of about :data:`CHUNK_BYTES`. While the next pages
are fetched, a background thread stages every closed chunk with one strict ``read_json``
into the staging table (DuckDB releases the GIL: fetching and parsing in Python and
staging in DuckDB run at the same time). Staging of the chunks stops at the first chunk
that does not fit — a record that is not an object, a value that does not parse, a column
typed differently from the first chunk's — and then :meth:`ChunkedSpill.finish` says so:
the caller joins the chunks into one spill and stages it as before (one strict read, or
the record-level path that quarantines the bad records with their page and reason).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import shutil
import threading
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sqlglot import exp

from lockgate.errors import TerminalError
from lockgate.sources._records import drop, tbl
from lockgate.sources.base import table_columns
from lockgate.sql import ident

if TYPE_CHECKING:
    import duckdb

try:  # optional (lockgate[rest]): writes the spill ~8 times faster than the stdlib encoder
    import orjson as _orjson
except ImportError:  # pragma: no cover
    _orjson = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

#: a chunk is closed (and staged in the background) once it holds this many bytes
CHUNK_BYTES = 32 * 1024 * 1024
_NESTED = ("STRUCT", "MAP", "UNION")


T = TypeVar("T")

#: pages fetched ahead while the caller writes the previous ones (0: none)
PREFETCH = int(os.environ.get("LOCKGATE_REST_PREFETCH", "2"))


def prefetched(
    items: Iterator[T], depth: int = PREFETCH, cancelled: Callable[[], bool] | None = None
) -> Generator[T, None, None]:
    """``items``, produced in a thread of its own up to ``depth`` ahead: the next page is
    requested while the caller encodes and writes this one. The producer's exception is
    raised here; stopping early stops the producer (its generator closed in its thread).

    ``cancelled`` (the step's timeout fired, the run was interrupted) is checked while
    waiting: the read stops with :class:`StepInterrupted` without waiting for the page in
    flight (the producer ends once its request does: it is not joined then)."""
    if depth <= 0:
        yield from items
        return
    q: queue.Queue[tuple[bool, Any]] = queue.Queue(depth)
    stop = threading.Event()

    def put(item: tuple[bool, Any]) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for x in items:
                if not put((True, x)):
                    return
            put((False, None))
        except BaseException as e:  # handed to the consumer
            put((False, e))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    worker = threading.Thread(target=produce, name="lockgate-rest-fetch", daemon=True)
    worker.start()
    abandoned = False
    try:
        while True:
            if cancelled is None:
                more, x = q.get()
            else:
                try:
                    more, x = q.get(timeout=0.1)
                except queue.Empty:
                    if cancelled():
                        abandoned = True
                        raise StepInterrupted(
                            "interrupted while waiting for a page; nothing was published"
                        ) from None
                    continue
            if not more:
                if x is not None:
                    raise x
                return
            yield x
    finally:
        stop.set()
        if not abandoned:
            worker.join()


class StepInterrupted(TerminalError):
    """The step's timeout fired (or the run was interrupted) while a page was awaited."""


def encode_exact(records: list[Any]) -> bytes | None:
    """The records as NDJSON with orjson (one C call per record, ~8 times the stdlib encoder);
    None when it is missing or refuses a value (then the stdlib encoder writes the page)."""
    if _orjson is None:
        return None
    try:
        return b"\n".join(map(_orjson.dumps, records))
    except TypeError:  # orjson.JSONEncodeError: a value it cannot write exactly
        return None


def wide_ints(records: list[Any]) -> dict[str, str]:
    """Top-level keys holding an integer beyond 64 bits → the type that keeps it exact
    (``HUGEINT``, else ``VARCHAR``): DuckDB's JSON reader would infer ``DOUBLE`` and round it.
    Only called for pages the stdlib parser read (orjson read no such integer)."""
    out: dict[str, str] = {}
    for r in records:
        if not isinstance(r, dict):
            continue
        for k, v in r.items():
            if type(v) is int and not -(2**63) <= v < 2**64:
                fits = -(2**127) <= v < 2**127
                out[k] = "HUGEINT" if fits and out.get(k) != "VARCHAR" else "VARCHAR"
    return out


def read_query(
    con: duckdb.DuckDBPyConnection,
    spill: Path,
    declared: dict[str, str] | None,
    wide: dict[str, str] | None = None,
) -> exp.Select:
    """The strict ``read_json`` of one NDJSON file (records are objects); nested columns
    (lists, objects) are read as JSON, as the record-level path keeps them, and ``wide``
    columns (:func:`wide_ints`) get their exact type. Raises a DuckDB error when the sample
    does not parse."""
    from lockgate.sources.files import named_arg

    opts: dict[str, object] = {"format": "newline_delimited", "records": True}
    if declared:
        opts["columns"] = declared

    def query() -> exp.Select:
        reader = exp.func(
            "read_json",
            exp.Literal.string(str(spill)),
            *(named_arg(k, v) for k, v in opts.items()),
        )
        return exp.select("*").from_(reader)

    q = query()
    cols = table_columns(con, q)
    nested = [c for c, t in cols.items() if t.endswith("]") or t.startswith(_NESTED)]
    if not declared and (nested or wide):
        typed = {c: "JSON" if c in nested else t for c, t in cols.items()}
        typed.update({c: t for c, t in (wide or {}).items() if c in typed and c not in nested})
        opts["columns"] = typed
        q = query()
    return q


def fast_read(
    con: duckdb.DuckDBPyConnection,
    table: str,
    spill: Path,
    declared: dict[str, str] | None,
    wide: dict[str, str] | None = None,
) -> bool:
    """One strict ``read_json`` of ``spill`` into ``table``; False when a record does not
    fit (then the record-level path separates the bad ones)."""
    import duckdb

    try:
        q = read_query(con, spill, declared, wide)
        con.execute(
            exp.Create(this=tbl(table), kind="TABLE", replace=True, expression=q).sql("duckdb")
        )
    except (duckdb.InvalidInputException, duckdb.ConversionException, duckdb.BinderException):
        return False
    return True


class ChunkedSpill:
    """Writes pages to chunk files and stages closed chunks in a background thread (see the
    module docstring). Use as a context manager; then :meth:`finish`."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        table: str,
        folder: Path,
        declared: dict[str, str] | None,
        chunk_bytes: int | None = None,
    ) -> None:
        self.con, self.table, self.folder, self.declared = con, table, folder, declared
        self.chunk_bytes = (
            CHUNK_BYTES if chunk_bytes is None else chunk_bytes
        )  # read now: tests patch it
        self.files: list[Path] = []
        self.index: list[tuple[int, int, str]] = []  # per page: first line, number, URL
        self.lines = 0
        self.odd = False  # a record that is not an object, or maybe not JSON (NaN)
        self.wide: dict[str, str] = {}  # columns holding integers beyond 64 bits
        self._out: Any = None
        self._size = 0
        self._staged = 0  # chunks staged in the table so far
        self._failed = False
        self._schema: dict[str, str] | None = None
        self._futures: list[Future[None]] = []
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="lockgate-rest-stage")
        self._cur: duckdb.DuckDBPyConnection | None = None

    def __enter__(self) -> ChunkedSpill:
        self._cursor()  # here, in the caller's thread: it uses the caller's connection
        return self

    def __exit__(self, *exc: object) -> None:
        if self._out is not None:
            self._out.close()
        self._pool.shutdown(wait=True, cancel_futures=True)
        if self._cur is not None:
            self._cur.close()

    # ---- writing ----

    def write(self, pages: Any) -> None:
        """Every record of ``pages`` as one NDJSON line, chunk after chunk."""
        slow = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=True).encode
        for page in pages:
            self.index.append((self.lines + 1, page.number, page.url))
            records = page.records
            if not records:
                continue
            # per page, not per record: no Python loop over the records
            if not self.odd and set(map(type, records)) != {dict}:
                self.odd = True  # a record that is not an object (or a dict subclass)
            data = encode_exact(records) if page.exact else None
            if data is None:
                for k, t in wide_ints(records).items():
                    if self.wide.get(k) != "VARCHAR":
                        self.wide[k] = t
                text = "\n".join(map(slow, records))
                if not self.odd and ("NaN" in text or "Infinity" in text):
                    self.odd = True  # maybe not JSON (or just a string): the line reader decides
                # a lone surrogate ("\ud800" in the page) stays invalid UTF-8: quarantined
                data = text.encode("utf-8", "surrogatepass")
            if self._out is None:
                self.files.append(self.folder / f"records.{len(self.files)}.ndjson")
                self._out = self.files[-1].open("wb")
                self._size = 0
            self._out.write(data)
            self._out.write(b"\n")
            self._size += len(data) + 1
            self.lines += len(records)
            if self._size >= self.chunk_bytes:
                self._close_chunk()
        if self._out is not None:
            self._close_chunk()

    def _close_chunk(self) -> None:
        self._out.close()
        self._out = None
        if self.odd or self._failed:
            return  # the record-level path stages the whole spill
        # the wide columns as of now, copied here: the writer adds to them meanwhile
        self._futures.append(self._pool.submit(self._stage, self.files[-1], dict(self.wide)))

    # ---- staging (background thread) ----

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        """A connection for the background thread, in the caller's database and schema
        (the run loop's worker sessions ``USE`` a work database of their own)."""
        if self._cur is None:
            row = self.con.execute("SELECT current_database(), current_schema()").fetchone()
            assert row is not None
            cur = self.con.cursor()
            cur.execute(exp.Use(this=exp.Table(this=ident(row[1]), db=ident(row[0]))).sql("duckdb"))
            self._cur = cur
        return self._cur

    def _stage(self, path: Path, wide: dict[str, str]) -> None:
        import duckdb

        if self._failed:
            return
        cur = self._cursor()
        try:
            if self._staged == 0:
                ok = fast_read(cur, self.table, path, self.declared, wide)
                self._schema = table_columns(cur, tbl(self.table)) if ok else None
            else:
                q = read_query(cur, path, self.declared, wide)
                ok = table_columns(cur, q) == self._schema
                if ok:
                    cur.execute(exp.insert(q, tbl(self.table)).sql("duckdb"))
        except (duckdb.InvalidInputException, duckdb.ConversionException, duckdb.BinderException):
            ok = False
        if ok:
            self._staged += 1
        else:
            self._failed = True

    # ---- the end ----

    def finish(self) -> bool:
        """Wait for the background staging; True when every chunk is in the table (else the
        table is dropped and :meth:`joined` gives the spill as one file)."""
        for f in self._futures:
            f.result()
        staged = not self.odd and not self._failed and self._staged == len(self.files) > 0
        if not staged:
            drop(self.con, self.table)
        log.debug("rest spill: %d chunk(s), staged in the background: %s", len(self.files), staged)
        return staged

    def joined(self) -> Path:
        """The chunks as one NDJSON file (line numbers as in the page index)."""
        out = self.folder / "records.ndjson"
        if len(self.files) == 1:
            self.files[0].rename(out)
            self.files = [out]
            return out
        with out.open("wb") as f:
            for path in self.files:
                with path.open("rb") as part:
                    shutil.copyfileobj(part, f, 4 * 1024 * 1024)
                with contextlib.suppress(OSError):
                    path.unlink()
        if not self.files:
            out.touch()
        self.files = [out]
        return out
