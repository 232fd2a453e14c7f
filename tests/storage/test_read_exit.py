"""A script that reads a table through the API exits cleanly.

delta-rs' own Arrow dataset left threads that aborted the interpreter at exit once DuckDB was
imported ("terminate called without an active exception", exit 134): `lockgate.read` in a
user's script printed its result and then failed. Plain tables are read as pyarrow Parquet
datasets over the version's files instead."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import lockgate
from tests.run.helpers import csv_source, make_project


@pytest.mark.slow  # real subprocesses
def test_a_script_reading_a_table_exits_zero(tmp_path: Path) -> None:
    root = make_project(
        tmp_path / "p",
        [csv_source("t", "data/t.csv", columns={"id": "BIGINT", "s": "VARCHAR"})],
        files={"data/t.csv": "id,s\n1,a\n2,b\n3,c\n"},
    )
    assert lockgate.run(root).ok
    script = (
        "import lockgate\n"
        f"t = lockgate.read({str(root)!r}, 't')\n"
        "print(sorted(t.column('id').to_pylist()))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(lockgate.__file__).parents[1])}
    for _ in range(3):  # the abort was intermittent
        p = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120
        )
        assert (p.returncode, p.stdout.strip()) == (0, "[1, 2, 3]"), p.stderr[-2000:]


def test_plain_table_reads_as_parquet_files_with_evolved_schema(tmp_path: Path) -> None:
    """Older files lack a column added later: it reads as NULL there, at every version."""
    from lockgate.storage import DeltaStore

    root = make_project(
        tmp_path / "p",
        [csv_source("t", "data/*.csv", write={"mode": "append"})],
        files={"data/a.csv": "id\n1\n"},
    )
    assert lockgate.run(root).ok
    (root / "data/b.csv").write_text("id,extra\n2,x\n")
    assert lockgate.run(root).ok
    store = DeltaStore(root / "warehouse")
    rows = sorted(store.read("t").to_pylist(), key=lambda r: r["id"])
    assert [(r["id"], r.get("extra")) for r in rows][-1] == (2, "x")
    assert rows[0]["id"] == 1 and rows[0].get("extra") is None
    assert store.read("t", version=0).column("id").to_pylist() == [1]
