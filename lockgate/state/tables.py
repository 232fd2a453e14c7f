"""The current shape of the state tables (SQLAlchemy Core) used by queries.

Derived from the frozen DDL of the migrations (:mod:`lockgate.state.ddl`): the v1 tables,
the tables later migrations create and the columns they add — so each column is written
once, and a test checks that the migrated database matches. Every table carries a
``project`` column so several projects can share one PostgreSQL database, and every name
starts with ``lockgate_`` so the tables can live next to other applications' tables.
"""

from __future__ import annotations

import json
import math
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from lockgate.state import ddl
from lockgate.state.dashboard_ddl import dashboard_tables
from lockgate.state.ddl import UTCDateTime as UTCDateTime  # re-exported


def jsonable(obj: Any) -> Any:
    """Make ``obj`` JSON-safe: dates → ISO text, Decimal → float, NaN/inf → None,
    bytes → hex, sets/tuples → lists, unknown objects → ``str``."""
    if obj is None or isinstance(obj, bool | int | str):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset):
        return [jsonable(v) for v in obj]
    if isinstance(obj, datetime | date):
        return obj.isoformat()
    if isinstance(obj, Decimal):
        return jsonable(float(obj))
    if isinstance(obj, bytes):
        return obj.hex()
    if hasattr(obj, "model_dump"):
        return jsonable(obj.model_dump(mode="json"))
    if hasattr(obj, "isoformat"):  # numpy/pandas timestamps
        return str(obj.isoformat())
    if hasattr(obj, "item"):  # numpy scalars
        return jsonable(obj.item())
    return str(obj)


def json_dumps(obj: Any) -> str:
    """The engine's JSON serializer (PostgreSQL's ``json`` rejects NaN, so it is removed)."""
    return json.dumps(jsonable(obj), allow_nan=False)


metadata = sa.MetaData()

migrations_table = ddl.migrations_table(metadata)
ddl.v1_tables(metadata)
projects = ddl.projects_table(metadata)
schedule_state, alert_incidents = ddl.ops_tables(metadata)
training_sets = ddl.features_tables(metadata)
materializations = ddl.materializations_table(metadata)
daily_checks = ddl.retention_tables(metadata)
interval_ranges, definitions = ddl.partition_tables(metadata)
for _version, _table, _name, _type in ddl.ADDED_COLUMNS:
    metadata.tables[_table].append_column(sa.Column(_name, _type))

runs = metadata.tables["lockgate_runs"]
steps = metadata.tables["lockgate_steps"]
attempts = metadata.tables["lockgate_attempts"]
check_results = metadata.tables["lockgate_check_results"]
quality_scores = metadata.tables["lockgate_quality_scores"]
watermarks = metadata.tables["lockgate_watermarks"]
schema_versions = metadata.tables["lockgate_schema_versions"]
profiles = metadata.tables["lockgate_profiles"]
locks = metadata.tables["lockgate_locks"]

# SQLite only, not part of ``metadata`` (PostgreSQL allocates ``runs.seq`` itself)
run_seq = ddl.run_seq_table(sa.MetaData())

# the dashboard's tables, defined once with migration 0005
dashboard_tables(metadata, ddl.TS)
api_tokens = metadata.tables["lockgate_api_tokens"]
audit_log = metadata.tables["lockgate_audit_log"]
daily_scores = metadata.tables["lockgate_daily_scores"]
rollups = metadata.tables["lockgate_rollups"]
