"""Materialisation history, settled truthfully: what ``lockgate features status`` shows.

A row is written ``running`` before a view's batch reaches the online store
(:mod:`lockgate.state.materializations`). If the process is killed (``kill -9``, OOM), the
row stays ``running`` with a process that no longer exists. Such a row is settled by
comparing the mark the run was about to write with the mark the online store holds — the
mark is written last in every batch, so:

- the store holds that mark → the batch completed; status ``success`` (rows unknown: the
  process died before counting them), error says so;
- otherwise → ``interrupted``: the store still answers from the previous mark; the next run
  recomputes the same keys (idempotent).

:func:`settle` persists that (``materialize`` calls it first); :func:`materializations`
(``lockgate.api.materializations``) shows it without writing.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from lockgate.state import materializations as mh

if TYPE_CHECKING:
    from lockgate.features.online import OnlineStore
    from lockgate.project import Project
    from lockgate.state.materializations import MaterializationRecord
    from lockgate.state.store import StateStore

_DIED = "the process (pid {pid} on {host}) ended without finishing"


def verdict(rec: MaterializationRecord, store: OnlineStore) -> tuple[str, str]:
    """(status, error) of a stale ``running`` row."""
    held = store.mark(rec.view)
    died = _DIED.format(pid=rec.pid, host=rec.host)
    if rec.mark is not None and held is not None and held.dumps() == rec.mark:
        return mh.SUCCESS, f"{died}, after its batch was complete (the store holds its mark)"
    return mh.INTERRUPTED, f"{died}; the online store still serves the previous mark"


def settle(state: StateStore, project: str, store: OnlineStore) -> int:
    """Close the stale ``running`` rows of ``project``; returns how many."""
    rows = mh.stale(state, project)
    for rec in rows:
        status, error = verdict(rec, store)
        mh.update(state, rec.id, status=status, error=error)  # finished_at stays unknown
    return len(rows)


def materializations(
    project: Project | str | Path, *, view: str | None = None, limit: int = 20
) -> list[dict[str, Any]]:
    """The materialisation history of ``project`` (one view, or all), newest first: view,
    dataset, versions read (``from_version`` → ``to_version``), mode, rows written and
    deleted, online store, started/finished, status (``running``, ``success``, ``failed``,
    ``interrupted``) and error. A run killed mid-way shows as settled (see the module)."""
    from lockgate._project_ref import as_project
    from lockgate.features.online import open_store
    from lockgate.state import StateStore

    proj = as_project(project)
    with StateStore.open(proj.state_url) as state:
        recs = mh.history(state, proj.name, view=view, limit=limit)
    out = [r.as_dict() for r in recs]
    stale = [i for i, r in enumerate(recs) if mh.is_stale(r)]
    if stale:
        store = open_store(proj)
        try:
            for i in stale:
                out[i]["status"], out[i]["error"] = verdict(recs[i], store)
        finally:
            store.close()
    return out
