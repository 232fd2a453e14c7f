"""The spill of ``type: rest``: pages → chunk files → DuckDB, overlapped with the fetching.

Each page's records are written with one encoder call per page (orjson when the page was read
exactly, else the stdlib encoder) as one line of a JSON array: a chunk file is
``[`` / a page's records / ``,`` … ``]``, one page per line. While the next pages are
fetched, a background thread stages every closed chunk into the staging table (DuckDB
releases the GIL: fetching and parsing in Python and staging in DuckDB run at the same time).

* The first chunk holds at least :data:`SAMPLE_RECORDS` records (DuckDB's type-detection
  sample, passed explicitly): its detected types are those a read of the whole spill would
  detect. Later chunks are read with those types (no detection pass of their own), and are
  closed small (a quarter of :data:`CHUNK_BYTES`) whenever the stager is idle, so little is
  left to stage after the last page.
* Every top-level key of every record is collected (one ``set.update`` per page): a key the
  detection did not see (it first appears beyond the sample, or in a later chunk) must not
  vanish — the chunk is not staged, and the whole-spill read detects over every record.
* Every chunk is staged in one DuckDB transaction, committed by :meth:`ChunkedSpill.finish`:
  full row groups go straight to the database file; a commit per chunk (smaller than a row
  group) went through the write-ahead log and the next checkpoint compressed it again.

Staging of the chunks stops at the first chunk that does not fit — a record that is not an
object, a value that does not parse as the first chunk's type, a key not in its columns —
and then :meth:`ChunkedSpill.finish` says so: the caller takes :meth:`ChunkedSpill.joined`,
the spill as NDJSON (one record a line, as the record-level quarantine numbers them) and
stages it as before (one strict read, or the record-level path that quarantines the bad
records with their page and reason).

While pages are read the cyclic garbage collector is paused (:func:`cyclic_gc_paused`): the
parsed pages are many short-lived containers that cannot form cycles, and every full
collection would walk the whole process's heap (measured: ~1.2 CPU s per 1M records).
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import os
import queue
import threading
import time
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

#: a chunk is closed (and staged in the background) once it holds this many bytes; a
#: quarter of it is enough when the stager is idle
CHUNK_BYTES = 32 * 1024 * 1024
#: DuckDB's type-detection sample (records); the first chunk holds at least this many
SAMPLE_RECORDS = 20_480
#: while pages are read with the garbage collector paused, a full collection this often
#: (seconds) bounds what other threads' cyclic garbage can pile up
GC_EVERY_S = 10.0
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
    """The records as one JSON array with orjson (one C call per page); None when it is
    missing or refuses a value (then the stdlib encoder writes the page)."""
    if _orjson is None:
        return None
    try:
        return _orjson.dumps(records)
    except TypeError:  # orjson.JSONEncodeError: a value it cannot write exactly
        return None


def _slow_encoder() -> Callable[[Any], str]:
    """The stdlib encoder of pages the strict parser could not read (NaN, huge integers, lone
    surrogates): exact, compact, never a raw newline (control characters are escaped)."""
    return json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=True).encode


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


_GC_LOCK = threading.Lock()
_GC_HOLDERS: list[Any] = [0, False]  # how many hold the pause; GC enabled before the first


@contextlib.contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """The cyclic garbage collector off while pages are read (see the module docstring);
    counted, so two REST steps at once restore it once, after the last one. Reference
    counting still frees every page: only cycles wait (see :data:`GC_EVERY_S`)."""
    with _GC_LOCK:
        if _GC_HOLDERS[0] == 0:
            _GC_HOLDERS[1] = gc.isenabled()
            gc.disable()
        _GC_HOLDERS[0] += 1
    try:
        yield
    finally:
        with _GC_LOCK:
            _GC_HOLDERS[0] -= 1
            if _GC_HOLDERS[0] == 0 and _GC_HOLDERS[1]:
                gc.enable()


def _reader(spill: Path, opts: dict[str, object]) -> exp.Select:
    from lockgate.sources.files import named_arg

    fn = exp.func(
        "read_json", exp.Literal.string(str(spill)), *(named_arg(k, v) for k, v in opts.items())
    )
    return exp.select("*").from_(fn)


def read_query(
    con: duckdb.DuckDBPyConnection,
    spill: Path,
    declared: dict[str, str] | None,
    wide: dict[str, str] | None = None,
    *,
    keys: set[str] | None = None,
    array: bool = False,
    sample: int | None = None,
    whole_if_unseen: bool = True,
) -> exp.Select | None:
    """The strict ``read_json`` of one spill file (NDJSON, or a chunk's JSON array), records
    objects; nested columns (lists, objects) are read as JSON, as the record-level path keeps
    them, columns null in the whole sample as text, and ``wide`` columns (:func:`wide_ints`)
    get their exact type. Raises a DuckDB error when the sample does not parse.

    ``keys``: every top-level key of the file's records. A key the detection sample did not
    see would be dropped silently: the types are then detected over every record
    (``whole_if_unseen``), or None is returned."""
    opts: dict[str, object] = {
        "format": "array" if array else "newline_delimited",
        "records": True,
    }
    if declared:
        opts["columns"] = declared
    elif sample is not None:
        opts["sample_size"] = sample
    q = _reader(spill, opts)
    cols = table_columns(con, q)
    if not declared and keys is not None and not keys <= cols.keys():
        if not whole_if_unseen:
            return None
        opts["sample_size"] = -1
        q = _reader(spill, opts)
        cols = table_columns(con, q)
    nested = [c for c, t in cols.items() if t.endswith("]") or t.startswith(_NESTED)]
    nulls = [c for c, t in cols.items() if t.strip('"') == "NULL"]
    if not declared and (nested or wide or nulls):
        typed = {c: "JSON" if c in nested else t for c, t in cols.items()}
        # null in every sampled record: DuckDB's NULL type would read every later value as
        # NULL; text keeps them (as the record-level path types such a column)
        typed.update({c: "VARCHAR" for c in nulls})
        typed.update({c: t for c, t in (wide or {}).items() if c in typed and c not in nested})
        opts["columns"] = typed
        q = _reader(spill, opts)
    return q


def fast_read(
    con: duckdb.DuckDBPyConnection,
    table: str,
    spill: Path,
    declared: dict[str, str] | None,
    wide: dict[str, str] | None = None,
    keys: set[str] | None = None,
    sample: int | None = None,
) -> bool:
    """One strict ``read_json`` of the NDJSON ``spill`` into ``table``; False when a record
    does not fit (then the record-level path separates the bad ones)."""
    import duckdb

    try:
        q = read_query(con, spill, declared, wide, keys=keys, sample=sample)
        assert q is not None
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
        sample: int | None = None,
    ) -> None:
        self.con, self.table, self.folder, self.declared = con, table, folder, declared
        # read now: tests patch them
        self.chunk_bytes = CHUNK_BYTES if chunk_bytes is None else chunk_bytes
        self.sample = SAMPLE_RECORDS if sample is None else sample
        self.files: list[Path] = []
        self._exact: list[list[bool]] = []  # per chunk file, per page line: orjson wrote it
        self.index: list[tuple[int, int, str]] = []  # per page: first line, number, URL
        self.lines = 0
        self.odd = False  # a record that is not an object, or maybe not JSON (NaN)
        self.wide: dict[str, str] = {}  # columns holding integers beyond 64 bits
        self.keys: set[str] = set()  # every top-level key of every record
        self._out: Any = None
        self._size = 0
        self._chunk_records = 0
        self._chunk_keys: set[str] = set()
        self._chunk_wide: dict[str, str] = {}
        self._staged = 0  # chunks staged in the table so far
        self._failed = False
        self._schema: dict[str, str] | None = None
        self._futures: list[Future[None]] = []
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="lockgate-rest-stage")
        self._cur: duckdb.DuckDBPyConnection | None = None
        self._open = False  # the staging transaction (see the module docstring)

    def __enter__(self) -> ChunkedSpill:
        self._cursor()  # here, in the caller's thread: it uses the caller's connection
        return self

    def __exit__(self, *exc: object) -> None:
        if self._out is not None:
            self._out.close()
        self._pool.shutdown(wait=True, cancel_futures=True)
        if self._cur is not None:
            if self._open:  # finish() was not reached: nothing staged stays
                with contextlib.suppress(Exception):
                    self._cur.execute("ROLLBACK")
            self._cur.close()

    # ---- writing ----

    def write(self, pages: Any) -> None:
        """Every record of ``pages``, one page a line, chunk after chunk."""
        slow = _slow_encoder()
        collect_at = time.monotonic() + GC_EVERY_S
        with cyclic_gc_paused():
            for page in pages:
                self.index.append((self.lines + 1, page.number, page.url))
                records = page.records
                if not records:
                    continue
                # per page, not per record: no Python loop over the records
                if not self.odd and set(map(type, records)) != {dict}:
                    self.odd = True  # a record that is not an object (or a dict subclass)
                data = encode_exact(records) if page.exact else None
                exact = data is not None
                if data is None:
                    for k, t in wide_ints(records).items():
                        if self.wide.get(k) != "VARCHAR":
                            self.wide[k] = t
                        if self._chunk_wide.get(k) != "VARCHAR":
                            self._chunk_wide[k] = t
                    text = slow(records)
                    if not self.odd and ("NaN" in text or "Infinity" in text):
                        self.odd = True  # maybe not JSON (or a string): the line reader decides
                    # a lone surrogate ("\ud800" in the page) stays invalid UTF-8: quarantined
                    data = text.encode("utf-8", "surrogatepass")
                if not self.odd:
                    self._chunk_keys.update(*records)
                self._append(data, exact)
                self.lines += len(records)
                self._chunk_records += len(records)
                if self._closes():
                    self._close_chunk()
                if time.monotonic() >= collect_at:
                    gc.collect()
                    collect_at = time.monotonic() + GC_EVERY_S
            if self._out is not None:
                self._close_chunk()

    def _append(self, data: bytes, exact: bool) -> None:
        """``data`` (one page's records as a JSON array) as the next line of the chunk."""
        if self._out is None:
            self.files.append(self.folder / f"records.{len(self.files)}.json")
            self._exact.append([])
            self._out = self.files[-1].open("wb")
            self._out.write(b"[\n")
            self._size = 2
        else:
            self._out.write(b",\n")
            self._size += 2
        inner = memoryview(data)[1:-1]  # without the page's brackets
        self._out.write(inner)
        self._size += len(inner)
        self._exact[-1].append(exact)

    def _closes(self) -> bool:
        """Close the chunk now? The first once it holds the detection sample; later ones at
        :attr:`chunk_bytes`, or a quarter of it when the stager waits for work. Once the
        chunks cannot be staged, the rest goes into one file."""
        if self.odd or self._failed:
            return False
        if not self._futures:
            return self._chunk_records >= self.sample
        if self._size >= self.chunk_bytes:
            return True
        return self._size >= self.chunk_bytes // 4 and self._futures[-1].done()

    def _close_chunk(self) -> None:
        self._out.write(b"\n]\n")
        self._out.close()
        self._out = None
        keys, wide = self._chunk_keys, self._chunk_wide
        self.keys |= keys
        self._chunk_keys, self._chunk_wide, self._chunk_records = set(), {}, 0
        if self.odd or self._failed:
            return  # the record-level path stages the whole spill
        self._futures.append(self._pool.submit(self._stage, self.files[-1], keys, wide))

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

    def _stage(self, path: Path, keys: set[str], wide: dict[str, str]) -> None:
        import duckdb

        if self._failed:
            return
        cur = self._cursor()
        try:
            if self._schema is None:
                ok = self._stage_first(cur, path, keys, wide)
            else:
                ok = self._stage_next(cur, path, keys, wide)
        except (duckdb.InvalidInputException, duckdb.ConversionException, duckdb.BinderException):
            ok = False
        if ok:
            self._staged += 1
        else:
            self._failed = True

    def _stage_first(
        self, cur: duckdb.DuckDBPyConnection, path: Path, keys: set[str], wide: dict[str, str]
    ) -> bool:
        """The first chunk: detected types (its sample is the whole spill's)."""
        q = read_query(
            cur,
            path,
            self.declared,
            wide,
            keys=keys,
            array=True,
            sample=self.sample,
            whole_if_unseen=False,
        )
        if q is None:
            return False  # a key beyond the sample: the whole-spill read detects over all
        cur.execute("BEGIN TRANSACTION")
        self._open = True
        cur.execute(
            exp.Create(this=tbl(self.table), kind="TABLE", replace=True, expression=q).sql("duckdb")
        )
        self._schema = table_columns(cur, tbl(self.table))
        return True

    def _stage_next(
        self, cur: duckdb.DuckDBPyConnection, path: Path, keys: set[str], wide: dict[str, str]
    ) -> bool:
        """A later chunk, read with the first chunk's types: a value that does not parse
        as its column's type fails the read; a key it has not got, or a huge integer in a
        narrower column, fails here."""
        schema = self._schema
        assert schema is not None
        if not self.declared and not keys <= schema.keys():
            return False
        if any(schema.get(k, t) != t for k, t in wide.items()):
            return False
        opts: dict[str, object] = {"format": "array", "records": True, "columns": schema}
        cur.execute(exp.insert(_reader(path, opts), tbl(self.table)).sql("duckdb"))
        return True

    # ---- the end ----

    def finish(self) -> bool:
        """Wait for the background staging; True when every chunk is in the table (else the
        table is dropped and :meth:`joined` gives the spill as one file)."""
        for f in self._futures:
            f.result()
        staged = not self.odd and not self._failed and self._staged == len(self.files) > 0
        if self._open:
            self._open = False
            self._cursor().execute("COMMIT" if staged else "ROLLBACK")
        if not staged:
            drop(self.con, self.table)
        log.debug("rest spill: %d chunk(s), staged in the background: %s", len(self.files), staged)
        return staged

    def joined(self) -> Path:
        """The spill as one NDJSON file, one record a line (line numbers as in the page
        index): each page line re-encoded record by record as it was read."""
        out = self.folder / "records.ndjson"
        slow = _slow_encoder()
        with out.open("wb") as f:
            for path, exact in zip(self.files, self._exact, strict=True):
                with path.open("rb") as part:
                    part.readline()  # "[\n"
                    for was_exact in exact:
                        line = part.readline().rstrip(b"\n")
                        inner = line[:-1] if line.endswith(b",") else line
                        f.write(_ndjson(inner, was_exact, slow))
                with contextlib.suppress(OSError):
                    path.unlink()
        self.files, self._exact = [out], [[]]
        return out


def _ndjson(inner: bytes, exact: bool, slow: Callable[[Any], str]) -> bytes:
    """One page line (its records as the inside of a JSON array) as NDJSON lines, each
    record written by the encoder that wrote the page."""
    if exact:
        assert _orjson is not None
        records = _orjson.loads(b"[" + inner + b"]")
        return b"".join(_orjson.dumps(r) + b"\n" for r in records)
    records = json.loads("[" + inner.decode("utf-8", "surrogatepass") + "]")
    return "".join(slow(r) + "\n" for r in records).encode("utf-8", "surrogatepass")
