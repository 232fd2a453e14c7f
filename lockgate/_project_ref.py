"""The project argument of the Python API: a loaded :class:`~lockgate.project.Project` or
the folder (``str`` or ``Path``) that holds its ``lockgate.yaml``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lockgate.project import Project


def as_project(project: Project | str | Path, target: str | None = None) -> Project:
    """``project`` itself, or the project loaded from that folder (with ``target``'s
    overrides: see ``targets:`` in lockgate.yaml)."""
    from lockgate.project import Project as _P
    from lockgate.project import load_project

    return project if isinstance(project, _P) else load_project(Path(project), target=target)


def with_dataset(project: Project | str | Path, dataset: str) -> Project:
    """The project (as :func:`as_project`), having checked that it defines ``dataset``:
    an unknown name is a :class:`~lockgate.errors.UsageError` with a did-you-mean."""
    from lockgate._suggest import did_you_mean
    from lockgate.errors import UsageError

    p = as_project(project)
    if dataset not in p.datasets:
        raise UsageError(
            f"unknown dataset '{dataset}'",
            hint=did_you_mean(dataset, p.datasets) or "see `lockgate validate`",
        )
    return p
