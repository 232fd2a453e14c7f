"""Compute: run a dataset's SQL or Python transform into a DuckDB staging table."""

from __future__ import annotations

import logging
import re
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from lockgate.errors import TransformError

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

    from lockgate.engine.session import Session

log = logging.getLogger(__name__)

ACCEPTED_RETURN_TYPES = (
    "pyarrow.Table, pyarrow.RecordBatchReader, polars.DataFrame/LazyFrame, pandas.DataFrame "
    "or a DuckDB relation"
)


class PythonTransform(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def inputs(self) -> Any: ...  # Mapping[param, dataset]
    @property
    def as_(self) -> str: ...
    @property
    def file(self) -> str | None: ...
    @property
    def line(self) -> int | None: ...
    @property
    def func(self) -> Any: ...


def stage_sql(
    session: Session,
    dataset: str,
    sql_text: str,
    table: str,
    where: str,
    row_filter: Callable[[dict[str, str]], str | None] | None = None,
) -> None:
    """``CREATE TABLE table AS <sql>``: the SQL reads datasets by name (registered views).

    ``row_filter`` receives the query's output columns (name: type) and returns a DuckDB
    condition the staged rows must meet (a partitioned dataset's due intervals): applied as a
    relation filter, which DuckDB pushes down into the query — never spliced into its text."""
    import duckdb

    session.settle()
    try:
        rel = session.con.sql(sql_text)
        if row_filter is not None:
            cond = row_filter({str(n): str(t) for n, t in zip(rel.columns, rel.types, strict=True)})
            if cond is not None:
                rel = rel.filter(cond)
        rel.create(table)
    except duckdb.ParserException as e:
        message, line, col = sql_syntax_error(e)
        pos = f" at line {line}, column {col} of the query" if line else ""
        raise TransformError(
            f"SQL of dataset '{dataset}' ({where}) has a syntax error{pos}: {message}",
            hint="fix the SQL; `lockgate validate` reports syntax errors before running",
        ) from e
    except duckdb.BinderException as e:
        raise TransformError(
            f"SQL of dataset '{dataset}' ({where}) failed: {_one_line(e)}",
            hint="a column or function the query uses does not exist in its inputs; "
            "`lockgate show DATASET` lists an input's columns",
        ) from e
    except duckdb.Error as e:
        raise TransformError(
            f"SQL of dataset '{dataset}' ({where}) failed: {_one_line(e)}",
            hint="fix the SQL; `lockgate validate` checks syntax and dataset references",
        ) from e


_LINE_RE = re.compile(r"^LINE (\d+): ")


def sql_syntax_error(e: BaseException) -> tuple[str, int | None, int | None]:
    """DuckDB's parser message, and the 1-based line/column its caret points at."""
    text = str(e).removeprefix("Parser Error: ")
    lines = text.split("\n")
    message = lines[0].strip()
    for i, ln in enumerate(lines[:-1]):
        m = _LINE_RE.match(ln)
        caret = lines[i + 1]
        if m and caret.strip() == "^":
            return message, int(m.group(1)), caret.index("^") - m.end() + 1
    return message, None, None


def stage_python(
    session: Session,
    dataset: str,
    tf: PythonTransform,
    table: str,
    input_views: dict[str, str],
) -> None:
    """Call the decorated function with its inputs and stage what it returns."""
    where = f"{tf.file}:{tf.line}" if tf.file else tf.name
    session.settle()
    kwargs: dict[str, Any] = {}
    for param, ds in dict(tf.inputs).items():
        rel = session.con.table(input_views.get(str(ds), str(ds)))
        kwargs[param] = _convert_input(rel, tf.as_)
    try:
        result = tf.func(**kwargs)
    except Exception as e:  # the user's code: anything can happen
        raise TransformError(
            f"Python transform '{tf.name}' of dataset '{dataset}' ({where}) raised "
            f"{type(e).__name__}: {e}{_raised_at(e, tf)}",
            hint="fix the function; run with --debug for the full traceback",
        ) from e
    _stage_result(session, dataset, tf.name, where, result, table)


def _convert_input(rel: duckdb.DuckDBPyRelation, as_: str) -> Any:
    if as_ == "arrow":
        return rel.to_arrow_table()
    if as_ == "polars":
        return rel.pl()
    if as_ == "pandas":
        return rel.df()
    return rel


def _stage_result(
    session: Session, dataset: str, fn: str, where: str, result: Any, table: str
) -> None:
    import duckdb

    con = session.con
    session.settle()
    if isinstance(result, duckdb.DuckDBPyRelation):
        try:
            result.create(table)
        except duckdb.Error as e:
            raise TransformError(
                f"Python transform '{fn}' of dataset '{dataset}' ({where}) returned a relation "
                f"that failed to execute: {_one_line(e)}"
            ) from e
        return
    arrow = _to_arrow(result)
    if arrow is None:
        raise TransformError(
            f"Python transform '{fn}' of dataset '{dataset}' ({where}) returned "
            f"{type(result).__module__}.{type(result).__qualname__}; expected "
            f"{ACCEPTED_RETURN_TYPES}",
            hint="return e.g. `pyarrow.table({...})` or the DuckDB relation you built",
        )
    name = f"__lg_py_{table}"
    session.register_arrow(name, arrow)
    try:
        con.table(name).create(table)
    finally:
        con.unregister(name)


def _to_arrow(result: Any) -> pa.Table | pa.RecordBatchReader | None:
    import pyarrow as pa

    if isinstance(result, pa.Table | pa.RecordBatchReader):
        return result
    mod = type(result).__module__.split(".")[0]
    if mod == "polars":
        if hasattr(result, "collect"):  # LazyFrame
            result = result.collect()
        return result.to_arrow()  # type: ignore[no-any-return,unused-ignore]
    if mod == "pandas" and hasattr(result, "to_records"):
        return pa.Table.from_pandas(result, preserve_index=False)
    return None


def _raised_at(e: BaseException, tf: PythonTransform) -> str:
    """`` (at FILE:LINE)``: the innermost frame of the transform's own file."""
    code_file = getattr(getattr(tf.func, "__code__", None), "co_filename", None)
    frames = [f for f in traceback.extract_tb(e.__traceback__) if f.filename == code_file]
    if not frames:
        return ""
    label = tf.file or code_file
    return f" (at {label}:{frames[-1].lineno})"


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())
