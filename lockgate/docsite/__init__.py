"""``lockgate docs``: a static data dictionary of a project, readable offline.

One folder of plain HTML (no script, no CDN, no web font; the CSS is inline in each page):

- ``index.html``: every dataset with its description, owner, tags, PII columns, last run,
  quality score, freshness and check results at a glance;
- ``datasets/<name>.html``: the columns (type, PII, checks reading them, upstream and
  downstream columns through column lineage), the checks with their recent results (observed
  values, an anomaly check's expected band), the score per dimension, freshness, schema drift
  incidents, recent runs, and the column lineage graph ±1 hop;
- ``lineage.html``: the whole column lineage graph.

Everything comes from the project, its column lineage (:mod:`lockgate.lineage`), the warehouse
(schemas, last commits) and the state store; nothing is fetched from the network.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2

if TYPE_CHECKING:
    from lockgate.lineage.model import LineageGraph
    from lockgate.project import Project
    from lockgate.state import StateStore
    from lockgate.storage.base import TableStore

HERE = Path(__file__).parent
RECENT_STEPS = 10  # check results shown per check: this many of the dataset's last steps


@dataclass
class DatasetDoc:
    name: str
    kind: str
    description: str | None
    owner: str | None
    tags: tuple[str, ...]
    pii: tuple[str, ...]
    upstream: list[str]
    downstream: list[str]
    columns: list[dict[str, Any]] = field(default_factory=list)
    checks: list[dict[str, Any]] = field(default_factory=list)
    score: dict[str, float] = field(default_factory=dict)
    last_step: dict[str, Any] | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)
    freshness: dict[str, Any] = field(default_factory=dict)
    drift: list[dict[str, Any]] = field(default_factory=list)
    lineage_note: str = ""
    svg: str = ""

    @property
    def failing(self) -> int:
        return sum(1 for c in self.checks if c["last"] is not None and not c["last"]["passed"])


def build_docs(project: Project, out: Path, *, now: datetime | None = None) -> list[Path]:
    """Write the site for ``project`` into ``out`` (replacing a previous site there);
    return the pages written."""
    from lockgate.lineage import project_lineage
    from lockgate.runloop.runner import open_backends

    now = now or datetime.now(UTC)
    graph = project_lineage(project)
    state, store = open_backends(project)
    try:
        docs = [_dataset(project, graph, state, store, name, now) for name in project.datasets]
    finally:
        state.close()
    _draw(project, graph, docs)
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["dt"] = _dt
    env.filters["num"] = _num
    pages_dir = out / "datasets"
    if pages_dir.exists():
        shutil.rmtree(pages_dir)
    pages_dir.mkdir(parents=True)
    common = {"project": project.config.name, "generated": _dt(now), "css": _css()}
    written = []
    index = out / "index.html"
    index.write_text(env.get_template("index.html").render(datasets=docs, **common))
    written.append(index)
    for d in docs:
        page = pages_dir / f"{d.name}.html"
        page.write_text(env.get_template("dataset.html").render(d=d, **common))
        written.append(page)
    lineage = out / "lineage.html"
    lineage.write_text(
        env.get_template("lineage.html").render(svg=_whole_graph(project, graph), **common)
    )
    written.append(lineage)
    return written


def _dataset(
    project: Project,
    graph: LineageGraph,
    state: StateStore,
    store: TableStore,
    name: str,
    now: datetime,
) -> DatasetDoc:
    from lockgate.dataset_view import latest_score
    from lockgate.lineage.drift import drift_incidents
    from lockgate.lineage.model import ColumnRef

    spec = project.datasets[name]
    pname = project.config.name
    info = graph.datasets.get(name)
    d = DatasetDoc(
        name=name,
        kind=spec.kind,
        description=spec.description,
        owner=spec.owner,
        tags=tuple(spec.tags),
        pii=tuple(spec.pii),
        upstream=list(project.deps.get(name, ())),
        downstream=sorted(n for n, ups in project.deps.items() if name in ups),
        lineage_note=info.note if info is not None else "",
    )
    schema = store.schema(name) if store.exists(name) else None
    types = {f.name: str(f.type) for f in schema} if schema else dict(spec.columns or {})
    names = list(info.columns) if info is not None and info.columns else list(types)
    for c in names:
        ref = ColumnRef(name, c)
        d.columns.append(
            {
                "name": c,
                "type": types.get(c, ""),
                "pii": c.lower() in {p.lower() for p in spec.pii},
                "checks": graph.checks_on(ref),
                "upstream": _unique(
                    f"{e.source} ({e.kind.value.lower()})" for e in graph.upstream_edges(ref)
                ),
                "downstream": _unique(
                    f"{e.target} ({e.kind.value.lower()})" for e in graph.downstream_edges(ref)
                ),
            }
        )
    records = state.check_history(pname, name, RECENT_STEPS)
    by_check: dict[str, list[Any]] = {}
    for r in records:  # newest step first
        by_check.setdefault(r.check_name, []).append(r)
    for check in spec.checks:
        hist = by_check.get(check.check_name, [])
        last = hist[0] if hist else None
        d.checks.append(
            {
                "name": check.check_name,
                "type": str(getattr(check, "type", "")),
                "dimension": str(check.dimension),
                "severity": str(check.severity),
                "description": check.description,
                "last": None
                if last is None
                else {
                    "passed": last.passed,
                    "observed": last.observed,
                    "failing_rows": last.failing_rows,
                    "fraction": last.fraction,
                    "message": last.message,
                    "expected": last.expected,
                    "at": last.finished_at,
                    "run_id": last.run_id,
                },
                "recent": [bool(r.passed) for r in reversed(hist)],
            }
        )
    score = latest_score(state.score_history(pname, name, limit=1))
    d.score = dict(score["scores"]) if score else {}
    steps = state.dataset_steps(pname, name, limit=5)
    d.steps = [
        {
            "run_id": s.run_id,
            "status": s.status,
            "rows_out": s.rows_out,
            "rows_quarantined": s.rows_quarantined,
            "finished_at": s.finished_at,
        }
        for s in steps
    ]
    d.last_step = d.steps[0] if d.steps else None
    d.freshness = _freshness(spec, store, name, now)
    d.drift = [i.to_dict() for i in drift_incidents(project, name, limit=5, graph=graph)]
    return d


def _freshness(spec: Any, store: TableStore, name: str, now: datetime) -> dict[str, Any]:
    from lockgate.ops.freshness import level_for

    last = store.last_commit(name) if store.exists(name) else None
    at = None if last is None else last.timestamp
    age = None if at is None else max(0.0, (now - at).total_seconds())
    out: dict[str, Any] = {"last_publish": at, "age_s": age, "sla": None, "level": None}
    sla = spec.freshness
    if sla is not None:
        parts = [
            f"{label} after {v:g}s"
            for label, v in (("warn", sla.warn_seconds), ("error", sla.error_seconds))
            if v is not None
        ]
        out["sla"] = ", ".join(parts)
        out["level"] = str(level_for(age, sla.warn_seconds, sla.error_seconds))
    elif spec.freshness_sla:
        out["sla"] = str(spec.freshness_sla)
    return out


def _draw(project: Project, graph: LineageGraph, docs: Sequence[DatasetDoc]) -> None:
    from lockgate.ui.lineage import column_layout, column_svg, edges_of, layout, neighbourhood

    deps = {k: tuple(v) for k, v in project.deps.items()}
    pii = {n: tuple(s.pii) for n, s in project.datasets.items()}
    for d in docs:
        names = neighbourhood(deps, d.name, 1)
        cl = column_layout(layout(tuple(sorted(names)), edges_of(deps, names)), graph)
        d.svg = str(column_svg(cl, lambda n: f"{n}.html", focus=d.name, pii=pii))


def _whole_graph(project: Project, graph: LineageGraph) -> str:
    from lockgate.ui.lineage import column_layout, column_svg, edges_of, layout

    deps = {k: tuple(v) for k, v in project.deps.items()}
    names = set(project.datasets)
    cl = column_layout(layout(tuple(sorted(names)), edges_of(deps, names)), graph)
    pii = {n: tuple(s.pii) for n, s in project.datasets.items()}
    return str(column_svg(cl, lambda n: f"datasets/{n}.html", pii=pii))


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _css() -> str:
    return (HERE / "templates" / "style.css").read_text()


def _dt(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, datetime):
        at: datetime = v if v.tzinfo is not None else v.replace(tzinfo=UTC)
        return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return str(v)


def _num(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)
