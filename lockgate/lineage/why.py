"""Root cause of a failing check: ``lockgate why DATASET [CHECK] [--run RUN_ID]``.

The failing check's columns are walked upstream through column lineage. At every upstream
dataset the failing run is compared with the last run in which the check passed, at the
versions each of them *pinned* (followed through the steps that produced those versions):

- the upstream dataset got a new version, and (sources) which files arrived or changed;
- an upstream check that passed then fails now, or more rows went to its quarantine;
- its schema changed between the two versions (drift);
- a lineage column's distribution moved: null rate, distinct count, min/max, mean.

Each finding is a scored candidate: weight by the kind of evidence and its size, times the
lineage path (DIRECT 1.0, INDIRECT 0.7, times 0.85 per extra hop). For row-level checks on a
dataset with keys, the failing sample rows are traced one hop back, through key columns
that are copied unchanged, to the input rows at the pinned version.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from lockgate.errors import UsageError
from lockgate.lineage.model import ColumnRef, Kind, LineageGraph, Subtype
from lockgate.pii import MASK, mask_rows, pii_columns
from lockgate.project import Project
from lockgate.state import StateStore
from lockgate.state.records import CheckRecord, StepInfo
from lockgate.storage import DeltaStore

_HISTORY = 500  # steps / check results looked at per dataset


@dataclass
class Candidate:
    """One finding, with the numbers behind it."""

    score: float
    dataset: str
    kind: str  # check_failing | quarantine | schema_drift | distribution | new_files | new_version
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)
    commands: list[str] = field(default_factory=list)


@dataclass
class WhyReport:
    dataset: str
    check: str
    run_id: str
    failing: dict[str, Any]
    passing_run_id: str | None
    columns: list[str]
    upstream: list[dict[str, Any]]  # node, kind, hops
    candidates: list[Candidate]
    input_rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class _Trace:
    """An upstream column and how the check's column depends on it."""

    ref: ColumnRef
    hops: int
    kind: Kind
    subtype: Subtype

    @property
    def weight(self) -> float:
        return (1.0 if self.kind is Kind.DIRECT else 0.7) * 0.85 ** (self.hops - 1)


class _History:
    """Steps and check results of the datasets involved, read once."""

    def __init__(self, state: StateStore, project: str) -> None:
        self.state, self.project = state, project
        self._steps: dict[str, list[StepInfo]] = {}
        self._checks: dict[str, list[CheckRecord]] = {}

    def steps(self, dataset: str) -> list[StepInfo]:
        if dataset not in self._steps:
            self._steps[dataset] = self.state.dataset_steps(self.project, dataset, _HISTORY)
        return self._steps[dataset]

    def checks(self, dataset: str) -> list[CheckRecord]:
        if dataset not in self._checks:
            self._checks[dataset] = self.state.check_history(self.project, dataset, _HISTORY)
        return self._checks[dataset]

    def step(self, dataset: str, step_id: int) -> StepInfo | None:
        return next((s for s in self.steps(dataset) if s.step_id == step_id), None)

    def producer(self, dataset: str, version: object) -> StepInfo | None:
        """The step that wrote ``version`` of ``dataset``."""
        return next(
            (s for s in self.steps(dataset) if version is not None and s.output_version == version),
            None,
        )

    def step_checks(self, dataset: str, step_id: int) -> dict[str, CheckRecord]:
        return {c.check_name: c for c in self.checks(dataset) if c.step_id == step_id}


def why(
    project: Project,
    dataset: str,
    check: str | None = None,
    *,
    run: str | None = None,
    graph: LineageGraph | None = None,
) -> WhyReport:
    """Explain the failing ``check`` of ``dataset`` (default: its first failing check) in
    ``run`` (default: the newest run where it failed)."""
    from lockgate.lineage import project_lineage

    project.dataset(dataset)  # unknown name: ConfigError with a did-you-mean
    graph = graph or project_lineage(project)
    with StateStore.open(project.state_url) as state:
        hist = _History(state, project.name)
        run_id = _run_id(state, project.name, run)
        failing = _failing(hist, dataset, check, run_id)
        report = _explain(project, graph, hist, failing)
    return report


def _run_id(state: StateStore, project: str, run: str | None) -> str | None:
    if run is None:
        return None
    detail = state.get_run(run, project)
    if detail is None:
        raise UsageError(f"no run '{run}' in project '{project}'", hint="lockgate runs lists them")
    return detail.run.run_id


def _failing(hist: _History, dataset: str, check: str | None, run_id: str | None) -> CheckRecord:
    records = [
        c
        for c in hist.checks(dataset)
        if not c.passed
        and (check is None or c.check_name == check)
        and (run_id is None or c.run_id == run_id)
    ]
    if records:
        return records[0]
    where = f" in run {run_id[:8]}" if run_id else ""
    what = f"check '{check}'" if check else "any check"
    known = sorted({c.check_name for c in hist.checks(dataset)})
    raise UsageError(
        f"{what} of '{dataset}' did not fail{where} (in the last {_HISTORY} steps)",
        hint=("its checks: " + ", ".join(known)) if known else "run the dataset first",
    )


def _explain(
    project: Project, graph: LineageGraph, hist: _History, failing: CheckRecord
) -> WhyReport:
    dataset, check = failing.dataset, failing.check_name
    passing = next(
        (
            c
            for c in hist.checks(dataset)
            if c.check_name == check and c.passed and c.step_id < failing.step_id
        ),
        None,
    )
    columns = list(graph.datasets[dataset].checks.get(check, ()))
    traces = upstream_traces(graph, dataset, columns)
    report = WhyReport(
        dataset=dataset,
        check=check,
        run_id=failing.run_id,
        failing=_check_numbers(failing),
        passing_run_id=passing.run_id if passing else None,
        columns=columns,
        upstream=[
            {"node": str(t.ref), "kind": t.kind.value, "subtype": t.subtype.value, "hops": t.hops}
            for t in traces
        ],
        candidates=[],
    )
    if passing is not None:
        report.failing["before"] = _check_numbers(passing)
    else:
        report.notes.append(f"'{check}' never passed in the recorded history: nothing to compare")
    fail_step = hist.step(dataset, failing.step_id)
    pass_step = hist.step(dataset, passing.step_id) if passing else None
    fail_pins = pinned(hist, fail_step)
    pass_pins = pinned(hist, pass_step) if pass_step else {}
    involved = _involved(graph, dataset, traces, project)
    store = DeltaStore(project.warehouse_path)
    for up, up_traces in involved.items():
        report.candidates += _candidates(store, hist, up, up_traces, fail_pins, pass_pins)
    report.candidates.sort(key=lambda c: -c.score)
    _mask_personal(project, report.candidates)
    report.input_rows = _input_rows(project, graph, store, failing, fail_pins)
    report.commands = _commands(dataset, check, failing.run_id, columns)
    if any(graph.datasets[d].status == "opaque" for d in involved):
        report.notes.append("a Python transform on the path declares no column lineage")
    if not traces:
        report.notes.append(
            f"{', '.join(columns) or 'the check'} has no column lineage (count(*), a constant, "
            "an opaque transform): every upstream dataset is inspected as a whole"
        )
    return report


def _check_numbers(c: CheckRecord) -> dict[str, Any]:
    return {
        "run_id": c.run_id,
        "passed": c.passed,
        "failing_rows": c.failing_rows,
        "fraction": c.fraction,
        "observed": c.observed,
        "message": c.message,
    }


def upstream_traces(graph: LineageGraph, dataset: str, columns: Sequence[str]) -> list[_Trace]:
    """Every upstream column of ``dataset.columns``, nearest first (a column reached by a
    DIRECT and an INDIRECT path counts as DIRECT)."""
    best: dict[ColumnRef, _Trace] = {}
    frontier = [_Trace(graph.column(dataset, c), 0, Kind.DIRECT, Subtype.IDENTITY) for c in columns]
    while frontier:
        nxt: list[_Trace] = []
        for t in frontier:
            for e in graph.upstream_edges(t.ref):
                kind = Kind.INDIRECT if Kind.INDIRECT in (t.kind, e.kind) else Kind.DIRECT
                sub = e.subtype if t.hops == 0 or e.kind is Kind.INDIRECT else t.subtype
                cand = _Trace(e.source, t.hops + 1, kind, sub)
                old = best.get(e.source)
                if old is None or (old.kind is Kind.INDIRECT and kind is Kind.DIRECT):
                    best[e.source] = cand
                    nxt.append(cand)
        frontier = nxt
    return sorted(best.values(), key=lambda t: (t.hops, t.kind != Kind.DIRECT, str(t.ref)))


def _involved(
    graph: LineageGraph, dataset: str, traces: list[_Trace], project: Project
) -> dict[str, list[_Trace]]:
    """Upstream datasets to inspect, with the lineage columns found in each; datasets above
    a transform without column lineage are inspected as a whole (no column)."""
    out: dict[str, list[_Trace]] = {}
    for t in traces:
        out.setdefault(t.ref.dataset, []).append(t)
    whole = [d for d in [dataset, *out] if graph.datasets[d].status in ("opaque", "unknown")]
    if not traces:  # count(*), a constant, no lineage: the check depends on the rows
        whole.append(dataset)
    for d in whole:
        for up in project.upstream(d, transitive=True):
            out.setdefault(up, [])
    return out


def pinned(hist: _History, step: StepInfo | None) -> dict[str, Any]:
    """Dataset → the version (or a source's file list) a step read, directly or through
    the steps that produced the versions it read."""
    pins: dict[str, Any] = {}
    frontier = [step] if step is not None else []
    seen: set[int] = set()
    while frontier:
        s = frontier.pop()
        if s.step_id in seen:
            continue
        seen.add(s.step_id)
        inputs = s.input_versions or {}
        if isinstance(inputs.get("source"), Mapping):
            pins.setdefault(f"{s.dataset}#files", inputs["source"].get("files", []))
        for up, version in inputs.items():
            if up in ("source", "definition") or up in pins:
                continue
            pins[up] = version
            producer = hist.producer(up, version)
            if producer is not None:
                frontier.append(producer)
    return pins


def _candidates(
    store: DeltaStore,
    hist: _History,
    up: str,
    traces: list[_Trace],
    fail_pins: Mapping[str, Any],
    pass_pins: Mapping[str, Any],
) -> list[Candidate]:
    weight = max((t.weight for t in traces), default=0.5)
    new, old = fail_pins.get(up), pass_pins.get(up)
    out: list[Candidate] = []
    if new is not None and old is not None and new != old:
        out.append(
            Candidate(
                0.5 * weight,
                up,
                "new_version",
                f"{up}: read at version {new} (the passing run read {old})",
                {"version": new, "before": old},
                [f"lockgate show {up}"],
            )
        )
    out += _file_candidates(up, fail_pins, pass_pins, weight)
    out += _step_candidates(hist, up, new, old, weight)
    if isinstance(new, int) and isinstance(old, int) and new != old:
        out += _data_candidates(store, up, traces, new, old, weight)
    return out


def _file_candidates(
    up: str, fail_pins: Mapping[str, Any], pass_pins: Mapping[str, Any], weight: float
) -> list[Candidate]:
    def files(pins: Mapping[str, Any]) -> dict[str, tuple[Any, ...]]:
        raw = pins.get(f"{up}#files") or []
        return {f["path"]: (f.get("size"), f.get("mtime_ns")) for f in raw if "path" in f}

    now, before = files(fail_pins), files(pass_pins)
    if not before:
        return []
    added = sorted(set(now) - set(before))
    changed = sorted(p for p in set(now) & set(before) if now[p] != before[p])
    if not added and not changed:
        return []
    parts = [f"{len(added)} new file(s)"] * bool(added) + [f"{len(changed)} changed"] * bool(
        changed
    )
    shown = ", ".join((added + changed)[:5])
    return [
        Candidate(
            0.8 * weight,
            up,
            "new_files",
            f"{up}: {' and '.join(parts)} since the passing run: {shown}",
            {"added": added, "changed": changed},
            [f"lockgate show {up}"],
        )
    ]


def _step_candidates(
    hist: _History, up: str, new: object, old: object, weight: float
) -> list[Candidate]:
    """Checks of the upstream step that fail now and passed then; more quarantined rows."""
    now_step, then_step = hist.producer(up, new), hist.producer(up, old)
    if now_step is None:
        return []
    now = hist.step_checks(up, now_step.step_id)
    then = hist.step_checks(up, then_step.step_id) if then_step else {}
    out: list[Candidate] = []
    for name, c in now.items():
        before = then.get(name)
        if c.passed and not (c.failing_rows or 0):
            continue
        if before is not None and (before.failing_rows or 0) >= (c.failing_rows or 0):
            continue  # not new, not worse
        was = "passed" if before is None or before.passed else f"{before.failing_rows} rows"
        out.append(
            Candidate(
                3.0 * weight if not c.passed else 1.5 * weight,
                up,
                "check_failing",
                f"{up}.{name}: {c.failing_rows} failing rows in run {c.run_id[:8]} (then: {was})",
                {"check": name, "failing_rows": c.failing_rows, "before": was},
                [f"lockgate quarantine {up} --run {c.run_id[:8]} --check {name}"],
            )
        )
    q_now = now_step.rows_quarantined or 0
    q_then = (then_step.rows_quarantined or 0) if then_step else 0
    if q_now > q_then:
        out.append(
            Candidate(
                1.5 * weight * min(1.0, (q_now - q_then) / max(1, now_step.rows_in or 1) * 20),
                up,
                "quarantine",
                f"{up}: {q_now} rows quarantined in run {now_step.run_id[:8]} (then {q_then})",
                {"rows": q_now, "before": q_then},
                [f"lockgate quarantine {up} --run {now_step.run_id[:8]}"],
            )
        )
    return out


def _data_candidates(
    store: DeltaStore, up: str, traces: list[_Trace], new: int, old: int, weight: float
) -> list[Candidate]:
    try:
        s_new = store.arrow_dataset(up, new).schema
        s_old = store.arrow_dataset(up, old).schema
    except Exception:  # a version vacuumed away: no data evidence, the rest still holds
        return []
    out = _drift(up, s_new, s_old, traces, weight)
    cols = [t.ref.column for t in traces if t.ref.column in s_new.names]
    cols = [c for c in cols if c in s_old.names]
    if not cols:
        return out
    now = column_stats(store.read(up, new, columns=cols))
    then = column_stats(store.read(up, old, columns=cols))
    for t in traces:
        c = t.ref.column
        if c not in now or c not in then:
            continue
        size, changes = distribution_change(now[c], then[c])
        if size <= 0:
            continue
        out.append(
            Candidate(
                min(3.0, size) * t.weight,
                up,
                "distribution",
                f"{up}.{c} ({t.kind.value.lower()}, {t.hops} hop(s)): " + "; ".join(changes),
                {"column": c, "now": now[c], "before": then[c]},
                [f"lockgate lineage {up}.{c} --downstream"],
            )
        )
    return out


def _drift(
    up: str, new: pa.Schema, old: pa.Schema, traces: list[_Trace], weight: float
) -> list[Candidate]:
    added = [n for n in new.names if n not in old.names]
    removed = [n for n in old.names if n not in new.names]
    retyped = [
        f"{n}: {old.field(n).type} → {new.field(n).type}"
        for n in new.names
        if n in old.names and old.field(n).type != new.field(n).type
    ]
    if not (added or removed or retyped):
        return []
    touched = {t.ref.column for t in traces} & {
        *added,
        *removed,
        *(r.split(":")[0] for r in retyped),
    }
    parts = [f"added {added}"] * bool(added) + [f"removed {removed}"] * bool(removed)
    parts += [f"retyped {retyped}"] * bool(retyped)
    return [
        Candidate(
            (2.0 if touched else 1.0) * weight,
            up,
            "schema_drift",
            f"{up}: schema drift between the two versions: " + ", ".join(parts),
            {"added": added, "removed": removed, "retyped": retyped},
            [f"lockgate show {up}"],
        )
    ]


def column_stats(table: pa.Table) -> dict[str, dict[str, float | int | None]]:
    """Null rate, distinct count, min, max and mean (numbers only) of each column."""
    out: dict[str, dict[str, float | int | None]] = {}
    rows = table.num_rows
    for name in table.column_names:
        col = table.column(name)
        stats: dict[str, float | int | None] = {
            "rows": rows,
            "null_rate": (col.null_count / rows) if rows else 0.0,
            "distinct": int(pc.count_distinct(col).as_py()),
        }
        if (
            pa.types.is_integer(col.type)
            or pa.types.is_floating(col.type)
            or pa.types.is_decimal(col.type)
        ):
            mm = pc.min_max(col).as_py()
            mean = pc.mean(col).as_py()
            stats.update(min=_num(mm["min"]), max=_num(mm["max"]), mean=_num(mean))
        out[name] = stats
    return out


def _num(v: object) -> float | None:
    if v is None:
        return None
    f = float(v)  # type: ignore[arg-type]  # a number from pyarrow (int, float, Decimal)
    return f if math.isfinite(f) else None


def distribution_change(
    now: Mapping[str, float | int | None], then: Mapping[str, float | int | None]
) -> tuple[float, list[str]]:
    """How far a column's statistics moved (0: not notably) and the sentences saying so."""
    size, says = 0.0, []
    nr, pr = float(now["null_rate"] or 0), float(then["null_rate"] or 0)
    if abs(nr - pr) >= 0.01:
        size += min(3.0, abs(nr - pr) * 20)
        says.append(f"null rate {pr:.1%} → {nr:.1%}")
    dn, dp = int(now["distinct"] or 0), int(then["distinct"] or 0)
    if dp and abs(dn - dp) / dp >= 0.2:
        size += min(1.5, abs(dn - dp) / dp)
        says.append(f"distinct {dp} → {dn}")
    if now.get("mean") is not None and then.get("mean") is not None:
        mn, mp = float(now["mean"]), float(then["mean"])  # type: ignore[arg-type]
        rel = abs(mn - mp) / max(abs(mp), 1e-9)
        if rel >= 0.1:
            size += min(2.0, rel)
            says.append(f"mean {mp:.4g} → {mn:.4g}")
    lo, hi = now.get("min"), now.get("max")
    plo, phi = then.get("min"), then.get("max")
    if None not in (lo, hi, plo, phi) and (lo < plo or hi > phi):  # type: ignore[operator]
        size += 1.0
        says.append(f"range [{plo:.4g}, {phi:.4g}] → [{lo:.4g}, {hi:.4g}]")
    return size, says


def _input_rows(
    project: Project,
    graph: LineageGraph,
    store: DeltaStore,
    failing: CheckRecord,
    pins: Mapping[str, Any],
) -> dict[str, list[dict[str, Any]]]:
    """The input rows behind the failing sample rows, one hop up, through key columns the
    transform copies unchanged (IDENTITY); empty when that path does not exist."""
    keys = project.dataset(failing.dataset).write.keys
    samples = [s for s in failing.samples or [] if isinstance(s, dict)]
    if not keys or not samples or not all(k in samples[0] for k in keys):
        return {}
    out: dict[str, list[dict[str, Any]]] = {}
    for up in project.deps.get(failing.dataset, ()):
        mapping = _identity_keys(graph, failing.dataset, up, keys)
        version = pins.get(up)
        if mapping is None or not isinstance(version, int):
            continue
        rows = _rows_by_keys(store, up, version, mapping, samples)
        if rows:
            out[f"{up}@{version}"] = mask_rows(rows, pii_columns(project, up))
    return out


def _mask_personal(project: Project, candidates: list[Candidate]) -> None:
    """A personal column's min and max are one person's values (:mod:`lockgate.pii`): the
    distribution evidence keeps its null rate, distinct count and mean, and says only that
    the range moved."""
    for c in candidates:
        column = c.evidence.get("column")
        if c.kind != "distribution" or column not in pii_columns(project, c.dataset):
            continue
        for side in ("now", "before"):
            stats = c.evidence.get(side)
            if isinstance(stats, dict):
                c.evidence[side] = {
                    k: (MASK if k in ("min", "max") and v is not None else v)
                    for k, v in stats.items()
                }
        head, _, said = c.summary.partition("): ")
        kept = [p for p in said.split("; ") if not p.startswith("range ")]
        kept += ["range moved (personal column: values hidden)"] * (
            len(kept) < len(said.split("; "))
        )
        c.summary = f"{head}): " + "; ".join(kept)


def _identity_keys(
    graph: LineageGraph, dataset: str, up: str, keys: Iterable[str]
) -> dict[str, str] | None:
    mapping: dict[str, str] = {}
    for k in keys:
        edges = graph.upstream_edges(graph.column(dataset, k))
        src = [
            e.source.column
            for e in edges
            if e.source.dataset == up and e.subtype is Subtype.IDENTITY
        ]
        if len(src) != 1:
            return None
        mapping[k] = src[0]
    return mapping


def _rows_by_keys(
    store: DeltaStore,
    up: str,
    version: int,
    mapping: Mapping[str, str],
    samples: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    table = store.read(up, version)
    mask = None
    for out_key, in_key in mapping.items():
        values = pa.array([s[out_key] for s in samples])
        try:
            cond = pc.is_in(table.column(in_key), value_set=values.cast(table.column(in_key).type))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, KeyError):
            return []
        mask = cond if mask is None else pc.and_(mask, cond)
    if mask is None:
        return []
    picked = table.filter(mask).slice(0, 20)
    return [{k: v for k, v in r.items() if not k.startswith("_lg_")} for r in picked.to_pylist()]


def _commands(dataset: str, check: str, run_id: str, columns: Sequence[str]) -> list[str]:
    cmds = [f"lockgate quarantine {dataset} --run {run_id[:8]} --check {check}"]
    cmds += [f"lockgate lineage {dataset}.{c} --upstream" for c in columns[:3]]
    cmds.append(f"lockgate show {dataset}")
    return cmds
