"""Turning a state URL into a configured SQLAlchemy engine, and database errors into
lockgate errors that never show a password."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Engine

from lockgate.redact import redact_any, remember
from lockgate.state.errors import StateSchemaError, StateStoreError
from lockgate.state.tables import json_dumps

log = logging.getLogger(__name__)

#: seconds a SQLite writer waits for another writer before failing
SQLITE_BUSY_TIMEOUT_S = 30.0
#: seconds to wait for a PostgreSQL connection
PG_CONNECT_TIMEOUT_S = 10

#: execution option: this transaction only reads (SQLite: plain BEGIN, not BEGIN IMMEDIATE)
READ_ONLY = "lockgate_read_only"


def mask_url(url: URL | str) -> str:
    """The URL as text with its password replaced by ``***``.

    >>> mask_url("postgresql+psycopg://me:secret@db/lg")
    'postgresql+psycopg://me:***@db/lg'
    """
    try:
        u = url if isinstance(url, URL) else sa.make_url(url)
    except Exception:
        return "<unparseable state URL>"
    if any(k.lower() == "password" for k in u.query):
        u = u.set(query={k: ("***" if k.lower() == "password" else v) for k, v in u.query.items()})
    return u.render_as_string(hide_password=True).replace("%2A%2A%2A", "***")


def _secrets(url: URL) -> list[str]:
    found = [str(url.password)] if url.password else []
    for k, v in url.query.items():
        if k.lower() == "password":
            found.extend([v] if isinstance(v, str) else list(v))
    return [x for x in found if x]


def parse_url(url: str) -> URL:
    """Validate and normalise a state URL.

    ``postgresql://`` and ``postgres://`` become ``postgresql+psycopg://`` (psycopg 3);
    a relative SQLite path is resolved against the current directory.
    """
    remember(url)  # its password is hidden wherever it shows up (driver errors, logs)
    try:
        u = sa.make_url(url)
    except Exception as e:  # ArgumentError: message has no password, but the URL might
        raise StateSchemaError(
            f"state URL {mask_url(url)!r} is not a valid database URL",
            hint="use sqlite:////absolute/path/state.db or postgresql://user@host:5432/db",
        ) from e
    backend, _, driver = u.drivername.partition("+")
    if backend == "postgres":
        backend = "postgresql"
    if backend == "postgresql":
        if driver in ("", "psycopg"):
            return u.set(drivername="postgresql+psycopg")
        raise StateSchemaError(
            f"state URL {mask_url(u)!r} uses the driver {driver!r}; lockgate uses psycopg 3",
            hint="write postgresql://… or postgresql+psycopg://…",
        )
    if backend == "sqlite":
        db = u.database or ""
        if db in ("", ":memory:") or db.startswith("file:"):
            raise StateSchemaError(
                f"state URL {mask_url(u)!r}: an in-memory SQLite state store is not supported "
                "(runs, watermarks and the lock must outlive the process)",
                hint="use a file: sqlite:////absolute/path/state.db",
            )
        return u.set(drivername="sqlite", database=str(Path(db).expanduser().resolve()))
    raise StateSchemaError(
        f"state URL {mask_url(u)!r}: the state store supports SQLite and PostgreSQL, "
        f"not {backend!r}",
        hint="use sqlite:////absolute/path/state.db or postgresql://user@host:5432/db",
    )


# values that must be stored exactly (identities, cursors): never rewritten
_EXACT = re.compile(r"^(watermark\w*|value\w*|\w*_id|project|dataset|check_name|host)(_+\d+)?$")


def _redact_value(name: str | None, v: Any) -> Any:
    return v if name is not None and _EXACT.match(name) else redact_any(v)


def _redact_params(params: Any, names: Sequence[str] | None) -> Any:
    """Redact bound values; ``names`` are the parameter names of a positional paramstyle
    (SQLite's ``?``), dict params carry theirs (psycopg's ``%(name)s``)."""
    if isinstance(params, dict):
        return {k: _redact_value(str(k), v) for k, v in params.items()}
    if isinstance(params, list) and params and isinstance(params[0], dict | list | tuple):
        return [_redact_params(p, names) for p in params]  # executemany
    if isinstance(params, list | tuple):
        keys = list(names) if names and len(names) == len(params) else [None] * len(params)
        return type(params)(_redact_value(k, v) for k, v in zip(keys, params, strict=True))
    return params


def _redact_writes(engine: Engine) -> None:
    """Storage boundary: no string written to the state store (run arguments, errors,
    reasons, messages) carries a password (:func:`lockgate.redact.redact`)."""

    @event.listens_for(engine, "before_cursor_execute", retval=True)
    def _scrub_params(
        conn: Any, cursor: Any, statement: str, params: Any, context: Any, executemany: bool
    ) -> tuple[str, Any]:
        if statement.lstrip()[:6].upper() in ("INSERT", "UPDATE"):
            compiled = getattr(context, "compiled", None)
            names = getattr(compiled, "positiontup", None)
            params = _redact_params(params, names)
        return statement, params


def create_state_engine(u: URL) -> Engine:
    """An engine for a URL returned by :func:`parse_url`.

    SQLite: the parent folder is created; every connection gets WAL, a busy timeout and
    foreign keys; lockgate (not the sqlite3 module) emits ``BEGIN IMMEDIATE`` for every
    transaction that may write, so writers queue on the busy timeout instead of failing
    when they upgrade a read lock.
    """
    kw: dict[str, Any] = {"json_serializer": json_dumps, "future": True}
    if u.get_backend_name() == "sqlite":
        assert u.database is not None
        path = Path(u.database)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StateStoreError(
                f"cannot create the folder of the state database {path}: {e}",
                hint="check the `state:` setting in lockgate.yaml and folder permissions",
            ) from e
        engine = sa.create_engine(
            u, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False}, **kw
        )
        _configure_sqlite(engine)
        _redact_writes(engine)
        return engine
    kw["pool_pre_ping"] = True
    engine = sa.create_engine(u, connect_args={"connect_timeout": PG_CONNECT_TIMEOUT_S}, **kw)
    _redact_writes(engine)
    return engine


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # take transaction control away from the sqlite3 module (see _on_begin)
        dbapi_connection.isolation_level = None
        cur = dbapi_connection.cursor()
        try:
            cur.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
            _wal(cur)
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
        finally:
            cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        read_only = conn.get_execution_options().get(READ_ONLY, False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def _wal(cur: Any) -> None:
    """Switch the database to WAL (a setting kept in the file: only a new database needs
    it). Openers of a new database race to switch it; SQLite answers the losers "database
    is locked" at once rather than waiting, so they retry until the busy timeout."""
    import sqlite3

    if str(cur.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
        return
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_S
    while True:
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _scrub(text: str, url: URL) -> str:
    for secret in _secrets(url):
        text = text.replace(secret, "***")
    return text


@contextmanager
def db_errors(url: URL, action: str) -> Iterator[None]:
    """Turn connection-level database errors into :class:`StateStoreError` (transient),
    naming the masked URL. Other database errors (constraint violations, SQL errors) are
    bugs and propagate unchanged."""
    try:
        yield
    except (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError) as e:
        orig = getattr(e, "orig", None) or e
        detail = _scrub(str(orig).strip().splitlines()[0] if str(orig).strip() else "", url)
        where = mask_url(url)
        if url.get_backend_name() == "sqlite":
            hint = (
                "check that the folder of the state database is writable and not on a network "
                "share; 'database is locked' means another process held a write lock for more "
                f"than {SQLITE_BUSY_TIMEOUT_S:.0f} s"
            )
        else:
            hint = (
                "check that PostgreSQL is running and reachable, and the user, database and "
                "password in the `state:` URL of lockgate.yaml"
            )
        raise StateStoreError(
            f"state store {where}: {action} failed: {detail}", hint=hint
        ) from None
