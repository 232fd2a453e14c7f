"""The engine seam (:class:`Engine`, its registry) and the DuckDB adapter (``session``)."""

from lockgate.engine.base import (
    DEFAULT_ENGINE,
    Engine,
    EngineError,
    engine_class,
    engine_for,
    register_engine,
    registered_engines,
)

__all__ = [
    "DEFAULT_ENGINE",
    "Engine",
    "EngineError",
    "engine_class",
    "engine_for",
    "register_engine",
    "registered_engines",
]
