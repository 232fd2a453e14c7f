"""The Python API for notebooks and orchestrators — the same objects the CLI uses."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import pyarrow as pa

    from lockgate.project import Project
    from lockgate.quarantine_view import QuarantineView
    from lockgate.runloop.events import Listener
    from lockgate.runloop.results import RunResult, StepResult


def _project(project: Project | str | Path, target: str | None = None) -> Project:
    from lockgate.project import Project as _P
    from lockgate.project import load_project

    return project if isinstance(project, _P) else load_project(Path(project), target=target)


def run(
    project: Project | str | Path = ".",
    *,
    select: Sequence[str] = (),
    full_refresh: bool = False,
    listeners: Sequence[Listener] = (),
    target: str | None = None,
) -> RunResult:
    """Run (part of) a project's pipeline.

    ``listeners`` receive the run's typed events as they happen (run/step started and
    finished, each check evaluated, published, quarantined, blocked, schema drift): see
    :mod:`lockgate.runloop.events`. A listener that raises is dropped, never fails the run.

    ``select`` takes the CLI's patterns: ``"orders"``, ``"orders+"``, ``"+orders"``.
    Raises :class:`lockgate.errors.LockHeld` if another run holds the project lock and
    :class:`lockgate.errors.ConfigError` for an invalid project; a failed or blocked step
    does not raise — inspect ``result.status`` and ``result.steps``. ``target`` selects an
    environment of ``targets:`` (as ``--target``) when ``project`` is a path.
    """
    from lockgate.runloop.runner import execute

    return execute(
        _project(project, target), select=select, full_refresh=full_refresh, listeners=listeners
    )


def plan(
    project: Project | str | Path = ".", *, select: Sequence[str] = (), full_refresh: bool = False
) -> list[StepResult]:
    """What :func:`run` would do and why (the CLI's ``--dry-run``)."""
    from lockgate.runloop.runner import plan as _plan

    return _plan(_project(project), select=select, full_refresh=full_refresh)


def read(
    project: Project | str | Path,
    dataset: str,
    *,
    version: int | None = None,
    columns: Sequence[str] | None = None,
    as_: Literal["arrow", "polars", "pandas"] = "arrow",
    quarantine: bool = False,
) -> Any:
    """Read a published dataset (or its quarantine) as Arrow, Polars or pandas.

    ``version`` time-travels to an earlier Delta version.
    """
    from lockgate.storage import store_for

    p = _project(project)
    name = f"{dataset}__quarantine" if quarantine else dataset
    table: pa.Table = store_for(p.config.store, p.warehouse_path).read(
        name, version=version, columns=list(columns) if columns else None
    )
    if as_ == "polars":
        import polars as pl

        return pl.from_arrow(table)
    if as_ == "pandas":
        return table.to_pandas()
    return table


def quarantine(
    project: Project | str | Path,
    dataset: str,
    *,
    run: str | None = None,
    check: str | None = None,
    include_history: bool = False,
    limit: int = 20,
) -> QuarantineView:
    """A dataset's quarantined rows (newest first, each with the checks it failed and why)
    and their counts by check; rows of batches a later run replaced only with
    ``include_history``. The data behind ``lockgate quarantine``."""
    from lockgate.quarantine_view import quarantine_view

    return quarantine_view(
        _project(project),
        dataset,
        run=run,
        check=check,
        include_history=include_history,
        limit=limit,
    )


def dataset_info(
    project: Project | str | Path, dataset: str, *, sample_rows: int = 5
) -> dict[str, Any]:
    """One dataset as data (definition, schema, versions, recent steps, checks, latest quality
    score, sample rows): what ``lockgate show`` renders."""
    from lockgate.dataset_view import dataset_info as _info

    return _info(_project(project), dataset, sample_rows=sample_rows)


def runs(project: Project | str | Path = ".", *, limit: int = 20) -> list[Any]:
    """Run history, newest first."""
    from lockgate.state import StateStore

    p = _project(project)
    return list(StateStore.open(p.state_url).list_runs(p.config.name, limit=limit))
