"""The Python API for notebooks and orchestrators — the same objects the CLI uses."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from lockgate._project_ref import as_project
from lockgate.dataset_view import dataset_info
from lockgate.history_view import check_history, quality, run_detail, runs, scores
from lockgate.quarantine_view import quarantine
from lockgate.quarantine_view import quarantine_page as quarantine_page

if TYPE_CHECKING:
    import pyarrow as pa

    from lockgate.project import Project
    from lockgate.runloop.events import Listener
    from lockgate.runloop.plan import Plan
    from lockgate.runloop.results import RunResult
    from lockgate.sources import Source


_project = as_project


def run(
    project: Project | str | Path = ".",
    *,
    select: Sequence[str] = (),
    full_refresh: bool = False,
    listeners: Sequence[Listener] = (),
    target: str | None = None,
    max_workers: int | None = None,
) -> RunResult:
    """Run (part of) a project's pipeline: :func:`plan` it, then execute the plan.

    Independent datasets run at the same time, at most ``max_workers`` (default: one per
    core; 1 runs them one after another in dependency order). Results are listed in the
    plan's order whatever the order they finish in.

    ``listeners`` receive the run's typed events as they happen (run/step started and
    finished, each check evaluated, published, quarantined, blocked, schema drift): see
    :mod:`lockgate.runloop.events`. A listener that raises is dropped, never fails the run.

    ``select`` takes the CLI's patterns: ``"orders"``, ``"orders+"``, ``"+orders"``.
    Raises :class:`lockgate.errors.LockHeld` if another run holds the project lock and
    :class:`lockgate.errors.ConfigError` for an invalid project; a failed or blocked step
    does not raise — inspect ``result.status`` and ``result.steps``. ``target`` selects an
    environment of ``targets:`` (as ``--target``) when ``project`` is a path.
    """
    from lockgate.runloop.runner import run as _run

    return _run(
        _project(project, target),
        select=select,
        full_refresh=full_refresh,
        listeners=listeners,
        max_workers=max_workers,
    )


def plan(
    project: Project | str | Path = ".", *, select: Sequence[str] = (), full_refresh: bool = False
) -> Plan:
    """What :func:`run` would do and why, as a frozen :class:`~lockgate.runloop.plan.Plan`
    (``plan.results()`` is the CLI's ``--dry-run``); ``lockgate.runloop.runner.execute(plan)``
    runs it."""
    from lockgate.runloop.plan import plan as _plan

    return _plan(_project(project), select=select, full_refresh=full_refresh)


def read(
    project: Project | str | Path,
    dataset: str,
    *,
    version: int | None = None,
    columns: Sequence[str] | None = None,
    as_: Literal["arrow", "polars", "pandas", "dataset"] = "arrow",
    quarantine: bool = False,
) -> Any:
    """Read a published dataset (or its quarantine) as Arrow, Polars or pandas, or — with
    ``as_="dataset"`` — as a lazily-read :class:`pyarrow.dataset.Dataset` (for scans too
    large to materialise; ``columns`` does not apply).

    ``version`` time-travels to an earlier Delta version. An unknown dataset is a
    :class:`~lockgate.errors.ConfigError` with a did-you-mean; one never published an
    :class:`~lockgate.errors.InputError`.
    """
    from lockgate.errors import InputError
    from lockgate.storage import store_for

    p = _project(project)
    p.dataset(dataset)  # unknown names: ConfigError with "did you mean"
    name = f"{dataset}__quarantine" if quarantine else dataset
    store = store_for(p.config.store, p.warehouse_path)
    if not store.exists(name):
        raise InputError(
            f"dataset '{name}' has no table in {p.warehouse_path} yet",
            hint=f"run it first: lockgate run --select {dataset}",
        )
    if as_ == "dataset":
        return store.arrow_dataset(name, version=version)
    table: pa.Table = store.read(name, version=version, columns=list(columns) if columns else None)
    if as_ == "polars":
        import polars as pl

        return pl.from_arrow(table)
    if as_ == "pandas":
        return table.to_pandas()
    return table


__all__ = [
    "check_history",
    "dataset_info",
    "materializations",
    "plan",
    "quality",
    "quarantine",
    "quarantine_page",
    "read",
    "run",
    "run_detail",
    "runs",
    "scores",
]


def cdc_status(
    project: Project | str | Path = ".", *, target: str | None = None
) -> list[dict[str, object]]:
    """Per change-source dataset: its position at the source (replication slot: retained
    WAL bytes, ``wal_status``, confirmed LSN) and the position its table holds."""
    from lockgate.storage.base import store_for

    proj = _project(project, target)
    out = []
    for spec, source in _cdc_sources(proj):
        row: dict[str, object] = {"dataset": spec.name, **source.status()}
        app_id = type(source).position_id(source.request)
        store = store_for(proj.config.store, proj.warehouse_path)
        row["table_position"] = store.txn_version(spec.name, app_id) if app_id else None
        out.append(row)
    return out


def cdc_drop_slot(
    dataset: str, project: Project | str | Path = ".", *, target: str | None = None
) -> bool:
    """Drop the replication slot of change-source dataset ``dataset`` (True if it existed)."""
    proj = _project(project, target)
    for spec, source in _cdc_sources(proj):
        if spec.name == dataset:
            return bool(source.reset())
    from lockgate.errors import UsageError

    raise UsageError(f"dataset '{dataset}' has no change source (postgres_cdc, mysql_cdc)")


def _cdc_sources(proj: Project) -> list[tuple[Any, Source]]:
    from lockgate.sources import source_for

    out: list[tuple[Any, Source]] = []
    for spec in proj.datasets.values():
        if spec.source is None:
            continue
        source = source_for(proj.source_request(spec))
        if source.SUPPORTS_CDC:
            out.append((spec, source))
    return out


def materializations(
    project: Project | str | Path = ".",
    *,
    view: str | None = None,
    limit: int = 20,
    target: str | None = None,
) -> list[dict[str, Any]]:
    """Feature-store materialisation history, newest first (``lockgate features status``):
    per view and run, the Delta versions read, mode, rows written/deleted, online store,
    started/finished and status; a run killed mid-way is shown settled as ``interrupted``
    (or ``success`` when its batch had completed): :mod:`lockgate.features.history`."""
    from lockgate.features.history import materializations as _materializations

    return _materializations(_project(project, target), view=view, limit=limit)
