"""Property: for messy inputs over several runs, every step accounts for every record it read
(read = published + quarantined + skipped by name) and every good record is published
unchanged — compared with an oracle computed here in Python.

Generated: CSV / NDJSON / JSON-array / Parquet globs of several files, incremental batches
(new files, files that grow) appended or merged over several runs, non-incremental overwrite,
bad values, bad lines, NULL values and NULL cursors, late records under each ``late`` policy,
and an incremental SQL transform downstream.

Messy shapes across the files of one glob: CSV files whose headers list the columns in
another order, Parquet files whose ``v`` column is a double in one file and text in another,
JSON arrays with scalar elements (unreadable records), empty files (header only, ``[]``,
zero rows). Left out (tested on their own in tests/sources): nested values, huge cells.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st

import lockgate
from lockgate.runloop.results import StepResult, StepStatus
from lockgate.storage import DeltaStore
from tests.hyp import examples
from tests.run.helpers import make_project

FORMATS = {"csv": "csv", "ndjson": "ndjson", "json": "json", "parquet": "parquet"}
VALUES = [0.0, 0.5, -1.25, 3.0, 1e6, 0.0025, 42.75]
TEXTS = ["a", "Zoë", "日本", "x, y", 'say "hi"', "two\nlines", "  pad  ", "NULL", "emoji 🚀"]
T0 = datetime(2024, 1, 1)


@dataclass
class Rec:
    uid: int
    id: int
    ts: int | None
    v: float | None
    kind: str  # good | bad_value | bad_line
    s: str | None = None

    @property
    def row(self) -> tuple[int, int | None, float | None, str | None]:
        return (self.id, self.ts, self.v, self.s)


@dataclass
class Scenario:
    fmt: str
    mode: str  # append | merge | overwrite (not incremental)
    ts_kind: str  # int | timestamp
    lookback: int | None
    late: str
    runs: list[list[tuple[str, int | None, list[Rec]]]]  # per run: (new|grow, file, recs)
    refresh: list[bool] = field(default_factory=list)  # per run: --full-refresh
    gate: str = "quarantine"  # or warn: rows failing not_null(v) are published

    @property
    def incremental(self) -> bool:
        return self.mode != "overwrite"


# ---- generation ----------------------------------------------------------------------------


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    fmt = draw(st.sampled_from(sorted(FORMATS)))
    mode = draw(st.sampled_from(["append", "merge", "overwrite"]))
    kinds = ["good"] * 5 + ["bad_value"] + (["bad_line"] if fmt != "parquet" else [])
    uid = iter(range(10_000))
    n_files = 0
    runs = []
    versioned: list[Rec] = []  # records a later one may give a new version of (merge)
    for _ in range(draw(st.integers(1, 3))):
        ops: list[tuple[str, int | None, list[Rec]]] = []
        for _ in range(draw(st.integers(1, 3))):
            grow = n_files > 0 and draw(st.booleans())
            target = draw(st.integers(0, n_files - 1)) if grow else None
            recs = []
            for _ in range(draw(st.sampled_from([0, 1, 1, 2, 2, 3, 4]))):  # 0: an empty file
                u = next(uid)
                recs.append(
                    Rec(
                        uid=u,
                        id=u,
                        ts=draw(st.one_of(st.none(), st.integers(0, 12))),
                        v=draw(st.one_of(st.none(), st.sampled_from(VALUES))),
                        kind=draw(st.sampled_from(kinds)),
                        s=draw(st.one_of(st.none(), st.sampled_from(TEXTS))),
                    )
                )
            if mode == "merge" and (versioned or recs) and draw(st.booleans()):
                # another version of a good key, strictly newer: of this op or an earlier one
                base = draw(st.sampled_from(versioned)) if versioned else recs[0]
                if base.kind == "good" and base.ts is not None and base.v is not None:
                    ts = base.ts + draw(st.integers(1, 3))
                    recs.append(Rec(next(uid), base.id, ts, base.v + 1, "good", base.s))
            versioned.extend(recs)
            if grow:
                ops.append(("grow", target, recs))
            else:
                ops.append(("new", n_files, recs))
                n_files += 1
        runs.append(ops)
    refresh = [draw(st.integers(0, 5)) == 0 for _ in runs]
    return Scenario(
        fmt=fmt,
        mode=mode,
        ts_kind=draw(st.sampled_from(["int", "timestamp"])),
        lookback=draw(st.one_of(st.none(), st.integers(0, 3))),
        late=draw(st.sampled_from(["quarantine", "accept", "skip"])),
        runs=runs,
        refresh=refresh,
        gate=draw(st.sampled_from(["quarantine", "warn"])),
    )


# ---- files ---------------------------------------------------------------------------------


def _ts(sc: Scenario, ts: int | None) -> Any:
    if ts is None or sc.ts_kind == "int":
        return ts
    return (T0 + timedelta(hours=ts)).isoformat(sep=" ")


def _csv_line(sc: Scenario, r: Rec, order: list[int]) -> str:
    ts = _ts(sc, r.ts)
    cells = [str(r.id), "" if ts is None else str(ts), "" if r.v is None else repr(r.v)]
    cells.append("" if r.s is None else r.s)
    if r.kind == "bad_value":
        cells[2] = "oops"
    cells = [cells[i] for i in order]
    if r.kind == "bad_line":
        cells.append("extra")
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(cells)
    return out.getvalue()


def _obj(sc: Scenario, r: Rec) -> dict[str, Any]:
    v = "oops" if r.kind == "bad_value" else r.v
    return {"id": r.id, "ts": _ts(sc, r.ts), "v": v, "s": r.s}


def _write(sc: Scenario, path: Path, recs: list[Rec], number: int) -> None:
    """(Re)write a whole file holding ``recs`` (a grown file keeps its earlier records first).
    Odd-numbered files differ in shape from even ones: CSV columns in reverse order, Parquet
    ``v`` as a double instead of text (when the file has no unconvertible value)."""
    if sc.fmt == "csv":
        order = [3, 2, 1, 0] if number % 2 else [0, 1, 2, 3]
        header = ",".join(["id", "ts", "v", "s"][i] for i in order) + "\n"
        path.write_text(header + "".join(_csv_line(sc, r, order) for r in recs))
    elif sc.fmt == "ndjson":
        lines = [
            f'{{"id": {r.id}, broken' if r.kind == "bad_line" else json.dumps(_obj(sc, r))
            for r in recs
        ]
        path.write_text("\n".join(lines) + "\n")
    elif sc.fmt == "json":  # an unreadable record is a scalar element of the array
        path.write_text(json.dumps([r.id if r.kind == "bad_line" else _obj(sc, r) for r in recs]))
    else:
        objs = [_obj(sc, r) for r in recs]
        ts_type = pa.int64() if sc.ts_kind == "int" else pa.string()
        vs = [o["v"] for o in objs]
        if number % 2 and not any(isinstance(v, str) for v in vs):
            v_col = pa.array(vs, pa.float64())
        else:
            v_col = pa.array([None if v is None else str(v) for v in vs], pa.string())
        table = pa.table(
            {
                "id": pa.array([o["id"] for o in objs], pa.int64()),
                "ts": pa.array([o["ts"] for o in objs], ts_type),
                "v": v_col,
                "s": pa.array([o["s"] for o in objs], pa.string()),
            }
        )
        pq.write_table(table, path)


# ---- oracle --------------------------------------------------------------------------------


@dataclass
class Expect:
    rows_in: int = 0
    out: int = 0
    quarantined: int = 0
    skips: Counter[str] = field(default_factory=Counter)


@dataclass
class Oracle:
    sc: Scenario
    target: dict[int, tuple[Any, ...]] = field(default_factory=dict)
    quarantined: set[tuple[Any, ...]] = field(default_factory=set)
    rejected: set[int] = field(default_factory=set)  # uids of unreadable records quarantined
    wm: int | None = None
    exists: bool = False

    def run(self, read: list[Rec], *, full_refresh: bool = False) -> Expect:
        e = Expect(rows_in=len(read))
        if full_refresh:  # everything is read again and the table and quarantine rebuilt
            self.target, self.quarantined, self.rejected = {}, set(), set()
            self.wm, self.exists = None, False
        if not self.sc.incremental:
            self.target = {}
        passing: list[Rec] = []
        for r in read:
            reason = self._classify(r)
            if reason in ("quarantine", "parse"):
                e.quarantined += 1
            elif reason is not None:
                e.skips[reason] += 1
            else:
                passing.append(r)
        published = self._dedup(passing, e)
        for r in published:
            self.target[r.id] = r.row
            if r.ts is not None:
                self.wm = r.ts if self.wm is None else max(self.wm, r.ts)
        e.out = len(published)
        self.exists = True
        return e

    def _classify(self, r: Rec) -> str | None:
        """None = passes on to the checks and the publish; else what happens to ``r``."""
        if r.kind != "good":
            if self.sc.incremental and r.uid in self.rejected:
                return "already_quarantined"
            self.rejected.add(r.uid)
            return "parse"
        if self.sc.incremental and self.exists:
            qmax = max((q[1] for q in self.quarantined if q[1] is not None), default=None)
            reread = (
                r.ts is None
                or (self.wm is not None and r.ts <= self.wm)
                or (qmax is not None and r.ts <= qmax)
            )
            if reread:
                t = self.target.get(r.id)
                if t == r.row:
                    return "already_published"
                newer = t is not None and t[1] is not None and r.ts is not None and t[1] > r.ts
                if self.sc.mode == "merge" and newer:
                    return "superseded"
                if r.row in self.quarantined:
                    return "already_quarantined"
                lowest = None if self.wm is None else self.wm - (self.sc.lookback or 0)
                if lowest is not None and r.ts is not None and r.ts < lowest:
                    if self.sc.late == "skip":
                        return "late"
                    if self.sc.late == "quarantine":
                        self.quarantined.add(r.row)
                        return "quarantine"
        if r.v is None and self.sc.gate == "quarantine":  # fails not_null(v)
            if self.sc.incremental:
                self.quarantined.add(r.row)
            return "quarantine"
        return None

    def _dedup(self, passing: list[Rec], e: Expect) -> list[Rec]:
        if self.sc.mode != "merge":
            return passing
        best: dict[int, Rec] = {}
        for r in passing:
            cur = best.get(r.id)
            if cur is None or (r.ts or -1) > (cur.ts or -1):
                best[r.id] = r
        e.skips["duplicate_in_window"] += len(passing) - len(best)
        return list(best.values())


# ---- the property --------------------------------------------------------------------------


def _project(root: Path, sc: Scenario) -> Path:
    ts_type = "BIGINT" if sc.ts_kind == "int" else "TIMESTAMP"
    lookback: Any = sc.lookback
    if sc.ts_kind == "timestamp" and lookback is not None:
        lookback = f"{lookback}h"
    ds: dict[str, Any] = {
        "name": "src",
        "source": {
            "type": "file",
            "path": f"data/*.{sc.fmt}",
            "format": FORMATS[sc.fmt],
            "columns": {"id": "BIGINT", "ts": ts_type, "v": "DOUBLE", "s": "VARCHAR"},
        },
        "checks": [{"type": "not_null", "column": "v"}],
        "gate": sc.gate,
        "write": {"mode": sc.mode, **({"keys": ["id"]} if sc.mode == "merge" else {})},
    }
    datasets = [ds]
    if sc.incremental:
        inc = {"cursor": "ts", "late": sc.late}
        if lookback is not None:
            inc["lookback"] = lookback
        ds["incremental"] = inc
        # downstream: an incremental transform with the same cursor and late policy holds
        # what src holds (an accepted late row reaches it through the files src added)
        datasets.append(
            {
                "name": "down",
                "transform": {"sql": "select * from src"},
                "incremental": inc,
                "write": ds["write"],
            }
        )
    return make_project(root, datasets, files={"data/.keep": ""})


def _published(root: Path, name: str) -> dict[int, tuple[Any, ...]]:
    rows = lockgate.read(root, name).to_pylist()
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids)), f"{name}: a row published twice: {sorted(ids)}"
    return {r["id"]: (r["id"], r["ts"], r["v"], r["s"]) for r in rows}


def _expected_rows(sc: Scenario, target: dict[int, tuple[Any, ...]]) -> dict[int, tuple[Any, ...]]:
    out = {}
    for k, (i, ts, v, text) in target.items():
        when = ts if ts is None or sc.ts_kind == "int" else T0 + timedelta(hours=ts)
        out[k] = (i, when, v, text)
    return out


def assert_accounted(s: StepResult) -> None:
    assert s.status in (StepStatus.SUCCESS, StepStatus.NOOP), (s.dataset, s.reason)
    assert s.rows_skipped == sum(s.skip_reasons.values())
    assert s.rows_in == s.rows_out + s.rows_quarantined + s.rows_skipped, s


# bounded: no shrinking (each example runs lockgate several times); a failure prints its case.
# LOCKGATE_PROPERTY_EXAMPLES=500 for a deeper local search
@settings(
    max_examples=int(os.environ.get("LOCKGATE_PROPERTY_EXAMPLES", examples(25))),
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(sc=scenarios())
def test_every_record_is_accounted_for_and_good_rows_are_published_unchanged(
    sc: Scenario,
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = _project(Path(tmp) / "p", sc)
        files: dict[int, list[Rec]] = {}
        oracle = Oracle(sc)
        for number, ops in enumerate(sc.runs, start=1):
            touched: list[int] = []
            for _op, f, recs in ops:
                assert f is not None
                files.setdefault(f, []).extend(recs)
                if f not in touched:
                    touched.append(f)
            for f in touched:
                _write(sc, root / "data" / f"f{f:03d}.{sc.fmt}", files[f], f)
            refresh = sc.refresh[number - 1]
            read_files = sorted(touched) if sc.incremental and not refresh else sorted(files)
            read = [r for f in read_files for r in files[f]]
            expect = oracle.run(read, full_refresh=refresh)
            res = lockgate.run(root, full_refresh=refresh)
            src = res.step("src")
            for s in res.steps:
                assert_accounted(s)
            got = (src.rows_in, src.rows_out, src.rows_quarantined, dict(src.skip_reasons))
            want = (expect.rows_in, expect.out, expect.quarantined, dict(+expect.skips))
            assert got == want, f"run {number}: {sc}"
            for reason in src.skip_reasons:
                event(f"skipped: {reason}")
            if src.rows_quarantined:
                event("quarantined")
            assert _published(root, "src") == _expected_rows(sc, oracle.target), f"run {number}"
            if sc.incremental:
                assert _published(root, "down") == _expected_rows(sc, oracle.target)
        if sc.incremental:
            store = DeltaStore(root / "warehouse")
            q = store.read("src__quarantine") if store.exists("src__quarantine") else None
            assert (q.num_rows if q is not None else 0) == len(oracle.quarantined) + len(
                oracle.rejected
            ), "a record quarantined twice or not at all"
