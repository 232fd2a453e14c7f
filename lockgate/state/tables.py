"""The current shape of the state tables (SQLAlchemy Core) used by queries.

The DDL that *creates* them lives in :mod:`lockgate.state.migrations` (numbered, frozen);
a test checks that the migrated database matches these definitions. Every table carries a
``project`` column so several projects can share one PostgreSQL database, and every name
starts with ``lockgate_`` so the tables can live next to other applications' tables.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

from lockgate.state.dashboard_ddl import dashboard_tables


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Timezone-aware UTC timestamps on every backend.

    PostgreSQL stores ``timestamptz``. SQLite has no time zones: values are stored as naive
    UTC text (so they compare correctly as strings) and come back with ``tzinfo=UTC``.
    A naive value passed in is taken to be UTC.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


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

TS = UTCDateTime
JSONType = sa.JSON

migrations_table = sa.Table(
    "lockgate_migrations",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("applied_at", TS, nullable=False),
)

runs = sa.Table(
    "lockgate_runs",
    metadata,
    sa.Column("run_id", sa.String(32), primary_key=True),
    # PostgreSQL: identity column; SQLite: allocated from lockgate_run_seq (AUTOINCREMENT)
    sa.Column("seq", sa.BigInteger, sa.Identity(), nullable=False, unique=True),
    sa.Column("project", sa.String(200), nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("started_at", TS, nullable=False),
    sa.Column("finished_at", TS),
    sa.Column("duration_s", sa.Float),
    sa.Column("selection", sa.Text),
    sa.Column("args", JSONType),
    sa.Column("summary", JSONType),
    sa.Column("error", sa.Text),
    sa.Column("pid", sa.Integer),
    sa.Column("host", sa.String(255)),
    sa.Column("project_id", sa.String(32)),  # the warehouse identity the run ran under
)

# One row per project name: the identity (``project_id``) of the warehouse it belongs to.
projects = sa.Table(
    "lockgate_projects",
    metadata,
    sa.Column("project", sa.String(200), primary_key=True),
    sa.Column("project_id", sa.String(32), nullable=False),
    sa.Column("warehouse", sa.Text, nullable=False),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("registered_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
)

# SQLite only: AUTOINCREMENT never hands out a number twice, even after deletes.
run_seq = sa.Table(
    "lockgate_run_seq",
    sa.MetaData(),
    sa.Column("seq", sa.Integer, primary_key=True),
    sqlite_autoincrement=True,
)

steps = sa.Table(
    "lockgate_steps",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "run_id",
        sa.String(32),
        sa.ForeignKey("lockgate_runs.run_id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("project", sa.String(200), nullable=False),
    sa.Column("dataset", sa.String(200), nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("reason", sa.Text),
    sa.Column("started_at", TS, nullable=False),
    sa.Column("finished_at", TS),
    sa.Column("duration_s", sa.Float),
    sa.Column("attempts", sa.Integer),
    sa.Column("rows_in", sa.BigInteger),
    sa.Column("rows_out", sa.BigInteger),
    sa.Column("rows_quarantined", sa.BigInteger),
    sa.Column("rows_skipped", sa.BigInteger),  # 0003
    sa.Column("skip_reasons", JSONType),  # 0003: reason -> rows
    sa.Column("input_versions", JSONType),
    sa.Column("output_version", sa.BigInteger),
    sa.Column("quarantine_version", sa.BigInteger),
    sa.Column("watermark", sa.Text),
    sa.Column("schema_version", sa.Integer),
    sa.Column("batch_id", sa.String(64)),
    sa.Column("message", sa.Text),
)

attempts = sa.Table(
    "lockgate_attempts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "step_id",
        sa.Integer,
        sa.ForeignKey("lockgate_steps.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("started_at", TS),
    sa.Column("finished_at", TS),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("error", sa.Text),
    sa.Column("transient", sa.Boolean, nullable=False),
)

check_results = sa.Table(
    "lockgate_check_results",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "step_id",
        sa.Integer,
        sa.ForeignKey("lockgate_steps.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("run_id", sa.String(32), nullable=False),
    sa.Column("project", sa.String(200), nullable=False),
    sa.Column("dataset", sa.String(200), nullable=False),
    sa.Column("check_name", sa.String(300), nullable=False),
    sa.Column("check_type", sa.String(100)),
    sa.Column("dimension", sa.String(50)),
    sa.Column("severity", sa.String(20)),
    sa.Column("failing_rows", sa.BigInteger),
    sa.Column("fraction", sa.Float),
    sa.Column("passed", sa.Boolean, nullable=False),
    sa.Column("observed", sa.Float),
    sa.Column("samples", JSONType),
    sa.Column("seconds", sa.Float),
    sa.Column("message", sa.Text),
)

quality_scores = sa.Table(
    "lockgate_quality_scores",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(32), nullable=False),
    sa.Column("project", sa.String(200), nullable=False),
    sa.Column("dataset", sa.String(200), nullable=False),
    sa.Column("dimension", sa.String(50), nullable=False),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("created_at", TS, nullable=False),
)

watermarks = sa.Table(
    "lockgate_watermarks",
    metadata,
    sa.Column("project", sa.String(200), primary_key=True),
    sa.Column("dataset", sa.String(200), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("value_type", sa.String(50)),
    sa.Column("updated_at", TS, nullable=False),
    sa.Column("run_id", sa.String(32)),
)

schema_versions = sa.Table(
    "lockgate_schema_versions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("project", sa.String(200), nullable=False),
    sa.Column("dataset", sa.String(200), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("schema", JSONType, nullable=False),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("drift", JSONType),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("run_id", sa.String(32)),
    sa.UniqueConstraint("project", "dataset", "version", name="uq_lockgate_schema_version"),
)

profiles = sa.Table(
    "lockgate_profiles",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("project", sa.String(200), nullable=False),
    sa.Column("dataset", sa.String(200), nullable=False),
    sa.Column("run_id", sa.String(32)),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("profile", JSONType, nullable=False),
)

locks = sa.Table(
    "lockgate_locks",
    metadata,
    sa.Column("project", sa.String(200), primary_key=True),
    sa.Column("holder", sa.String(32), nullable=False),
    sa.Column("pid", sa.Integer),
    sa.Column("host", sa.String(255)),
    sa.Column("acquired_at", TS, nullable=False),
    sa.Column("expires_at", TS, nullable=False),
    sa.Column("heartbeat_at", TS),
)

# the dashboard's tables, defined once with migration 0005
dashboard_tables(metadata, TS)
api_tokens = metadata.tables["lockgate_api_tokens"]
audit_log = metadata.tables["lockgate_audit_log"]
daily_scores = metadata.tables["lockgate_daily_scores"]
rollups = metadata.tables["lockgate_rollups"]
