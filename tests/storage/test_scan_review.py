"""native_scan (read_parquet over the pinned version's files) equals the pyarrow-dataset scan."""

from __future__ import annotations

import duckdb
import pyarrow as pa

from lockgate.project.models import WriteMode
from lockgate.storage import CommitTag, DeltaStore, TableWrite
from lockgate.storage.scan import native_scan


def _pub(store: DeltaStore, t: pa.Table, seq: int, **write: object) -> None:
    store.publish(
        "t",
        t.to_reader(),
        write=TableWrite(**write, schema_mode="merge"),  # type: ignore[arg-type]
        tag=CommitTag(f"r{seq}", seq, f"b{seq}"),
    )


def test_native_scan_matches_arrow_scan_at_every_version(store: DeltaStore) -> None:
    _pub(store, pa.table({"id": [1, 2, 3], "v": ["a", "b", "c"]}), 1, mode=WriteMode.APPEND)
    _pub(
        store,
        pa.table({"id": [2, 4], "v": ["B", "d"], "extra": [1.5, None]}),
        2,
        mode=WriteMode.MERGE,
        keys=("id",),
    )
    _pub(store, pa.table({"id": [9], "v": ["z"], "extra": [2.0]}), 3, mode=WriteMode.APPEND)
    con = duckdb.connect()
    for version in range(store.version("t") + 1):  # type: ignore[operator]
        scan = native_scan(store.path("t"), version)
        assert scan is not None
        native = sorted(con.sql(scan.sql("duckdb")).fetchall(), key=repr)
        con.register("ds", store.arrow_dataset("t", version))
        cols = ", ".join(f'"{e.alias_or_name}"' for e in scan.expressions)
        arrow = sorted(con.sql(f"SELECT {cols} FROM ds").fetchall(), key=repr)
        assert native == arrow, version
