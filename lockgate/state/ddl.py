"""The frozen DDL of the state tables: what each released migration creates.

:mod:`lockgate.state.migrations` applies these definitions and :mod:`lockgate.state.tables`
derives the current shape from them (the v1 tables plus the columns later migrations add),
so each column is written once. **Never edit a definition here**: a database migrated by
an older lockgate must keep matching; change the schema with a new migration instead.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect


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


TS = UTCDateTime
JSONType = sa.JSON


def _id() -> sa.Column[int]:
    return sa.Column("id", sa.Integer, primary_key=True, autoincrement=True)


def _fk(name: str, type_: sa.types.TypeEngine[Any], target: str) -> sa.Column[Any]:
    return sa.Column(name, type_, sa.ForeignKey(target, ondelete="CASCADE"), nullable=False)


def _owner(*names: str) -> list[sa.Column[str]]:
    """``project`` and ``dataset`` (required), and ``run_id`` (required) if named."""
    cols = {
        "run_id": sa.Column("run_id", sa.String(32), nullable=False),
        "project": sa.Column("project", sa.String(200), nullable=False),
        "dataset": sa.Column("dataset", sa.String(200), nullable=False),
    }
    return [cols[n] for n in names]


def _key(*names: str) -> list[sa.Column[str]]:
    """The primary key: ``project`` (and ``dataset``) names."""
    return [sa.Column(n, sa.String(200), primary_key=True) for n in names]


def migrations_table(md: sa.MetaData) -> sa.Table:
    """Which migrations a database has applied."""
    return sa.Table(
        "lockgate_migrations",
        md,
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("applied_at", TS, nullable=False),
    )


def run_seq_table(md: sa.MetaData) -> sa.Table:
    """SQLite only: AUTOINCREMENT never hands out a number twice, even after deletes."""
    return sa.Table(
        "lockgate_run_seq",
        md,
        sa.Column("seq", sa.Integer, primary_key=True),
        sqlite_autoincrement=True,
    )


def v1_tables(md: sa.MetaData) -> None:
    """The tables and indexes of migration 0001."""
    sa.Table(
        "lockgate_runs",
        md,
        sa.Column("run_id", sa.String(32), primary_key=True),
        # PostgreSQL: identity column; SQLite: allocated from lockgate_run_seq (AUTOINCREMENT)
        sa.Column("seq", sa.BigInteger, sa.Identity(), nullable=False, unique=True),
        *_owner("project"),
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
    )
    sa.Table(
        "lockgate_steps",
        md,
        _id(),
        _fk("run_id", sa.String(32), "lockgate_runs.run_id"),
        *_owner("project", "dataset"),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("finished_at", TS),
        sa.Column("duration_s", sa.Float),
        sa.Column("attempts", sa.Integer),
        sa.Column("rows_in", sa.BigInteger),
        sa.Column("rows_out", sa.BigInteger),
        sa.Column("rows_quarantined", sa.BigInteger),
        sa.Column("input_versions", JSONType),
        sa.Column("output_version", sa.BigInteger),
        sa.Column("quarantine_version", sa.BigInteger),
        sa.Column("watermark", sa.Text),
        sa.Column("schema_version", sa.Integer),
        sa.Column("batch_id", sa.String(64)),
        sa.Column("message", sa.Text),
    )
    sa.Table(
        "lockgate_attempts",
        md,
        _id(),
        _fk("step_id", sa.Integer(), "lockgate_steps.id"),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("started_at", TS),
        sa.Column("finished_at", TS),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("transient", sa.Boolean, nullable=False),
    )
    sa.Table(
        "lockgate_check_results",
        md,
        _id(),
        _fk("step_id", sa.Integer(), "lockgate_steps.id"),
        *_owner("run_id", "project", "dataset"),
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
    sa.Table(
        "lockgate_quality_scores",
        md,
        _id(),
        *_owner("run_id", "project", "dataset"),
        sa.Column("dimension", sa.String(50), nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    sa.Table(
        "lockgate_watermarks",
        md,
        *_key("project", "dataset"),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("value_type", sa.String(50)),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("run_id", sa.String(32)),
    )
    sa.Table(
        "lockgate_schema_versions",
        md,
        _id(),
        *_owner("project", "dataset"),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("schema", JSONType, nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("drift", JSONType),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("run_id", sa.String(32)),
        sa.UniqueConstraint("project", "dataset", "version", name="uq_lockgate_schema_version"),
    )
    sa.Table(
        "lockgate_profiles",
        md,
        _id(),
        *_owner("project", "dataset"),
        sa.Column("run_id", sa.String(32)),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("profile", JSONType, nullable=False),
    )
    sa.Table(
        "lockgate_locks",
        md,
        *_key("project"),
        sa.Column("holder", sa.String(32), nullable=False),
        sa.Column("pid", sa.Integer),
        sa.Column("host", sa.String(255)),
        sa.Column("acquired_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("heartbeat_at", TS),
    )
    t = md.tables
    for name, (table, cols) in V1_INDEXES.items():
        sa.Index(name, *(t[table].c[c] for c in cols))


V1_INDEXES = {
    "ix_lockgate_runs_project_seq": ("lockgate_runs", ("project", "seq")),
    "ix_lockgate_steps_dataset": ("lockgate_steps", ("project", "dataset", "id")),
    "ix_lockgate_steps_run": ("lockgate_steps", ("run_id",)),
    "ix_lockgate_attempts_step": ("lockgate_attempts", ("step_id",)),
    "ix_lockgate_checks_step": ("lockgate_check_results", ("step_id",)),
    "ix_lockgate_checks_dataset": ("lockgate_check_results", ("project", "dataset", "step_id")),
    "ix_lockgate_scores_dataset": ("lockgate_quality_scores", ("project", "dataset", "id")),
    "ix_lockgate_profiles_dataset": ("lockgate_profiles", ("project", "dataset", "id")),
}


def projects_table(md: sa.MetaData) -> sa.Table:
    """Migration 0002: one row per project name, the identity of its warehouse."""
    return sa.Table(
        "lockgate_projects",
        md,
        sa.Column("project", sa.String(200), primary_key=True),
        sa.Column("project_id", sa.String(32), nullable=False),
        sa.Column("warehouse", sa.Text, nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("registered_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )


def ops_tables(md: sa.MetaData) -> tuple[sa.Table, sa.Table]:
    """Migration 0006: the scheduler's last fired tick per schedule, and the open alert
    incidents (one row per problem until it recovers: alerts fire once per incident)."""
    schedule_state = sa.Table(
        "lockgate_schedule_state",
        md,
        sa.Column("project", sa.String(200), primary_key=True),
        sa.Column("schedule", sa.String(200), primary_key=True),
        sa.Column("last_tick", TS, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),  # baseline / running / done
        sa.Column("run_id", sa.String(32)),
        sa.Column("run_status", sa.String(16)),
        sa.Column("updated_at", TS, nullable=False),
    )
    incidents = sa.Table(
        "lockgate_alert_incidents",
        md,
        sa.Column("project", sa.String(200), primary_key=True),
        sa.Column("dataset", sa.String(200), primary_key=True),
        sa.Column("problem", sa.String(400), primary_key=True),  # check name, gate, step…
        sa.Column("event", sa.String(40), nullable=False),
        sa.Column("opened_at", TS, nullable=False),
        sa.Column("run_id", sa.String(32)),
    )
    return schedule_state, incidents


def features_tables(md: sa.MetaData) -> sa.Table:
    """Migration 0008: every training set made, with what it was made from (the feature
    tables' pinned Delta versions, the entity rows' hash and kept copy) and the hash of the
    result, so ``lockgate features training-set --replay ID`` re-creates it exactly and
    retention keeps the versions it pins."""
    return sa.Table(
        "lockgate_training_sets",
        md,
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("project", sa.String(200), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("features", JSONType(), nullable=False),  # the refs asked for
        sa.Column("options", JSONType(), nullable=False),  # timestamp column, names
        sa.Column("views", JSONType(), nullable=False),  # view -> dataset, version, strategy
        sa.Column("entities", JSONType(), nullable=False),  # kind, sha256, rows, copy
        sa.Column("rows", sa.BigInteger, nullable=False),
        sa.Column("result_sha256", sa.String(64), nullable=False),
        sa.Index("ix_lockgate_training_sets_project", "project", "created_at"),
    )


def materializations_table(md: sa.MetaData) -> sa.Table:
    """Migration 0011: every materialisation of a feature view into the online store (#13):
    the Delta versions read, rows written and deleted, the store, when, and how it ended.
    ``status`` is written ``running`` first; ``pid``/``host`` and the ``mark`` the run was
    about to write let a reader tell a killed run from a live one, and whether the killed run
    had in fact completed its batch."""
    return sa.Table(
        "lockgate_materializations",
        md,
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("run_id", sa.String(32), nullable=False),  # one `materialize` call
        sa.Column("project", sa.String(200), nullable=False),
        sa.Column("view", sa.String(200), nullable=False),
        sa.Column("dataset", sa.String(200), nullable=False),
        sa.Column("online_store", sa.Text, nullable=False),  # kind and location, redacted
        sa.Column("mode", sa.String(20)),  # full / incremental / unchanged
        sa.Column("reason", sa.Text),
        sa.Column("from_version", sa.BigInteger),
        sa.Column("to_version", sa.BigInteger),
        sa.Column("rows_written", sa.BigInteger),
        sa.Column("rows_deleted", sa.BigInteger),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("finished_at", TS),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("pid_started", sa.BigInteger),  # the process's start (Linux): a reused pid
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("mark", sa.Text),  # the mark this run writes last (JSON)
        sa.Index("ix_lockgate_materializations_view", "project", "view", "started_at"),
    )


def partition_tables(md: sa.MetaData) -> tuple[sa.Table, sa.Table]:
    """Migration 0007: the done intervals of time-partitioned datasets as merged ranges
    (``[lo, hi)`` UTC epoch seconds; a year of done days is one row), and every definition a
    run used, by hash (``lockgate replay`` rebuilds from the definition as it was)."""
    ranges = sa.Table(
        "lockgate_intervals",
        md,
        sa.Column("project", sa.String(200), primary_key=True),
        sa.Column("dataset", sa.String(200), primary_key=True),
        sa.Column("lo", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("hi", sa.BigInteger, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    definitions = sa.Table(
        "lockgate_definitions",
        md,
        sa.Column("project", sa.String(200), primary_key=True),
        sa.Column("hash", sa.String(32), primary_key=True),
        sa.Column("dataset", sa.String(200), nullable=False),
        sa.Column("body", JSONType, nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    return ranges, definitions


#: columns later migrations add with ALTER TABLE: (migration, table, column)
ADDED_COLUMNS = (
    (2, "lockgate_runs", "project_id", sa.String(32)),
    (3, "lockgate_steps", "rows_skipped", sa.BigInteger()),
    (3, "lockgate_steps", "skip_reasons", JSONType()),
    # an anomaly check's expected band: {median, low, high, history, score}
    (10, "lockgate_check_results", "expected", JSONType()),
    (7, "lockgate_steps", "cost", JSONType()),
    # the content hash a done range was published under (NULL: recorded before 0012)
    (12, "lockgate_intervals", "definition", sa.String(32)),
    # when an open incident last alerted (NULL: at opened_at) and how many reminders it sent
    (12, "lockgate_alert_incidents", "notified_at", TS()),
    (12, "lockgate_alert_incidents", "reminders", sa.Integer()),
    # how bad the open problem is (freshness: warn / error): a worse one alerts again
    (12, "lockgate_alert_incidents", "level", sa.String(16)),
)


def retention_tables(md: sa.MetaData) -> sa.Table:
    """Migration 0010: daily check aggregates of pruned history (retention keeps these when
    it deletes runs, steps and check results older than its horizon)."""
    key = sa.String(300)
    return sa.Table(
        "lockgate_daily_checks",
        md,
        sa.Column("project", sa.String(200), primary_key=True),
        sa.Column("dataset", sa.String(200), primary_key=True),
        sa.Column("check_name", key, primary_key=True),
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("results", sa.Integer, nullable=False),
        sa.Column("failed", sa.Integer, nullable=False),
        sa.Column("observed_total", sa.Float),
        sa.Column("observed_n", sa.Integer, nullable=False),
    )
