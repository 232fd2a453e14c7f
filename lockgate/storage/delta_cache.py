"""Opened Delta tables shared by the stores of one process (a plan, then its run; the
scheduler's runs one after another), kept only while they are provably current.

Opening a table (``DeltaTable(path)``: list and replay its log) and reading its snapshot (the
newest lockgate commit from its history, the transaction version) cost about 1-2 ms each; a
scheduled run of 500 up-to-date datasets used to pay them twice per table (plan, then run).
A kept table at version ``v`` is current exactly when its commit file
``_delta_log/<v>.json`` is the same file as when it was kept (inode, size, modification
time: a table deleted and created again has a new one), ``_delta_log/<v+1>.json`` does not
exist (Delta commits versions in order, each by creating that file), and nothing was added to
or removed from ``_delta_log`` since (its modification time: a deleted old commit file — a
damaged history the trust check must see — is noticed too). Three ``stat`` calls instead of a
log replay. Only reads use kept tables; a write opens its own and forgets the
kept one (see ``DeltaStore``)."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from deltalake import DeltaTable

    from lockgate.storage.base import TableSnapshot

_Stamp = tuple[int, int, int, int]


@dataclass
class _Kept:
    table: DeltaTable
    version: int
    stamp: _Stamp
    snapshot: TableSnapshot | None = None


_lock = threading.Lock()
_kept: dict[str, _Kept] = {}


def _commit_file(path: Path, version: int) -> str:
    return os.path.join(path, "_delta_log", f"{version:020d}.json")


def _stamp(path: Path, version: int) -> _Stamp | None:
    try:
        log_dir = os.stat(os.path.join(path, "_delta_log"))
        st = os.stat(_commit_file(path, version))
    except OSError:
        return None
    return (log_dir.st_mtime_ns, st.st_ino, st.st_size, st.st_mtime_ns)


def _current(path: Path, kept: _Kept) -> bool:
    return _stamp(path, kept.version) == kept.stamp and not os.path.exists(
        _commit_file(path, kept.version + 1)
    )


def lookup(path: Path) -> _Kept | None:
    """The kept table of ``path`` if it is still the table's current version."""
    key = str(path)
    with _lock:
        kept = _kept.get(key)
    if kept is None:
        return None
    if _current(path, kept):
        return kept
    forget(path)
    return None


def keep(path: Path, table: DeltaTable) -> None:
    """Keep ``table`` (just opened at its current version) for later readers."""
    version = int(table.version())
    stamp = _stamp(path, version)
    if stamp is None:  # no commit file for it (a checkpoint-only log?): do not keep
        return
    with _lock:
        _kept[str(path)] = _Kept(table, version, stamp)


def keep_snapshot(path: Path, table: DeltaTable, snapshot: TableSnapshot) -> None:
    """Remember the snapshot read from ``table`` (the kept one at the same version)."""
    with _lock:
        kept = _kept.get(str(path))
        if kept is not None and kept.table is table and kept.version == snapshot.version:
            kept.snapshot = snapshot


def forget(path: Path) -> None:
    """Drop what is kept of ``path`` (it is being written, moved or removed)."""
    with _lock:
        _kept.pop(str(path), None)


def clear() -> None:
    """Forget every kept table (tests; a process that knows its warehouse was replaced)."""
    with _lock:
        _kept.clear()
