"""lockgate: quality-gated data pipelines — write, audit, publish into Delta Lake.

>>> import lockgate
>>> project = lockgate.load_project("examples/shop")          # doctest: +SKIP
>>> result = lockgate.run(project, select=["orders+"])        # doctest: +SKIP
>>> lockgate.read(project, "daily_revenue", as_="polars")     # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lockgate._lazy import exports, lazy_exports

if TYPE_CHECKING:
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

# Public names, imported on first use: ``import lockgate.errors`` or the ``lockgate`` command
# does not pay for the whole platform (pyarrow, DuckDB, sqlglot, SQLAlchemy) up front.
__getattr__, __dir__ = lazy_exports(
    globals(),
    exports(
        **{
            "lockgate.api": ["plan", "quarantine", "read", "run", "runs"],
            "lockgate.errors": [
                "ConfigError",
                "GateBlocked",
                "LockgateError",
                "LockHeld",
                "TerminalError",
                "TransientError",
            ],
            "lockgate.project": ["Project", "load_project", "transform", "validate_project"],
            "lockgate.runloop.plan": ["Plan", "PlannedStep"],
            "lockgate.runloop.results": ["RunResult", "RunStatus", "StepResult", "StepStatus"],
        }
    ),
)

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
