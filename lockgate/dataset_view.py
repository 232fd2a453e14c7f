"""One dataset as data: definition, schema, versions, recent steps, checks, latest quality
score, schema-drift incidents and sample rows — what ``lockgate show`` renders
(``lockgate.api.dataset_info``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from lockgate._project_ref import with_dataset

if TYPE_CHECKING:
    from lockgate.project import Project

SCORE_DOC = "docs/checks.md#quality-score"
SCORE_DEFINITION = (
    "quality score = mean over the quality dimensions checked of the mean check score in "
    "each; a row-level check scores its share of passing rows, a table-level check 1 "
    "(passed) or 0 (failed)"
)


def dataset_info(
    project: Project | str | Path, dataset: str, *, sample_rows: int = 5, show_pii: bool = False
) -> dict[str, Any]:
    """One dataset as data (definition, schema, versions, recent steps, checks, latest
    quality score, sample rows): what ``lockgate show`` renders. ``schema`` is a list of
    ``{name, type}`` (None before the first publish). Personal columns of the sample are
    masked unless ``show_pii`` (:mod:`lockgate.pii`). Unknown names are
    :class:`UsageError` with a did-you-mean."""
    from lockgate.lineage.drift import drift_incidents
    from lockgate.state import StateStore
    from lockgate.storage import DeltaStore

    project = with_dataset(project, dataset)
    store = DeltaStore(project.warehouse_path)
    spec = project.datasets[dataset]
    exists = store.exists(dataset)
    schema = store.schema(dataset)
    name = project.config.name
    sample = store.read(dataset, limit=sample_rows) if exists and sample_rows > 0 else None
    with StateStore.open(project.state_url) as state:  # closed: a server calls this often
        recorded = {
            "last_steps": state.dataset_steps(name, dataset, limit=5),
            "checks": _checks(project, state.check_history(name, dataset, limit=50), show_pii),
            "score": latest_score(state.score_history(name, dataset, limit=1)),
        }
    return {
        "dataset": dataset,
        "kind": spec.kind,
        "description": spec.description,
        "write": project.effective_write(dataset).model_dump(mode="json"),
        "upstream": list(project.deps.get(dataset, ())),
        "schema": [{"name": f.name, "type": str(f.type)} for f in schema] if schema else None,
        "version": store.version(dataset),
        "history": store.history(dataset, limit=10) if exists else [],
        **recorded,
        "drift_incidents": [i.to_dict() for i in drift_incidents(project, dataset, limit=5)],
        "sample": _sample(project, dataset, sample, show_pii),
    }


def _checks(project: Project, records: list[Any], show_pii: bool) -> list[Any]:
    from lockgate.pii import mask_recorded

    return records if show_pii else mask_recorded(project, records)


def _sample(project: Project, dataset: str, sample: Any, show_pii: bool) -> list[dict[str, Any]]:
    from lockgate.pii import mask_rows, pii_columns

    rows: list[dict[str, Any]] = sample.to_pylist() if sample is not None else []
    return rows if show_pii else mask_rows(rows, pii_columns(project, dataset))


def latest_score(records: list[Any]) -> dict[str, Any] | None:
    """The newest run's scores (``overall`` and per dimension) with what they mean."""
    if not records:
        return None
    run_id = records[0].run_id
    return {
        "run_id": run_id,
        "scores": {r.dimension: r.score for r in records if r.run_id == run_id},
        "definition": SCORE_DEFINITION,
        "docs": SCORE_DOC,
    }
