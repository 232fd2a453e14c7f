"""Projects: ``lockgate.yaml`` + dataset YAML/SQL/Python → an immutable :class:`Project`.

>>> from lockgate.project import load_project  # doctest: +SKIP
>>> project = load_project("my_project")  # doctest: +SKIP
>>> project.select(["+orders"])  # doctest: +SKIP
"""

from __future__ import annotations

from lockgate.project.loader import load_project, validate_project
from lockgate.project.project import Project
from lockgate.project.python import TransformFunction, transform
from lockgate.project.scaffold import init_project
from lockgate.project.schema import json_schema

__all__ = [
    "Project",
    "TransformFunction",
    "init_project",
    "json_schema",
    "load_project",
    "transform",
    "validate_project",
]
