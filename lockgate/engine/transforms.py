"""Compute: run a dataset's SQL or Python transform into a DuckDB staging table."""

from __future__ import annotations

import logging
from typing import Any, Protocol

import duckdb
import pyarrow as pa

from lockgate.engine.session import Session
from lockgate.errors import TransformError

log = logging.getLogger(__name__)

ACCEPTED_RETURN_TYPES = (
    "pyarrow.Table, pyarrow.RecordBatchReader, polars.DataFrame/LazyFrame, pandas.DataFrame "
    "or a DuckDB relation"
)


class PythonTransform(Protocol):
    name: str
    inputs: Any  # Mapping[param, dataset]
    as_: str
    file: str | None
    line: int | None

    @property
    def func(self) -> Any: ...


def stage_sql(session: Session, dataset: str, sql_text: str, table: str, where: str) -> None:
    """``CREATE TABLE table AS <sql>``: the SQL reads datasets by name (registered views)."""
    session.settle()
    try:
        session.con.sql(sql_text).create(table)
    except duckdb.Error as e:
        raise TransformError(
            f"SQL of dataset '{dataset}' ({where}) failed: {_one_line(e)}",
            hint="fix the SQL; `lockgate validate` checks syntax and dataset references",
        ) from e


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
        rel = session.con.table(input_views.get(ds, ds))
        kwargs[param] = _convert_input(rel, tf.as_)
    try:
        result = tf.func(**kwargs)
    except Exception as e:  # the user's code: anything can happen
        raise TransformError(
            f"Python transform '{tf.name}' of dataset '{dataset}' ({where}) raised "
            f"{type(e).__name__}: {e}",
            hint="run with --debug for the traceback",
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
    if isinstance(result, pa.Table | pa.RecordBatchReader):
        return result
    mod = type(result).__module__.split(".")[0]
    if mod == "polars":
        if hasattr(result, "collect"):  # LazyFrame
            result = result.collect()
        return result.to_arrow()  # type: ignore[no-any-return]
    if mod == "pandas" and hasattr(result, "to_records"):
        return pa.Table.from_pandas(result, preserve_index=False)
    return None


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())
