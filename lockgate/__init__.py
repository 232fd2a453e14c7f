"""lockgate: quality-gated data pipelines — write, audit, publish into Delta Lake.

>>> import lockgate
>>> project = lockgate.load_project("examples/shop")          # doctest: +SKIP
>>> result = lockgate.run(project, select=["orders+"])        # doctest: +SKIP
>>> lockgate.read(project, "daily_revenue", as_="polars")     # doctest: +SKIP
"""

from __future__ import annotations

from lockgate.api import plan, quarantine, read, run, runs
from lockgate.errors import (
    ConfigError,
    GateBlocked,
    LockgateError,
    LockHeld,
    TerminalError,
    TransientError,
)
from lockgate.project import Project, load_project, transform, validate_project
from lockgate.runloop.plan import Plan, PlannedStep
from lockgate.runloop.results import RunResult, RunStatus, StepResult, StepStatus

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "GateBlocked",
    "LockHeld",
    "LockgateError",
    "Plan",
    "PlannedStep",
    "Project",
    "RunResult",
    "RunStatus",
    "StepResult",
    "StepStatus",
    "TerminalError",
    "TransientError",
    "__version__",
    "load_project",
    "plan",
    "quarantine",
    "read",
    "run",
    "runs",
    "transform",
    "validate_project",
]
