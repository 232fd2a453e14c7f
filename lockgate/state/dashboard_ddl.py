"""The dashboard's tables as migration ``0005_dashboard`` creates them: frozen DDL (a later
change is a new migration), defined once for the migration and for :mod:`tables`."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

JSONType = sa.JSON


def dashboard_tables(md: sa.MetaData, ts: sa.types.TypeEngine[Any] | type[Any]) -> None:
    """The dashboard's tables as migration 0005 creates them (frozen; ``tables.py`` reads
    their current shape from here until a later migration changes them): API tokens (only
    the SHA-256 of a token is stored) with a role and optional per-dataset grants; an
    append-only audit log; daily quality scores rolled up from ``lockgate_quality_scores``
    (``lockgate_rollups`` holds how far)."""
    sa.Table(
        "lockgate_api_tokens",
        md,
        sa.Column("token_id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("token_sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("datasets", JSONType),
        sa.Column("created_at", ts, nullable=False),
        sa.Column("revoked_at", ts),
    )
    sa.Table(
        "lockgate_audit_log",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", ts, nullable=False),
        sa.Column("project", sa.String(200), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(100), nullable=False),
        sa.Column("target", sa.Text),
        sa.Column("detail", JSONType),
    )
    key = sa.String(200)
    sa.Table(
        "lockgate_daily_scores",
        md,
        *(sa.Column(c, key, primary_key=True) for c in ("project", "dataset")),
        sa.Column("dimension", sa.String(50), primary_key=True),
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("total", sa.Float, nullable=False),
        sa.Column("n", sa.Integer, nullable=False),
    )
    sa.Table(
        "lockgate_rollups",
        md,
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("last_id", sa.BigInteger, nullable=False),
    )
