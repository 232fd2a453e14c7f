"""Crash safety: a writer SIGKILLed mid-write or around its commit leaves the table at version N
(killed before the commit) or N+1 (after it) — never in between."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

from lockgate.storage import CommitTag, DeltaStore, TableWrite

CHILD = Path(__file__).with_name("_crash_child.py")
BATCHES = 20  # x 50k rows
ROWS = BATCHES * 50_000


def _state(store: DeltaStore) -> tuple[int | None, int, int | None]:
    version = store.version("t")
    # read real data (not just metadata): every referenced file must be complete
    table = store.read("t", columns=["seq"])
    return version, table.num_rows, store.txn_version("t", "lockgate:t")


#: (write mode, how the child dies, whether its batch must be committed). Deaths are places,
#: not moments: after k batches were handed to delta-rs (mid-write), at lockgate's crash
#: points right before the write and right after the commit, or not at all.
CASES: list[tuple[str, str, bool]] = [
    ("append", "after:0", False),
    ("overwrite", "after:1", False),
    ("append", f"after:{BATCHES // 2}", False),
    ("overwrite", f"after:{BATCHES - 1}", False),
    ("append", f"after:{BATCHES}", False),
    ("overwrite", "crashpoint:1", False),  # "before publish"
    ("append", "crashpoint:2", True),  # "committed", before anything else
    ("overwrite", "crashpoint:2", True),
    ("append", "never", True),
    ("overwrite", "after:3", False),
]


@pytest.mark.slow
def test_sigkill_mid_write_leaves_previous_or_next_version(tmp_path: Path) -> None:
    store = DeltaStore(tmp_path)
    initial = pa.table({"seq": [0], "x": [0], "s": ["seed"]})
    seed = pa.RecordBatchReader.from_batches(initial.schema, initial.to_batches())
    store.publish("t", seed, write=TableWrite(), tag=CommitTag("run0", 0, "batch0"))
    for seq, (mode, death, commits) in enumerate(CASES, start=1):
        before_version, before_rows, _ = _state(store)
        kind, _, arg = death.partition(":")
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
        env.pop("LOCKGATE_CRASH_AT", None)
        if kind == "crashpoint":
            env["LOCKGATE_CRASH_AT"] = arg
        kill_after = arg if kind == "after" else "-1"
        child = subprocess.run(
            [sys.executable, str(CHILD), str(tmp_path), str(seq), str(BATCHES), mode, kill_after],
            capture_output=True,
            env=env,
            timeout=600,
        )
        if death == "never":
            assert child.returncode == 0, child.stderr.decode()
        else:
            assert child.returncode == -signal.SIGKILL, child.stderr.decode()

        version, n_rows, txn = _state(store)
        assert before_version is not None
        if not commits:  # rolled back: the table is exactly as before
            assert (version, n_rows, txn) == (before_version, before_rows, seq - 1), death
            # finish the interrupted publish the way the run loop's retry would
            store.publish(
                "t",
                pa.RecordBatchReader.from_batches(initial.schema, initial.to_batches()),
                write=TableWrite(),
                tag=CommitTag("retry", seq, f"batch{seq}"),
            )
            continue
        assert version == before_version + 1, death
        assert n_rows == (before_rows + ROWS if mode == "append" else ROWS)
        assert txn == seq
        last = store.last_commit("t")
        assert last is not None and last.batch_id == f"batch{seq}"
        # the retried publish after a crash that did commit is a no-op
        again = store.publish(
            "t",
            pa.RecordBatchReader.from_batches(initial.schema, initial.to_batches()),
            write=TableWrite(),
            tag=CommitTag("retry", seq, "x"),
        )
        assert again.skipped and store.version("t") == version
