"""Schema drift as incidents: what changed in a dataset's schema, in which run, and which
downstream columns and checks are affected (through column lineage).

An incident is one recorded schema version that carries drift (``lockgate_schema_versions``,
written when a step publishes a changed schema). A removed or retyped column affects what
its column lineage reaches downstream; an added column affects nothing downstream until
something reads it, and is listed as a change only. ``lockgate show`` lists a dataset's
incidents; the alert listener sends one message per incident with the same text.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from lockgate.lineage.model import ColumnRef, LineageGraph
from lockgate.lineage.query import impact

if TYPE_CHECKING:
    from lockgate.project import Project


@dataclass(frozen=True)
class DriftIncident:
    dataset: str
    version: int  # the schema version the drift produced
    run_id: str | None
    at: datetime | None
    changes: list[str]  # "removed column 'x' (was BIGINT)", ...
    affected_columns: list[str] = field(default_factory=list)  # downstream dataset.column
    affected_checks: list[str] = field(default_factory=list)  # dataset.check
    #: downstream datasets reading it through a transform without column lineage
    opaque: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["at"] = self.at.isoformat() if self.at else None
        return d

    def summary(self) -> str:
        """One line: the changes and what they reach downstream."""
        text = "; ".join(self.changes) or "schema changed"
        if self.affected_columns:
            text += f" — affects {', '.join(self.affected_columns[:8])}"
            if len(self.affected_columns) > 8:
                text += f" (+{len(self.affected_columns) - 8} more)"
        if self.affected_checks:
            text += f"; checks: {', '.join(self.affected_checks[:8])}"
        if self.opaque:
            text += f"; may affect (no column lineage): {', '.join(self.opaque)}"
        return text


def describe(drift: Mapping[str, Any]) -> list[str]:
    """The changes of a drift record (``Drift.to_dict()``) in words."""
    out = [f"added column '{c}' {t}" for c, t in (drift.get("added") or {}).items()]
    out += [f"removed column '{c}' (was {t})" for c, t in (drift.get("removed") or {}).items()]
    for c, types in (drift.get("type_changed") or {}).items():
        a, b = [*list(types), "?", "?"][:2]
        out.append(f"column '{c}' changed type {a} -> {b}")
    return out


def incident(
    graph: LineageGraph | None,
    dataset: str,
    drift: Mapping[str, Any],
    *,
    version: int = 0,
    run_id: str | None = None,
    at: datetime | None = None,
) -> DriftIncident:
    """The incident of one drift: the columns it breaks or changes, followed downstream."""
    touched = [*(drift.get("removed") or {}), *(drift.get("type_changed") or {})]
    cols: list[str] = []
    checks: list[str] = []
    opaque: list[str] = []
    if graph is not None and dataset in graph.datasets:
        for column in touched:
            imp = impact(graph, ColumnRef(dataset, column))
            for c in imp.columns:
                if c["node"] not in cols:
                    cols.append(c["node"])
            for ch in imp.checks:
                key = f"{ch['dataset']}.{ch['check']}"
                if key not in checks:
                    checks.append(key)
            opaque += [o for o in imp.opaque if o not in opaque]
    return DriftIncident(dataset, version, run_id, at, describe(drift), cols, checks, opaque)


def drift_incidents(
    project: Project, dataset: str, *, limit: int = 10, graph: LineageGraph | None = None
) -> list[DriftIncident]:
    """The dataset's schema-drift incidents, newest first (at most ``limit``)."""
    from lockgate.state import StateStore
    from lockgate.state.dashboard import schema_versions

    with StateStore.open(project.state_url) as state:
        versions = schema_versions(state, project.config.name, dataset, limit=limit * 4)
    drifted = [v for v in versions if v.get("drift") and describe(v["drift"])][:limit]
    if not drifted:
        return []
    if graph is None:
        from lockgate.lineage import project_lineage

        graph = project_lineage(project, warehouse=False)
    return [
        incident(
            graph,
            dataset,
            v["drift"],
            version=int(v["version"]),
            run_id=v.get("run_id"),
            at=v.get("created_at"),
        )
        for v in drifted
    ]
