"""DedupWindow.first_seen against a brute-force oracle: the first row of each key in a batch,
unless an earlier batch had it; NULL keys are never duplicates (one key column: the
dictionary-encoding path; two: the group-by path)."""

from __future__ import annotations

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from lockgate.streams.dedup import DedupWindow
from tests.hyp import examples

keys = st.one_of(st.none(), st.sampled_from(["a", "b", "c", "d", "e"]))


def oracle(batches: list[list[tuple[str | None, ...]]]) -> list[list[bool]]:
    seen: set[tuple[str | None, ...]] = set()
    out = []
    for batch in batches:
        keep = []
        for k in batch:
            if any(v is None for v in k):
                keep.append(True)
            elif k in seen:
                keep.append(False)
            else:
                seen.add(k)
                keep.append(True)
        out.append(keep)
    return out


@settings(max_examples=examples(200), deadline=None)
@given(st.lists(st.lists(st.tuples(keys, keys), max_size=12), max_size=5), st.booleans())
def test_first_seen_matches_the_oracle(
    batches: list[list[tuple[str | None, ...]]], two: bool
) -> None:
    cols = ["k1", "k2"] if two else ["k1"]
    rows = [[k[: len(cols)] for k in b] for b in batches]
    window = DedupWindow(cols, 3600)
    got = []
    for b in rows:
        table = pa.table({c: pa.array([r[i] for r in b], pa.string()) for i, c in enumerate(cols)})
        got.append(window.first_seen(table, 1000.0).to_pylist())
    assert got == oracle(rows)


def test_first_seen_on_several_chunks() -> None:
    table = pa.Table.from_batches(
        [pa.record_batch({"k": ["a", "b"]}), pa.record_batch({"k": ["a", None, "c"]})]
    )
    window = DedupWindow(["k"], 3600)
    window.remember(["c"], 1000.0)
    assert window.first_seen(table, 1000.0).to_pylist() == [True, True, False, True, False]
