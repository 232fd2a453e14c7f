"""The replication slot of a ``postgres_cdc`` dataset: create it together with an exported
snapshot, peek micro-batches, advance it after the Delta commit, report its health, drop it.

psycopg 3 has no replication-stream API, so changes are read with
``pg_logical_slot_peek_binary_changes`` (whole transactions, at most ``max_changes``
messages past the last whole transaction) and confirmed with ``pg_replication_slot_advance``
only after the table holds them. The snapshot comes from ``CREATE_REPLICATION_SLOT … LOGICAL
pgoutput (SNAPSHOT 'export')`` on a replication connection (libpq's simple query protocol:
``replication=database``), which stays open while the table is copied in a REPEATABLE READ
transaction with ``SET TRANSACTION SNAPSHOT``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lockgate.errors import InputError, TerminalError
from lockgate.sources._pgoutput import lsn_int

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger(__name__)


class SlotInvalidated(TerminalError):
    """The slot is gone or PostgreSQL invalidated it (``wal_status = lost``): the changes
    since the table's position cannot be read any more."""

    exit_code = 2


@dataclass(frozen=True)
class SlotInfo:
    """One slot's health (``pg_replication_slots``)."""

    name: str
    plugin: str | None
    database: str | None
    active: bool
    confirmed_lsn: int | None
    restart_lsn: int | None
    #: WAL the slot keeps from being removed (current WAL LSN - restart_lsn), bytes
    retained_bytes: int | None
    #: ``reserved``, ``extended``, ``unreserved`` or ``lost`` (PostgreSQL 13+)
    wal_status: str | None
    #: bytes that can still be written before the slot is in danger (None: unlimited)
    safe_wal_size: int | None


_SLOT_SQL = (
    "SELECT slot_name, plugin, database, active, confirmed_flush_lsn::text, restart_lsn::text, "
    "pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint, wal_status, safe_wal_size "
    "FROM pg_replication_slots WHERE slot_name = %s"
)


def slot_info(pg: psycopg.Connection[Any], slot: str) -> SlotInfo | None:
    row = pg.execute(_SLOT_SQL, (slot,)).fetchone()
    if row is None:
        return None
    name, plugin, db, active, confirmed, restart, retained, status, safe = row
    return SlotInfo(
        name,
        plugin,
        db,
        bool(active),
        lsn_int(confirmed) if confirmed else None,
        lsn_int(restart) if restart else None,
        None if retained is None else int(retained),
        status,
        None if safe is None else int(safe),
    )


def require_usable(info: SlotInfo | None, slot: str, dataset: str, position: int) -> SlotInfo:
    """The slot exists, decodes pgoutput and still has the WAL since ``position``."""
    fix = (
        f"run `lockgate cdc drop-slot {dataset}` then `lockgate run --select {dataset} "
        "--full-refresh` (a new snapshot rebuilds the table)"
    )
    if info is None:
        raise SlotInvalidated(
            f"dataset '{dataset}': replication slot '{slot}' does not exist, but the table "
            "holds changes up to it: the changes since then cannot be read",
            hint=fix,
        )
    if info.wal_status == "lost" or info.restart_lsn is None:
        raise SlotInvalidated(
            f"dataset '{dataset}': replication slot '{slot}' was invalidated by PostgreSQL "
            f"(wal_status={info.wal_status}; max_slot_wal_keep_size exceeded): the WAL since "
            "the table's position is gone",
            hint=fix,
        )
    if info.plugin != "pgoutput":
        raise InputError(
            f"dataset '{dataset}': slot '{slot}' decodes with {info.plugin!r}, not pgoutput",
            hint="name another slot in source.slot, or drop this one",
        )
    if info.confirmed_lsn is not None and info.confirmed_lsn > position:
        raise SlotInvalidated(
            f"dataset '{dataset}': slot '{slot}' is past the table's position "
            f"(slot {info.confirmed_lsn:#x} > table {position:#x}): changes in between "
            "were confirmed without being published (another consumer of the slot?)",
            hint=fix,
        )
    return info


def drop_slot(pg: psycopg.Connection[Any], slot: str) -> bool:
    """Drop ``slot`` if it exists; True if it did."""
    row = pg.execute("SELECT 1 FROM pg_replication_slots WHERE slot_name = %s", (slot,)).fetchone()
    if row is None:
        return False
    pg.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
    log.info("dropped replication slot %s", slot)
    return True


@contextmanager
def exported_snapshot(conninfo: str, slot: str) -> Iterator[tuple[int, str]]:
    """Create logical slot ``slot`` (pgoutput) with an exported snapshot; yields
    (consistent LSN, snapshot name). The snapshot lives while the block runs: the
    replication connection is kept open (and idle) until the copy is done."""
    import psycopg
    from psycopg import pq
    from psycopg.conninfo import make_conninfo

    with psycopg.connect(make_conninfo(conninfo, replication="database"), autocommit=True) as rc:
        q = f"CREATE_REPLICATION_SLOT {_ident(slot)} LOGICAL pgoutput (SNAPSHOT 'export')"
        res = rc.pgconn.exec_(q.encode())
        if res.status != pq.ExecStatus.TUPLES_OK:
            msg = (res.error_message or b"").decode(errors="replace").strip()
            raise InputError(
                f"cannot create replication slot '{slot}': {msg}",
                hint="the server needs wal_level=logical and a free max_replication_slots; "
                "the user needs the REPLICATION attribute",
            )
        consistent = (res.get_value(0, 1) or b"").decode()
        snapshot = (res.get_value(0, 2) or b"").decode()
        yield lsn_int(consistent), snapshot


def _ident(name: str) -> str:
    """A slot name as an identifier (slot names are [a-z0-9_]: checked by the config)."""
    return '"' + name.replace('"', '""') + '"'


def flush_lsn(pg: psycopg.Connection[Any]) -> int:
    """The WAL flushed so far: a peek started after this reads every transaction that
    committed before it (a heartbeat may move an idle slot up to here)."""
    row = pg.execute("SELECT pg_current_wal_flush_lsn()::text").fetchone()
    return lsn_int(row[0]) if row and row[0] else 0


def peek(pg: psycopg.Connection[Any], slot: str, publication: str, max_changes: int) -> list[bytes]:
    """Messages of whole transactions from the slot's confirmed position (not consumed)."""
    rows = pg.execute(
        "SELECT data FROM pg_logical_slot_peek_binary_changes(%s, NULL, %s, "
        "'proto_version', '1', 'publication_names', %s)",
        (slot, max_changes, publication),
        binary=True,
    ).fetchall()
    return [r[0] for r in rows]


def advance(pg: psycopg.Connection[Any], slot: str, lsn: int) -> None:
    """Confirm everything up to ``lsn`` (only ever forward)."""
    info = slot_info(pg, slot)
    if info is None or (info.confirmed_lsn is not None and info.confirmed_lsn >= lsn):
        return
    from lockgate.sources._pgoutput import lsn_text

    pg.execute("SELECT pg_replication_slot_advance(%s, %s::pg_lsn)", (slot, lsn_text(lsn)))
