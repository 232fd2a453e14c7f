"""DuckDB-native publish: DuckDB writes the Parquet files, delta-rs commits them.

The engine's Parquet writer (:meth:`lockgate.engine.base.Engine.write_parquet`; DuckDB's runs
on all cores straight from the query plan, no Arrow hand-over to delta-rs) does the bulk of a
publish's time. The files are written into a hidden
folder inside the table (``.lockgate_tmp-<uuid>``), moved next to the table's other data
files, and then added to the table in ONE Delta commit (``create_table_with_add_actions`` for
a new table, ``DeltaTable.create_write_transaction`` otherwise) carrying the same commit
properties (custom metadata + application transaction) as a delta-rs write. Until that commit
the files are not part of the table: a process killed before it leaves only unreferenced
files, which readers ignore and ``VACUUM`` removes — the same guarantee as a delta-rs write.

Only plain ``append``/``overwrite`` into unpartitioned tables whose columns the engine writes
in the type Delta expects take this path (``Engine.writes_arrow_types``); everything else (merge,
partitions, schema evolution, unusual types) goes through :meth:`DeltaStore.publish`.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deltalake import CommitProperties, DeltaTable, Schema
from deltalake.transaction import AddAction, create_table_with_add_actions
from sqlglot import exp

from lockgate.engine.base import Engine

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.parquet as pq

log = logging.getLogger(__name__)

#: Parquet codec of engine-written files (the same default as delta-rs: any reader has it)
COMPRESSION = "snappy"
TMP_PREFIX = ".lockgate_tmp-"


@dataclass(frozen=True)
class WrittenFiles:
    """Parquet files written into a table folder, not yet committed."""

    actions: list[AddAction]
    rows: int


def storable_schema(schema: pa.Schema) -> pa.Schema:
    """Arrow types Delta stores (string_view → string, ns → us timestamps, tz → UTC)."""
    import pyarrow as pa

    fields = []
    for f in schema:
        t = f.type
        if pa.types.is_string_view(t) or pa.types.is_large_string(t):
            t = pa.string()
        elif pa.types.is_binary_view(t) or pa.types.is_large_binary(t):
            t = pa.binary()
        elif pa.types.is_timestamp(t):
            t = pa.timestamp("us", tz="UTC" if t.tz else None)
        fields.append(pa.field(f.name, t, nullable=True))
    return pa.schema(fields)


def write_files(engine: Engine, query: exp.Query, table_path: Path) -> WrittenFiles:
    """Run ``query`` into Parquet files in ``table_path`` (created if missing); not committed.

    Files are written to a hidden temporary folder, then renamed into the table folder; on
    any error everything written is removed again."""
    import pyarrow.parquet as pq

    table_path.mkdir(parents=True, exist_ok=True)
    tmp = table_path / f"{TMP_PREFIX}{uuid.uuid4().hex}"
    moved: list[Path] = []
    try:
        written = engine.write_parquet(query, tmp, COMPRESSION)
        actions: list[AddAction] = []
        rows = 0
        batch = uuid.uuid4()
        for k, src in enumerate(written):
            meta = pq.read_metadata(src)
            if meta.num_rows == 0:
                continue
            name = f"part-{k:05d}-{batch}-c000.{COMPRESSION}.parquet"
            dst = table_path / name
            os.replace(src, dst)
            moved.append(dst)
            st = dst.stat()
            actions.append(
                AddAction(
                    path=name,
                    size=st.st_size,
                    partition_values={},
                    modification_time=int(st.st_mtime * 1000),
                    data_change=True,
                    stats=json.dumps(_stats(meta)),
                )
            )
            rows += meta.num_rows
        return WrittenFiles(actions, rows)
    except BaseException:
        for f in moved:
            f.unlink(missing_ok=True)
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def discard(table_path: Path, files: WrittenFiles) -> None:
    """Remove written-but-uncommitted files (after a failed commit)."""
    for a in files.actions:
        (table_path / a.path).unlink(missing_ok=True)


def commit_files(
    table: DeltaTable | None,
    table_path: Path,
    files: WrittenFiles,
    schema: pa.Schema,
    *,
    overwrite: bool,
    props: CommitProperties,
) -> None:
    """ONE Delta commit adding ``files`` (replacing every current file when ``overwrite``)."""
    if table is None:
        create_table_with_add_actions(
            str(table_path),
            Schema.from_arrow(schema),
            files.actions,
            mode="error",
            commit_properties=props,
        )
        return
    table.create_write_transaction(
        list(files.actions),
        "overwrite" if overwrite else "append",
        schema=schema,
        commit_properties=props,
    )


def _stats(meta: pq.FileMetaData) -> dict[str, Any]:
    """Delta file statistics from the Parquet footer: ``numRecords``, ``nullCount`` and
    ``minValues``/``maxValues`` of integer columns (exact in Parquet; other types' footer
    statistics can be truncated or NaN-blind).

    Bounds are all or nothing: delta-rs reads a column missing from ``minValues`` as
    all-NULL (its pyarrow dataset then drops every row of the file under a filter on that
    column), so when any column with values has no exact bounds, none are written."""
    import pyarrow as pa

    nulls: dict[str, int] = {}
    mins: dict[str, int] = {}
    maxs: dict[str, int] = {}
    schema = meta.schema.to_arrow_schema()
    top = {f.name for f in schema}
    ints = {f.name for f in schema if pa.types.is_integer(f.type)}
    complete: set[str] = set(top)
    valued: set[str] = set()  # columns with a non-NULL value somewhere
    for g in range(meta.num_row_groups):
        rg = meta.row_group(g)
        for c in range(rg.num_columns):
            cc = rg.column(c)
            name = cc.path_in_schema
            if name not in top:
                continue
            st = cc.statistics
            if st is None or not st.has_null_count:
                complete.discard(name)
                continue
            nulls[name] = nulls.get(name, 0) + int(st.null_count)
            if name in ints and st.has_min_max:
                lo, hi = int(st.min), int(st.max)
                mins[name] = min(mins.get(name, lo), lo)
                maxs[name] = max(maxs.get(name, hi), hi)
            elif name in ints and st.num_values > 0:
                ints.discard(name)
            if st.num_values > 0:
                valued.add(name)
    out: dict[str, Any] = {"numRecords": meta.num_rows}
    out["nullCount"] = {k: v for k, v in nulls.items() if k in complete}
    keep = ints & complete
    if mins and not (valued - keep) and not (top - complete):
        out["minValues"] = {k: v for k, v in mins.items() if k in keep}
        out["maxValues"] = {k: v for k, v in maxs.items() if k in keep}
    return out


def same_columns(a: pa.Schema, b: pa.Schema) -> bool:
    """Same column names and types, in the same order (nullability ignored)."""
    return [(f.name, f.type) for f in a] == [(f.name, f.type) for f in b]
