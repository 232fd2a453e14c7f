"""Numbered, append-only migrations of the state database.

Each migration is a function taking a :class:`sqlalchemy.Connection`; :func:`migrate` applies
the missing ones in order, **one transaction each**, and records them in
``lockgate_migrations(version, name, applied_at)``. Concurrent openers are serialised (a
PostgreSQL transaction-scoped advisory lock; SQLite ``BEGIN IMMEDIATE``, which the store
emits for every transaction) and re-read the applied versions under that lock, so a migration
is never applied twice. A database whose version is newer than :data:`LATEST_VERSION` is
refused with :class:`StateSchemaError` instead of being written by older code.

Never edit a released migration: its DDL is frozen in :mod:`lockgate.state.ddl` (which
:mod:`lockgate.state.tables` derives the current shape from), so that ``0001`` still builds
the v1 schema after later migrations change the tables. A new migration adds its
definitions there (a new table, or an entry of ``ADDED_COLUMNS``) and a function here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from lockgate.state import ddl
from lockgate.state.dashboard_ddl import dashboard_tables
from lockgate.state.errors import StateSchemaError
from lockgate.state.tables import migrations_table, run_seq

log = logging.getLogger(__name__)

#: key of the PostgreSQL advisory lock that serialises migrations (any fixed bigint)
ADVISORY_LOCK_KEY = 0x6C6F636B67617465  # "lockgate"


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    apply: Callable[[Connection], None]


def _0001_initial(conn: Connection) -> None:
    md = sa.MetaData()
    ddl.v1_tables(md)
    md.create_all(conn)
    if conn.dialect.name == "sqlite":
        run_seq.create(conn)


def _add_columns(conn: Connection, version: int) -> None:
    """``ALTER TABLE … ADD COLUMN`` for the columns migration ``version`` adds."""
    for v, table, name, type_ in ddl.ADDED_COLUMNS:
        if v == version:
            sql = f"ALTER TABLE {table} ADD COLUMN {name} {type_.compile(dialect=conn.dialect)}"
            conn.execute(sa.text(sql))


def _0002_project_identity(conn: Connection) -> None:
    """Which warehouse a project name belongs to (its identity, also written into the
    warehouse), and the identity each run ran under."""
    md = sa.MetaData()
    ddl.projects_table(md)
    md.create_all(conn)
    _add_columns(conn, 2)


def _0003_step_skips(conn: Connection) -> None:
    """Rows a step read but neither published nor quarantined, by named reason (the
    accounting invariant: rows_in = rows_out + rows_quarantined + rows_skipped)."""
    _add_columns(conn, 3)


def _0004_read_indexes(conn: Connection) -> None:
    """Indexes the read API (:mod:`lockgate.api`) needs over a long history: a run's scores
    and a project's scores since a time."""
    md = sa.MetaData()
    scores = sa.Table(
        "lockgate_quality_scores",
        md,
        sa.Column("run_id", sa.String(32)),
        sa.Column("project", sa.String(200)),
        sa.Column("created_at", ddl.TS),
    )
    sa.Index("ix_lockgate_scores_run", scores.c.run_id).create(conn)
    sa.Index("ix_lockgate_scores_time", scores.c.project, scores.c.created_at).create(conn)


def _0005_dashboard(conn: Connection) -> None:
    """What the dashboard (``lockgate ui``) keeps (:func:`dashboard_tables`), and indexes for
    a run's check results (the run page) and scores (a dataset's latest score)."""
    md = sa.MetaData()
    dashboard_tables(md, ddl.TS)
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


def _0006_operations(conn: Connection) -> None:
    """The scheduler's state (last fired tick per schedule) and open alert incidents.
    (0005 is the dashboard's migration.)"""
    md = sa.MetaData()
    ddl.ops_tables(md)
    md.create_all(conn)


def _0007_partitions(conn: Connection) -> None:
    """Done intervals of partitioned datasets (merged ranges), definitions by hash, and each
    step's cost."""
    md = sa.MetaData()
    ddl.partition_tables(md)
    md.create_all(conn)
    _add_columns(conn, 7)  # lockgate_steps.cost: CPU seconds, peak memory, bytes


def _0008_training_sets(conn: Connection) -> None:
    """Recorded training sets (feature store, #13): inputs pinned for an exact replay."""
    md = sa.MetaData()
    ddl.features_tables(md)
    md.create_all(conn)


def _0011_materializations(conn: Connection) -> None:
    """Materialisation history of feature views (feature store, #13)."""
    md = sa.MetaData()
    ddl.materializations_table(md).create(conn)


def _0010_anomaly_retention(conn: Connection) -> None:
    """An anomaly check's expected band on its result, and the daily check aggregates that
    retention keeps of pruned history. (0009 was reserved for stream state; not needed.)"""
    _add_columns(conn, 10)
    md = sa.MetaData()
    ddl.retention_tables(md)
    md.create_all(conn)


def _0012_interval_definitions(conn: Connection) -> None:
    """Which definition (content hash) each done range of a partitioned dataset was
    published under: a changed definition makes its intervals due again (``on_change``);
    when an open alert incident last alerted (reminders: ``remind_after``)."""
    _add_columns(conn, 12)


#: every migration, in order; append only
MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "0001_initial", _0001_initial),
    Migration(2, "0002_project_identity", _0002_project_identity),
    Migration(3, "0003_step_skips", _0003_step_skips),
    Migration(4, "0004_read_indexes", _0004_read_indexes),
    Migration(5, "0005_dashboard", _0005_dashboard),
    Migration(6, "0006_operations", _0006_operations),
    Migration(7, "0007_partitions", _0007_partitions),
    Migration(8, "0008_training_sets", _0008_training_sets),
    Migration(10, "0010_anomaly_retention", _0010_anomaly_retention),
    Migration(11, "0011_materializations", _0011_materializations),
    Migration(12, "0012_interval_definitions", _0012_interval_definitions),
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
