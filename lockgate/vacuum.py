"""``lockgate vacuum``: delete the data files of old table versions, except pinned ones.

Delta keeps the files a commit removed (overwrite, merge, partition replace) so older versions
stay readable; vacuum deletes those older than ``retain_hours``. Some old versions must stay
readable whatever their age — they are *pinned*:

- every version a recorded training set read (its feature views' datasets, and its entity
  rows when they were a dataset): ``lockgate features training-set --replay ID`` re-creates
  the set bit for bit from them (:func:`lockgate.state.features.pinned_versions`).

delta-rs keeps the files of ``keep_versions`` (and of the current version) when it vacuums.
A pinned version whose *log* delta-rs has already cleaned up (``delta.logRetentionDuration``,
30 days by default, once a checkpoint follows) cannot be kept by anyone: it is reported in
``lost_versions`` (the training sets that read it can no longer be replayed).
Materialisation marks pin nothing: the incremental diff reads only the Delta *log* of the
marked version (its file list), never its data files, and the log is not vacuumed.
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

#: Delta's default ``deletedFileRetentionDuration`` (a week)
DEFAULT_RETAIN_HOURS = 168


@dataclass(frozen=True)
class VacuumResult:
    dataset: str
    kept_versions: tuple[int, ...]  # pinned versions whose files were kept
    deleted: tuple[str, ...]  # data files deleted (or, with dry_run, that would be)
    #: pinned versions that can no longer be read (their log was cleaned up): nothing can
    #: keep them, and the training sets that read them cannot be replayed any more
    lost_versions: tuple[int, ...] = ()

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def pinned(project: Project | str | Path) -> dict[str, set[int]]:
    """``{dataset: {version, ...}}`` that vacuum must keep readable (see the module)."""
    from lockgate.state import StateStore
    from lockgate.state.features import pinned_versions

    proj = as_project(project)
    with StateStore.open(proj.state_url) as state:
        return pinned_versions(state, proj.name)


def vacuum(
    project: Project | str | Path,
    datasets: Sequence[str] = (),
    *,
    retain_hours: int = DEFAULT_RETAIN_HOURS,
    dry_run: bool = False,
) -> list[VacuumResult]:
    """Vacuum the tables of ``datasets`` (default: every published dataset) keeping the files
    of versions newer than ``retain_hours`` and of every pinned version."""
    from lockgate.storage import DeltaStore

    if retain_hours < 0:
        raise UsageError("--retain-hours must be >= 0")
    proj = as_project(project)
    unknown = [d for d in datasets if d not in proj.datasets]
    if unknown:
        raise UsageError(f"unknown dataset(s): {', '.join(unknown)}")
    store = DeltaStore(proj.warehouse_path)
    pins = pinned(proj)
    out = []
    for name in list(datasets) or list(proj.datasets):
        for table_name in (name, f"{name}__quarantine"):
            if not store.exists(table_name):
                continue
            keep, lost = _readable(store.path(table_name), pins.get(table_name, set()))
            table = store.open_table(table_name)
            # delta-rs lists the files (a dry run commits nothing); deleting them here keeps
            # the table's version: its own vacuum commits VACUUM START/END, a new version
            # that would make every downstream dataset run again
            listed = table.vacuum(
                retention_hours=retain_hours,
                dry_run=True,
                enforce_retention_duration=False,
                keep_versions=keep or None,
            )
            if not dry_run:
                _delete(store.path(table_name), listed)
            out.append(VacuumResult(table_name, tuple(keep), tuple(sorted(listed)), tuple(lost)))
    return out


def _readable(path: Path, versions: set[int]) -> tuple[list[int], list[int]]:
    """``versions`` split into those whose log can still be read and those it cannot (delta-rs
    cleans up log files older than ``delta.logRetentionDuration`` after a checkpoint; asked to
    keep such a version, its vacuum refuses to run at all)."""
    from deltalake import DeltaTable

    keep, lost = [], []
    for v in sorted(versions):
        try:
            DeltaTable(str(path), version=v)
            keep.append(v)
        except Exception:  # delta-rs raises its own kinds for a missing log segment
            lost.append(v)
    return keep, lost


def _delete(root: Path, files: Sequence[str]) -> None:
    """Unlink ``files`` (paths relative to the table folder, as delta-rs lists them); never
    anything outside the table folder or in ``_delta_log``."""
    base = root.resolve()
    for rel in files:
        path = (base / rel).resolve()
        if base not in path.parents or "_delta_log" in path.relative_to(base).parts:
            raise UsageError(f"vacuum: refusing to delete {rel!r} outside the table's data files")
        path.unlink(missing_ok=True)  # a concurrent vacuum may have taken it already
