"""Is a warehouse table intact? Open its log and check that its data files exist.

A table whose log cannot be read (a truncated or corrupt ``_delta_log`` file, a missing
checkpoint) or whose current version names data files that are gone cannot be trusted for
reading or appending. :func:`inspect_table` says so with :class:`TableDamaged` (terminal:
retrying does not help); :func:`move_aside` moves such a table out of the way so a full
refresh can rebuild it from its inputs.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urlparse

from deltalake import DeltaTable

from lockgate.errors import TerminalError
from lockgate.storage.delta import DeltaStore
from lockgate.storage.delta_errors import short
from lockgate.storage.delta_log import META_PREFIX

log = logging.getLogger(__name__)

#: folder (inside the warehouse) damaged tables are moved to by a repair; not a table name
DAMAGED_DIR = ".lockgate_damaged"


class TableDamaged(TerminalError):
    """A warehouse table is unreadable or incomplete, or disagrees with the state store.
    ``unreadable``: its log cannot be opened at all (a repair moves it aside first)."""

    unreadable: bool = False


@dataclass(frozen=True)
class TableHealth:
    """An intact table: its current version, and the opened table (to read more cheaply)."""

    version: int
    table: DeltaTable
    store: DeltaStore
    name: str

    def newest_run_id(self) -> str | None:
        """``lockgate.run_id`` of the table's newest commit (None: not written by lockgate),
        read from that version's own commit file. Not from delta-rs' history (nor a snapshot
        built from it): it reads the log as it is *now* and numbers it from the loaded
        version, so after another writer's commit (a backfill's next chunk) it names that
        commit's run."""
        return _commit_run_id(self.store.path(self.name), self.version)


def _commit_run_id(path: Path, version: int) -> str | None:
    """``lockgate.run_id`` in the commitInfo of ``version``'s log file (None: not lockgate's,
    or the file is gone — a cleaned-up log)."""
    import json

    log_file = path / "_delta_log" / f"{version:020d}.json"
    try:
        lines = log_file.read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    for line in lines:
        if '"commitInfo"' in line:
            info = json.loads(line).get("commitInfo") or {}
            return str(info.get(META_PREFIX + "run_id") or "") or None
    return None


def inspect_table(store: DeltaStore, name: str) -> TableHealth | None:
    """The table's current version (None: no table); raises :class:`TableDamaged` when its
    log cannot be read or data files of its current version are missing."""
    path = store.path(name)
    if not path.exists():
        return None
    log_dir = path / "_delta_log"
    if not log_dir.is_dir():
        return None
    try:
        table = store.open_table(name)
        version = table.version()
        uris = table.file_uris()
    except Exception as exc:
        if not any(log_dir.iterdir()):
            return None  # an empty log folder: a table whose first commit never landed
        err = TableDamaged(
            f"table '{name}' in the warehouse cannot be read: its _delta_log is damaged "
            f"({_brief(exc)})",
            hint=repair_hint(name),
        )
        err.unreadable = True
        raise err from exc
    missing = [u for u in uris if not _local(u).exists()]
    if missing:
        raise TableDamaged(
            f"table '{name}' in the warehouse is incomplete: {len(missing)} of its "
            f"{len(uris)} data file(s) at version {version} are missing (e.g. "
            f"{_local(missing[0]).name}); reading it would lose their rows",
            hint=repair_hint(name),
        )
    return TableHealth(int(version), table, store, name)


def repair_hint(name: str) -> str:
    base = name.removesuffix("__quarantine")
    return (
        f"rebuild it from its inputs: `lockgate run --select {base} --full-refresh` "
        "(a table whose log is unreadable is first moved to "
        f"<warehouse>/{DAMAGED_DIR}/); its downstream datasets pick up the rebuilt table "
        "on their next run"
    )


def move_aside(store: DeltaStore, name: str) -> Path:
    """Move table ``name`` to ``<warehouse>/.lockgate_damaged/<name>-<UTC time>``."""
    src = store.path(name)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    dst = store.warehouse / DAMAGED_DIR / f"{name}-{stamp}"
    dst.parent.mkdir(parents=True, exist_ok=True)
    store.forget(name)
    shutil.move(str(src), str(dst))
    log.warning("table %s: moved the damaged table to %s before rebuilding it", name, dst)
    return dst


def _brief(exc: BaseException) -> str:
    text = " ".join(short(exc).split())
    return text if len(text) <= 300 else text[:300] + " …"


def _local(uri: str) -> Path:
    if "://" not in uri:
        return Path(uri)
    parsed = urlparse(uri)
    return Path(unquote(parsed.path))
