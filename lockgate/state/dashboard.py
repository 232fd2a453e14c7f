"""What the dashboard (``lockgate ui``) keeps in and reads from the state store.

- API tokens: only the SHA-256 of a token is stored (tokens are 256-bit random strings, so a
  fast hash is enough); each has a role (``viewer`` < ``operator`` < ``admin``) and optional
  per-dataset grants (None: every dataset).
- The audit log: append-only (this module has no update or delete for it).
- Daily quality scores: rolled up incrementally from ``lockgate_quality_scores`` (the rollup
  remembers the last score id it added), so the overview's score-over-time chart reads a few
  hundred rows however long the history is.
- Reads the pages need that :class:`~lockgate.state.store.StateStore` has no method for.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from lockgate.state import tables as t
from lockgate.state._convert import check_record, run_info, step_info
from lockgate.state.lock import now_utc
from lockgate.state.records import CheckRecord, RunInfo, StepInfo
from lockgate.state.store import StateStore

ROLES = ("viewer", "operator", "admin")
TOKEN_PREFIX = "lgt_"
_ROLLUP = "daily_scores"


@dataclass(frozen=True)
class TokenInfo:
    token_id: str
    name: str
    role: str
    datasets: tuple[str, ...] | None  # None: all datasets
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    project: str
    actor: str
    action: str
    target: str | None
    detail: dict[str, Any] | None


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _token_info(r: Any) -> TokenInfo:
    ds = r["datasets"]
    return TokenInfo(
        token_id=r["token_id"],
        name=r["name"],
        role=r["role"],
        datasets=None if ds is None else tuple(str(d) for d in ds),
        created_at=r["created_at"],
        revoked_at=r["revoked_at"],
    )


def create_token(
    store: StateStore, name: str, role: str, datasets: Sequence[str] | None = None
) -> tuple[TokenInfo, str]:
    """A new token: its record and the secret itself (shown once, never stored)."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    values = {
        "token_id": uuid.uuid4().hex,
        "name": name,
        "token_sha256": token_hash(secret),
        "role": role,
        "datasets": None if datasets is None else list(datasets),
        "created_at": now_utc(),
        "revoked_at": None,
    }
    with store._tx() as conn:
        conn.execute(sa.insert(t.api_tokens).values(**values))
    return _token_info(values), secret


def verify_token(store: StateStore, secret: str) -> TokenInfo | None:
    """The live token whose secret this is, or None."""
    c = t.api_tokens.c
    q = sa.select(t.api_tokens).where(c.token_sha256 == token_hash(secret), c.revoked_at.is_(None))
    with store._read() as conn:
        row = conn.execute(q).mappings().first()
    return None if row is None else _token_info(row)


def list_tokens(store: StateStore) -> list[TokenInfo]:
    with store._read() as conn:
        rows = conn.execute(sa.select(t.api_tokens).order_by(t.api_tokens.c.created_at))
        return [_token_info(r) for r in rows.mappings()]


def has_tokens(store: StateStore) -> bool:
    """Whether any live token exists (then the dashboard requires one)."""
    q = sa.select(sa.func.count()).where(t.api_tokens.c.revoked_at.is_(None))
    with store._read() as conn:
        return int(conn.execute(q).scalar_one()) > 0


def revoke_token(store: StateStore, token_id: str) -> bool:
    c = t.api_tokens.c
    with store._tx() as conn:
        res = conn.execute(
            sa.update(t.api_tokens)
            .where(c.token_id == token_id, c.revoked_at.is_(None))
            .values(revoked_at=now_utc())
        )
        return bool(res.rowcount)


def audit(
    store: StateStore,
    project: str,
    actor: str,
    action: str,
    target: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Append one entry to the audit log."""
    with store._tx() as conn:
        conn.execute(
            sa.insert(t.audit_log).values(
                at=now_utc(),
                project=project,
                actor=actor,
                action=action,
                target=target,
                detail=t.jsonable(detail),
            )
        )


def audit_entries(store: StateStore, project: str, limit: int = 50) -> list[AuditEntry]:
    c = t.audit_log.c
    q = sa.select(t.audit_log).where(c.project == project).order_by(c.id.desc()).limit(limit)
    with store._read() as conn:
        return [AuditEntry(**dict(r)) for r in conn.execute(q).mappings()]


# --- daily scores ----------------------------------------------------------------------
def rollup_daily_scores(store: StateStore) -> int:
    """Add the scores recorded since the last rollup to the daily table; return how many.
    Safe with several dashboards: the rollup position is compare-and-set in the same
    transaction, so a concurrent rollup of the same rows is rolled back."""
    qs = t.quality_scores.c
    with store._tx() as conn:
        last = conn.execute(
            sa.select(t.rollups.c.last_id).where(t.rollups.c.name == _ROLLUP)
        ).scalar_one_or_none()
        start = int(last or 0)
        top = conn.execute(sa.select(sa.func.max(qs.id))).scalar_one_or_none()
        if top is None or int(top) <= start:
            return 0
        day = sa.func.substr(sa.cast(qs.created_at, sa.String), 1, 10)
        if store.dialect == "postgresql":
            day = sa.func.to_char(sa.func.timezone("UTC", qs.created_at), sa.literal("YYYY-MM-DD"))
        agg = (
            sa.select(
                qs.project,
                qs.dataset,
                qs.dimension,
                day.label("day"),
                sa.func.sum(qs.score).label("total"),
                sa.func.count().label("n"),
            )
            .where(qs.id > start, qs.id <= int(top))
            .group_by(qs.project, qs.dataset, qs.dimension, day)
        )
        rows = [dict(r) for r in conn.execute(agg).mappings()]
        ins = store._insert(t.daily_scores).values(rows)
        conn.execute(
            ins.on_conflict_do_update(
                index_elements=["project", "dataset", "dimension", "day"],
                set_={
                    "total": t.daily_scores.c.total + ins.excluded.total,
                    "n": t.daily_scores.c.n + ins.excluded.n,
                },
            )
        )
        _move_rollup(conn, last, int(top))
        return sum(int(r["n"]) for r in rows)


def _move_rollup(conn: sa.Connection, last: int | None, top: int) -> None:
    if last is None:
        conn.execute(sa.insert(t.rollups).values(name=_ROLLUP, last_id=top))
        return
    res = conn.execute(
        sa.update(t.rollups)
        .where(t.rollups.c.name == _ROLLUP, t.rollups.c.last_id == last)
        .values(last_id=top)
    )
    if not res.rowcount:
        raise RuntimeError("daily score rollup raced another one; retried on the next read")


def daily_scores(
    store: StateStore, project: str, dataset: str | None = None, days: int = 90
) -> list[dict[str, Any]]:
    """``[{day, dimension, score}]`` oldest first: the mean per day (over datasets when
    ``dataset`` is None) of the last ``days`` days that have scores."""
    c = t.daily_scores.c
    where = [c.project == project]
    if dataset is not None:
        where.append(c.dataset == dataset)
    recent = (
        sa.select(c.day).where(*where).group_by(c.day).order_by(c.day.desc()).limit(days)
    ).subquery()
    q = (
        sa.select(c.day, c.dimension, (sa.func.sum(c.total) / sa.func.sum(c.n)).label("score"))
        .where(*where, c.day.in_(sa.select(recent.c.day)))
        .group_by(c.day, c.dimension)
        .order_by(c.day, c.dimension)
    )
    with store._read() as conn:
        return [dict(r) for r in conn.execute(q).mappings()]


# --- reads for the pages ---------------------------------------------------------------
def runs_page(
    store: StateStore, project: str, limit: int = 50, before_seq: int | None = None
) -> list[RunInfo]:
    """Runs newest first, keyset-paginated by ``seq``."""
    c = t.runs.c
    q = sa.select(t.runs).where(c.project == project)
    if before_seq is not None:
        q = q.where(c.seq < before_seq)
    with store._read() as conn:
        rows = conn.execute(q.order_by(c.seq.desc()).limit(limit)).mappings()
        return [run_info(r) for r in rows]


def latest_steps(store: StateStore, project: str, datasets: Sequence[str]) -> dict[str, StepInfo]:
    """Each dataset's newest step that is not a no-op (one indexed lookup each)."""
    c = t.steps.c
    out: dict[str, StepInfo] = {}
    with store._read() as conn:
        for ds in datasets:
            q = (
                sa.select(t.steps)
                .where(c.project == project, c.dataset == ds, c.status != "noop")
                .order_by(c.id.desc())
                .limit(1)
            )
            row = conn.execute(q).mappings().first()
            if row is not None:
                out[ds] = step_info(row)
    return out


def step_checks(store: StateStore, step_ids: Sequence[int]) -> dict[int, list[CheckRecord]]:
    c = t.check_results.c
    out: dict[int, list[CheckRecord]] = {}
    if not step_ids:
        return out
    q = sa.select(t.check_results).where(c.step_id.in_(list(step_ids))).order_by(c.id)
    with store._read() as conn:
        for r in conn.execute(q).mappings():
            out.setdefault(int(r["step_id"]), []).append(check_record(r))
    return out


def schema_versions(
    store: StateStore, project: str, dataset: str, limit: int = 50
) -> list[dict[str, Any]]:
    """Every recorded schema version of the dataset, newest first, with its drift."""
    c = t.schema_versions.c
    q = (
        sa.select(c.version, c.schema, c.drift, c.created_at, c.run_id)
        .where(c.project == project, c.dataset == dataset)
        .order_by(c.version.desc())
        .limit(limit)
    )
    with store._read() as conn:
        return [dict(r) for r in conn.execute(q).mappings()]
