"""``lockgate optimize``: rewrite the small files of tables into fewer, larger ones.

A stream committing every second adds 86,400 small files a day, and a dataset published
hourly 8,760 a year; every reader then opens them all. Compaction (delta-rs
``optimize.compact``) rewrites a table's files smaller than ``target_size`` into files of up
to that size, in one commit that changes no data (``dataChange: false``): the rows, the
application transactions (the exactly-once positions of runs, change sources and streams) and
lockgate's commit metadata of earlier commits stay as they were, and older versions stay
readable until they are vacuumed (``lockgate vacuum``).

Log checkpoints need nothing from lockgate: delta-rs writes one after every
``delta.checkpointInterval`` (100) commits, so reading the log of a long-lived table reads a
checkpoint and at most 99 commit files (``tests/storage/test_compact.py`` checks both).

What a compaction costs the readers: it is a new table version, so the datasets reading the
table run again on their next run (to the same result), and an incremental reader reads the
rewritten files' rows once more and skips them as ``already_published``.

Runs and optimize take the project lock in turn (a run's overwrite or merge and a
compaction of the same files cannot both commit); streams only append, which never conflicts
with a compaction, and compact their own sink between batches (``sink.compact_every``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lockgate._project_ref import as_project
from lockgate.errors import UsageError

if TYPE_CHECKING:
    from lockgate.project import Project
    from lockgate.storage.delta import DeltaStore
    from lockgate.streams.config import StreamSpec

#: a table with fewer small files than this is left alone
DEFAULT_MIN_FILES = 10
#: files are rewritten into files of up to this many bytes (delta-rs' default: 100 MiB)
DEFAULT_TARGET_BYTES = 100 * 1024 * 1024


@dataclass(frozen=True)
class Compaction:
    """What compacting one table did (or, with ``dry_run``, would do)."""

    table: str
    files: int  # data files of the version compacted
    small_files: int  # of them, smaller than the target size
    files_removed: int
    files_added: int
    version: int | None  # the compaction's commit; None: nothing was committed

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def project_tables(project: Project) -> list[str]:
    """Every table the project writes: datasets and their quarantine tables, and each
    stream's sink, dead-letter queue, late table and window aggregates."""
    from lockgate.storage.base import QUARANTINE_SUFFIX

    names = [t for d in project.datasets for t in (d, d + QUARANTINE_SUFFIX)]
    for s in project.streams.values():
        names += stream_tables(s)
    return list(dict.fromkeys(names))


def stream_tables(spec: StreamSpec) -> list[str]:
    """The tables stream ``spec`` writes: sink, dead-letter queue, late table and its window
    aggregate datasets (``aggregates:``)."""
    names = [spec.sink.dataset, spec.name + "__dlq"]
    if spec.event_time is not None and spec.event_time.late != "dlq":
        names.append(spec.event_time.late)
    names += [a.dataset for a in spec.aggregates]
    return names


def compact_table(
    store: DeltaStore,
    name: str,
    *,
    min_files: int = DEFAULT_MIN_FILES,
    target_bytes: int = DEFAULT_TARGET_BYTES,
    dry_run: bool = False,
) -> Compaction:
    """Compact the current version of table ``name`` when it has at least ``min_files``
    files smaller than ``target_bytes``."""
    from deltalake import CommitProperties

    from lockgate.storage.delta_log import META_PREFIX

    table = store.open_table(name)
    adds = table.get_add_actions(flatten=True)
    sizes = adds.column("size_bytes").to_pylist()
    small = sum(1 for s in sizes if s < target_bytes)
    if small < min_files or dry_run:
        return Compaction(name, len(sizes), small, 0, 0, None)
    props = CommitProperties(custom_metadata={META_PREFIX + "operation": "optimize"})
    with store.translated(name, "compact"):
        metrics = table.optimize.compact(target_size=target_bytes, commit_properties=props)
    store.forget(name)
    removed, added = int(metrics["numFilesRemoved"]), int(metrics["numFilesAdded"])
    version = table.version() if removed else None
    return Compaction(name, len(sizes), small, removed, added, version)


def optimize(
    project: Project | str | Path,
    tables: Sequence[str] = (),
    *,
    min_files: int = DEFAULT_MIN_FILES,
    target_bytes: int = DEFAULT_TARGET_BYTES,
    dry_run: bool = False,
) -> list[Compaction]:
    """Compact ``tables`` (default: every table the project has written; see
    :func:`project_tables`) under the project lock."""
    from lockgate.state import StateStore
    from lockgate.storage import DeltaStore

    if min_files < 2:
        raise UsageError("--min-files must be at least 2 (one file is already compact)")
    if target_bytes < 1024 * 1024:
        raise UsageError("--target-mb must be at least 1")
    proj = as_project(project)
    known = project_tables(proj)
    unknown = [t for t in tables if t not in known]
    if unknown:
        raise UsageError(
            f"unknown table(s): {', '.join(unknown)}",
            hint="a dataset, its __quarantine table, or a stream's sink, __dlq, late or "
            "window table",
        )
    store = DeltaStore(proj.warehouse_path)
    todo = [t for t in (list(tables) or known) if store.exists(t)]
    with StateStore.open(proj.state_url) as state, state.lock(proj.name):
        return [
            compact_table(store, t, min_files=min_files, target_bytes=target_bytes, dry_run=dry_run)
            for t in todo
        ]
