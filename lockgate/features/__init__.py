"""The feature store: feature views over datasets, point-in-time training sets.

>>> import lockgate.features as lf  # doctest: +SKIP
>>> table = lf.training_set(project, "churn_model", labels)  # doctest: +SKIP

Definitions live in :mod:`lockgate.features.definitions` (loaded with the project); the
offline (point-in-time) join in :mod:`lockgate.features.offline`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

# the project package loads feature definitions: initialise it first, so importing
# lockgate.features (or a submodule) before lockgate.project never meets a half-built module
import lockgate.project  # noqa: F401

if TYPE_CHECKING:
    from lockgate.features.offline import point_in_time, training_set

__all__ = ["point_in_time", "training_set"]


def __getattr__(name: str) -> Any:  # PEP 562: the DuckDB/Delta side is imported when used
    if name in __all__:
        from lockgate.features import offline

        return getattr(offline, name)
    raise AttributeError(f"module 'lockgate.features' has no attribute {name!r}")
