"""Merge (upsert) against a dict oracle: random batches of unique-key rows, applied in order."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lockgate.storage import CommitTag, DeltaStore, TableWrite
from tests.hyp import examples

Key = tuple[int, str]
SCHEMA = pa.schema([("k1", pa.int64()), ("k2", pa.string()), ("v", pa.int64())])

keys = st.tuples(st.integers(0, 3), st.sampled_from(["a", "b", "é'c"]))
# one batch: unique keys (the caller de-duplicates before publish), nullable values
batch = st.dictionaries(keys, st.one_of(st.none(), st.integers(-1000, 1000)), max_size=8)


@settings(max_examples=examples(25), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches=st.lists(batch, min_size=1, max_size=5), batch_rows=st.integers(1, 3))
def test_merge_matches_dict_oracle(batches: list[dict[Key, int | None]], batch_rows: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = DeltaStore(Path(tmp))
        oracle: dict[Key, int | None] = {}
        for seq, rows in enumerate(batches, start=1):
            table = pa.table(
                {
                    "k1": [k[0] for k in rows],
                    "k2": [k[1] for k in rows],
                    "v": list(rows.values()),
                },
                schema=SCHEMA,
            )
            res = store.publish(
                "t",
                pa.RecordBatchReader.from_batches(SCHEMA, table.to_batches(batch_rows)),
                write=TableWrite(mode="merge", keys=("k1", "k2")),
                tag=CommitTag("r", seq, f"b{seq}"),
            )
            assert res.rows == len(rows) and res.skipped == (not rows)
            oracle.update(rows)
            got = store.read("t").to_pylist()
            assert len(got) == len(oracle), "merge duplicated or lost keys"
            assert {(r["k1"], r["k2"]): r["v"] for r in got} == oracle
