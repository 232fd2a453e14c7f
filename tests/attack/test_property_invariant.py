"""Property: for generated messy CSV / NDJSON batches (several files, unicode, quotes,
embedded newlines, unconvertible values, broken lines), every good record is published
exactly once with its values, every bad one is quarantined, and the step's numbers add up."""

from __future__ import annotations

import csv
import io
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from lockgate.runloop.results import StepStatus
from tests.attack._util import assert_invariant, build, published, quarantined, run
from tests.hyp import examples

TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\x00")
    | st.sampled_from(['"', ",", ";", "\n", "é", "中", "🙂", " "]),
    max_size=12,
)
GOOD = st.builds(lambda q, t: ("good", q, t), st.integers(-(10**12), 10**12), TEXT)
BAD = st.builds(
    lambda q, t: ("bad", q, t), st.sampled_from(["1.5x", "NaN?", "--3", "1e", "٣"]), TEXT
)
FILES = st.lists(st.lists(st.one_of(GOOD, GOOD, BAD), max_size=6), min_size=1, max_size=3)


def _csv_file(rows: list[tuple[str, Any, str]], start: int) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["id", "qty", "note"])
    for i, (_, q, t) in enumerate(rows):
        w.writerow([start + i, q, t])
    return buf.getvalue()


@settings(
    max_examples=examples(12),
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],  # no shrinking: keep failures fast
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(files=FILES)
def test_csv_glob_property(files: list[list[tuple[str, Any, str]]]) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="lg-attack-"))
    try:
        data: dict[str, str | bytes] = {}
        want: dict[int, tuple[int, str]] = {}
        bad_ids: set[int] = set()
        start = 0
        for n, rows in enumerate(files):
            data[f"data/f{n}.csv"] = _csv_file(rows, start)
            for i, (kind, q, t) in enumerate(rows):
                if kind == "good":
                    want[start + i] = (q, t)
                else:
                    bad_ids.add(start + i)
            start += len(rows) + 1
        ds = {
            "name": "pp",
            "source": {
                "type": "file",
                "path": "data/*.csv",
                "columns": {"id": "BIGINT", "qty": "BIGINT", "note": "VARCHAR"},
            },
        }
        root = build(tmp / "p", [ds], data)
        step = run(root).step("pp")
        assert step.status == StepStatus.SUCCESS, step.reason[:300]
        got = {r["id"]: (r["qty"], r["note"] or "") for r in published(root, "pp")}
        assert got == want, f"published != good records\n got {got}\nwant {want}"
        q = quarantined(root, "pp")
        assert len(q) == len(bad_ids), f"{len(bad_ids)} bad records, {len(q)} quarantined"
        assert_invariant(step, rows_in=len(want) + len(bad_ids))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


VALUE = st.recursive(
    st.none() | st.booleans() | st.integers(-1000, 1000) | TEXT,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from("abc"), inner, max_size=3)
    ),
    max_leaves=6,
)
LINE = st.one_of(
    st.builds(
        lambda v: ("good", v), st.dictionaries(st.sampled_from(["x", "y"]), VALUE, min_size=2)
    ),
    st.sampled_from([("bad", '{"x": 1,'), ("bad", "{{"), ("bad", '{"x": tru}')]),
)


@settings(
    max_examples=examples(12),
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],  # no shrinking: keep failures fast
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(lines=st.lists(LINE, min_size=1, max_size=8))
def test_ndjson_property(lines: list[tuple[str, Any]]) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="lg-attack-"))
    try:
        text_lines, want, n_bad = [], {}, 0
        for i, (kind, v) in enumerate(lines):
            if kind == "good":
                rec = {"id": i, **v}
                text_lines.append(json.dumps(rec))
                want[i] = rec
            else:
                text_lines.append(v)
                n_bad += 1
        root = build(
            tmp / "p",
            [
                {
                    "name": "nj",
                    "source": {
                        "type": "file",
                        "path": "data/e.ndjson",
                        "columns": {"id": "BIGINT", "x": "JSON", "y": "JSON"},
                    },
                }
            ],
            {"data/e.ndjson": "\n".join(text_lines) + "\n"},
        )
        step = run(root).step("nj")
        assert step.status == StepStatus.SUCCESS, step.reason[:300]
        got = {}
        for r in published(root, "nj"):
            got[r["id"]] = {
                "id": r["id"],
                **{k: (json.loads(r[k]) if isinstance(r[k], str) else r[k]) for k in ("x", "y")},
            }
        assert got == want, f"published != good records\n got {got}\nwant {want}"
        assert len(quarantined(root, "nj")) == n_bad
        assert_invariant(step, rows_in=len(lines))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
