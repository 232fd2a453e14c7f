"""The project argument of the Python API: a loaded :class:`~lockgate.project.Project` or
the folder (``str`` or ``Path``) that holds its ``lockgate.yaml``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lockgate.project import Project


def as_project(project: Project | str | Path) -> Project:
    """``project`` itself, or the project loaded from that folder."""
    from lockgate.project import Project as _P
    from lockgate.project import load_project

    return project if isinstance(project, _P) else load_project(Path(project))
