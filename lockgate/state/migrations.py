"""Numbered, append-only migrations of the state database.

Each migration is a function taking a :class:`sqlalchemy.Connection`; :func:`migrate` applies
the missing ones in order, **one transaction each**, and records them in
``lockgate_migrations(version, name, applied_at)``. Concurrent openers are serialised (a
PostgreSQL transaction-scoped advisory lock; SQLite ``BEGIN IMMEDIATE``, which the store
emits for every transaction) and re-read the applied versions under that lock, so a migration
is never applied twice. A database whose version is newer than :data:`LATEST_VERSION` is
refused with :class:`StateSchemaError` instead of being written by older code.

Never edit a released migration: its DDL is frozen here (not imported from
:mod:`lockgate.state.tables`), so that ``0001`` still builds the v1 schema after later
migrations change the tables. Add ``0002_...`` and update ``tables.py`` together.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from lockgate.state.dashboard_ddl import dashboard_tables
from lockgate.state.errors import StateSchemaError
from lockgate.state.tables import UTCDateTime, migrations_table, run_seq

log = logging.getLogger(__name__)

TS = UTCDateTime
JSONType = sa.JSON

#: key of the PostgreSQL advisory lock that serialises migrations (any fixed bigint)
ADVISORY_LOCK_KEY = 0x6C6F636B67617465  # "lockgate"


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    apply: Callable[[Connection], None]


def _0001_initial(conn: Connection) -> None:
    md = sa.MetaData()
    sa.Table(
        "lockgate_runs",
        md,
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
    )

    sa.Table(
        "lockgate_steps",
        md,
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

    sa.Table(
        "lockgate_check_results",
        md,
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

    sa.Table(
        "lockgate_quality_scores",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("project", sa.String(200), nullable=False),
        sa.Column("dataset", sa.String(200), nullable=False),
        sa.Column("dimension", sa.String(50), nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )

    sa.Table(
        "lockgate_watermarks",
        md,
        sa.Column("project", sa.String(200), primary_key=True),
        sa.Column("dataset", sa.String(200), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("value_type", sa.String(50)),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("run_id", sa.String(32)),
    )

    sa.Table(
        "lockgate_schema_versions",
        md,
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

    sa.Table(
        "lockgate_profiles",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("project", sa.String(200), nullable=False),
        sa.Column("dataset", sa.String(200), nullable=False),
        sa.Column("run_id", sa.String(32)),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("profile", JSONType, nullable=False),
    )

    sa.Table(
        "lockgate_locks",
        md,
        sa.Column("project", sa.String(200), primary_key=True),
        sa.Column("holder", sa.String(32), nullable=False),
        sa.Column("pid", sa.Integer),
        sa.Column("host", sa.String(255)),
        sa.Column("acquired_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("heartbeat_at", TS),
    )
    t = md.tables
    indexes = {
        "ix_lockgate_runs_project_seq": ("lockgate_runs", ("project", "seq")),
        "ix_lockgate_steps_dataset": ("lockgate_steps", ("project", "dataset", "id")),
        "ix_lockgate_steps_run": ("lockgate_steps", ("run_id",)),
        "ix_lockgate_attempts_step": ("lockgate_attempts", ("step_id",)),
        "ix_lockgate_checks_step": ("lockgate_check_results", ("step_id",)),
        "ix_lockgate_checks_dataset": ("lockgate_check_results", ("project", "dataset", "step_id")),
        "ix_lockgate_scores_dataset": ("lockgate_quality_scores", ("project", "dataset", "id")),
        "ix_lockgate_profiles_dataset": ("lockgate_profiles", ("project", "dataset", "id")),
    }
    for name, (table, cols) in indexes.items():
        sa.Index(name, *(t[table].c[c] for c in cols))
    md.create_all(conn)
    if conn.dialect.name == "sqlite":
        run_seq.create(conn)


def _0002_project_identity(conn: Connection) -> None:
    """Which warehouse a project name belongs to (its identity, also written into the
    warehouse), and the identity each run ran under."""
    md = sa.MetaData()
    sa.Table(
        "lockgate_projects",
        md,
        sa.Column("project", sa.String(200), primary_key=True),
        sa.Column("project_id", sa.String(32), nullable=False),
        sa.Column("warehouse", sa.Text, nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("registered_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    md.create_all(conn)
    conn.execute(sa.text("ALTER TABLE lockgate_runs ADD COLUMN project_id VARCHAR(32)"))


def _0003_step_skips(conn: Connection) -> None:
    """Rows a step read but neither published nor quarantined, by named reason (the
    accounting invariant: rows_in = rows_out + rows_quarantined + rows_skipped)."""
    json_type = sa.JSON().compile(dialect=conn.dialect)
    conn.execute(sa.text("ALTER TABLE lockgate_steps ADD COLUMN rows_skipped BIGINT"))
    conn.execute(sa.text(f"ALTER TABLE lockgate_steps ADD COLUMN skip_reasons {json_type}"))


def _0005_dashboard(conn: Connection) -> None:
    """What the dashboard (``lockgate ui``) keeps (:func:`dashboard_tables`), and indexes for
    a run's check results (the run page) and scores (a dataset's latest score)."""
    md = sa.MetaData()
    dashboard_tables(md, TS)
    md.create_all(conn)
    conn.execute(sa.text("CREATE INDEX ix_lockgate_checks_run ON lockgate_check_results (run_id)"))
    conn.execute(
        sa.text("CREATE INDEX ix_lockgate_audit_project ON lockgate_audit_log (project, id)")
    )
    # also created by 0004_read_indexes: IF NOT EXISTS (SQLite and PostgreSQL)
    conn.execute(
        sa.text(
            "CREATE INDEX IF NOT EXISTS ix_lockgate_scores_run ON lockgate_quality_scores (run_id)"
        )
    )


#: every migration, in order; append only
MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "0001_initial", _0001_initial),
    Migration(2, "0002_project_identity", _0002_project_identity),
    Migration(3, "0003_step_skips", _0003_step_skips),
    # 4 is "0004_read_indexes" of the read API work (branch dedupe), not merged here yet
    Migration(5, "0005_dashboard", _0005_dashboard),
)
LATEST_VERSION = MIGRATIONS[-1].version


def _serialise(conn: Connection) -> None:
    """Make this transaction the only one migrating (SQLite: already BEGIN IMMEDIATE)."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(ADVISORY_LOCK_KEY)))


def applied_versions(conn: Connection) -> dict[int, str]:
    """``{version: name}`` of the migrations recorded in the database (empty if none)."""
    if not sa.inspect(conn).has_table(migrations_table.name):
        return {}
    rows = conn.execute(sa.select(migrations_table.c.version, migrations_table.c.name))
    return {int(v): str(n) for v, n in rows}


def migrate(engine: Engine, where: str) -> list[str]:
    """Apply the missing migrations; return the names applied now. ``where`` is the masked
    URL, for messages."""
    done: list[str] = []
    while True:
        with engine.begin() as conn:
            _serialise(conn)
            migrations_table.create(conn, checkfirst=True)
            current = applied_versions(conn)
            newest = max(current, default=0)
            if newest > LATEST_VERSION:
                raise StateSchemaError(
                    f"the state store at {where} has schema version {newest} "
                    f"({current[newest]}), but this lockgate only knows versions up to "
                    f"{LATEST_VERSION}: it was written by a newer lockgate",
                    hint="upgrade lockgate (pip install -U lockgate), or point `state:` in "
                    "lockgate.yaml at another database",
                )
            todo = [m for m in MIGRATIONS if m.version not in current]
            if not todo:
                return done
            m = todo[0]
            log.info("state store %s: applying migration %s", where, m.name)
            m.apply(conn)
            conn.execute(
                migrations_table.insert().values(
                    version=m.version, name=m.name, applied_at=datetime.now(UTC)
                )
            )
            done.append(m.name)
