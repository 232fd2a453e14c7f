"""Targets (environments) and the checks that tie sources to their adapters and connections.

``lockgate.yaml``::

    connections:
      shop_db: {type: postgres, url: "${SHOP_DB_URL}"}
    targets:
      dev:  {warehouse: warehouse_dev, state: "sqlite:///.lockgate/dev.db"}
      prod:
        warehouse: /data/warehouse
        state: "postgresql://lockgate@state-db/lockgate"
        connections:
          shop_db: {type: postgres, url: "file:/run/secrets/shop_db_url"}
    default_target: dev

The target is the one named by ``--target`` (``load_project(target=…)``), else the
``LOCKGATE_TARGET`` environment variable, else ``default_target``, else none (the
top-level values as written).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

from lockgate._suggest import did_you_mean
from lockgate._yaml import LineDict
from lockgate.errors import Problem
from lockgate.project.models import DatasetSpec, ProjectConfig
from lockgate.sources import registered_types, source_class

TARGET_ENV = "LOCKGATE_TARGET"
CONFIG_FILE = "lockgate.yaml"


def select_target(
    config: ProjectConfig, raw: Any, explicit: str | None
) -> tuple[ProjectConfig, str | None, list[Problem]]:
    """(config with the target's overrides, target name, problems)."""
    name, origin = explicit, "--target"
    if not name and os.environ.get(TARGET_ENV):
        name, origin = os.environ[TARGET_ENV], TARGET_ENV
    if not name and config.default_target:
        name, origin = config.default_target, "default_target"
    if not name:
        return config, None, []
    if name in config.targets:
        return config.with_target(name), name, []
    known = sorted(config.targets)
    line = None
    if isinstance(raw, LineDict):
        key = "default_target" if origin == "default_target" else "targets"
        line = raw.key_line(key) if key in raw else None
    hint = did_you_mean(name, known) or (
        f"known targets: {', '.join(known)}" if known else "define it under 'targets:'"
    )
    problem = Problem(f"unknown target '{name}' ({origin})", CONFIG_FILE, line, hint=hint)
    return config, None, [problem]


def source_problems(
    config: ProjectConfig, datasets: Iterable[tuple[DatasetSpec, Any]]
) -> list[Problem]:
    """Each source dataset against its adapter's capability flags and the connections."""
    problems: list[Problem] = []
    for spec, raw in datasets:
        if spec.source is None:
            continue
        cls = source_class(str(getattr(spec.source, "type", "?")))
        source_raw = raw.get("source") if isinstance(raw, LineDict) else None
        if spec.incremental is not None and not cls.SUPPORTS_INCREMENTAL:
            problems.append(
                Problem(
                    f"dataset '{spec.name}': source type '{cls.TYPE}' does not support "
                    "'incremental:'",
                    spec.defined_in,
                    _line(raw, "incremental", spec.defined_line),
                    hint="remove 'incremental:' (each run reads the whole source); sources "
                    "that support it: " + ", ".join(_incremental_types()),
                )
            )
        if cls.SUPPORTS_CDC:
            problems.extend(_cdc_problems(config, spec, raw))
        name = spec.source.connection_name()
        if name is not None and name not in config.connections:
            problems.append(_unknown_connection(spec, name, config.connections, source_raw))
    return problems


def _cdc_problems(config: ProjectConfig, spec: DatasetSpec, raw: Any) -> list[Problem]:
    """A change source upserts by key: its dataset must merge on the table's key."""
    from lockgate.project.models import WriteMode

    write = spec.write
    mode = write.mode if "mode" in write.model_fields_set else config.defaults.write_mode
    if mode == WriteMode.MERGE and write.keys:
        return []
    return [
        Problem(
            f"dataset '{spec.name}': a change source (type '{getattr(spec.source, 'type', '?')}') "
            "needs write: {mode: merge, keys: [...]} (the table's primary key)",
            spec.defined_in,
            _line(raw, "write", spec.defined_line),
            hint="add write: {mode: merge, keys: [id]} with the primary-key columns",
        )
    ]


def _unknown_connection(
    spec: DatasetSpec, name: str, known: Mapping[str, Any], source_raw: Any
) -> Problem:
    hint = did_you_mean(name, known) or (
        f"known connections: {', '.join(sorted(known))}"
        if known
        else f"define it in {CONFIG_FILE} under 'connections:'"
    )
    return Problem(
        f"dataset '{spec.name}': unknown connection '{name}'",
        spec.defined_in,
        _line(source_raw, "connection", spec.defined_line),
        hint=hint,
    )


def _line(raw: Any, key: str, default: int | None) -> int | None:
    if isinstance(raw, LineDict) and key in raw:
        line: int | None = raw.key_line(key)
        return line
    return default


def _incremental_types() -> list[str]:
    return [t for t in registered_types() if source_class(t).SUPPORTS_INCREMENTAL]
