"""The run's engine work directory: DuckDB files a killed run left behind are removed by the
next run (under the project lock). Kept apart from the adapter so that a run which opens no
session (every step up to date) does not import DuckDB to tidy up."""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path


def clean_stale_work(work_dir: Path, keep: str | None = None) -> None:
    """Remove work databases left by killed runs (call while holding the project lock)."""
    if not work_dir.is_dir():
        return
    for p in work_dir.iterdir():
        if keep and p.name.startswith(keep):
            continue
        if p.suffix in (".duckdb", ".wal", ".tmp") or p.name.endswith(".duckdb.wal"):
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    os.unlink(p)
