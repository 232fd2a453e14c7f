"""Crash safety: a writer SIGKILLed at a random moment leaves the table at version N or N+1."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

from lockgate.project.models import WriteSpec
from lockgate.storage import DeltaStore

CHILD = Path(__file__).with_name("_crash_child.py")
BATCHES = 60  # x 50k rows: a write that takes a few hundred ms
ROWS = BATCHES * 50_000


def _state(store: DeltaStore) -> tuple[int | None, int, int | None]:
    version = store.version("t")
    # read real data (not just metadata): every referenced file must be complete
    table = store.read("t", columns=["seq"])
    return version, table.num_rows, store.txn_version("t", "lockgate:t")


@pytest.mark.slow
def test_sigkill_mid_write_leaves_previous_or_next_version(tmp_path: Path) -> None:
    store = DeltaStore(tmp_path)
    initial = pa.table({"seq": [0], "x": [0], "s": ["seed"]})
    store.publish(
        "t",
        pa.RecordBatchReader.from_batches(initial.schema, initial.to_batches()),
        write=WriteSpec(),
        run_id="run0",
        run_seq=0,
        batch_id="batch0",
        watermark=None,
    )
    rng = random.Random(20240601)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    outcomes = {"committed": 0, "rolled back": 0}
    for seq in range(1, 11):
        mode = "append" if seq % 2 else "overwrite"
        before_version, before_rows, _ = _state(store)
        child = subprocess.Popen(
            [sys.executable, str(CHILD), str(tmp_path), str(seq), str(BATCHES), mode],
            stdout=subprocess.PIPE,
            env=env,
        )
        assert child.stdout is not None
        assert child.stdout.readline() == b"ready\n"
        # kill somewhere between "about to write" and "well after the commit"
        killed = False
        try:
            child.wait(timeout=rng.uniform(0.0, 0.5))
        except subprocess.TimeoutExpired:
            child.send_signal(signal.SIGKILL)
            child.wait()
            killed = True
        child.stdout.close()
        stderr = child.stderr.read().decode() if child.stderr else ""
        if not killed:
            assert child.returncode == 0, stderr

        version, n_rows, txn = _state(store)
        assert before_version is not None
        if version == before_version:
            assert killed, "a child that exited cleanly must have committed"
            outcomes["rolled back"] += 1
            assert n_rows == before_rows and txn == seq - 1
        else:
            outcomes["committed"] += 1
            assert version == before_version + 1
            assert n_rows == (before_rows + ROWS if mode == "append" else ROWS)
            assert txn == seq
            last = store.last_commit("t")
            assert last is not None and last.batch_id == f"batch{seq}"
            # the retried publish after a crash that did commit is a no-op
            again = store.publish(
                "t",
                pa.RecordBatchReader.from_batches(initial.schema, initial.to_batches()),
                write=WriteSpec(),
                run_id="retry",
                run_seq=seq,
                batch_id="x",
                watermark=None,
            )
            assert again.skipped and store.version("t") == version
        if version == before_version:
            # finish the interrupted publish the way the run loop's retry would
            assert txn == seq - 1
            store.publish(
                "t",
                pa.RecordBatchReader.from_batches(initial.schema, initial.to_batches()),
                write=WriteSpec(),
                run_id="retry",
                run_seq=seq,
                batch_id=f"batch{seq}",
                watermark=None,
            )
    print(outcomes)  # visible with -s; which outcome happens depends on timing
