"""Which warehouse is this project? Match the warehouse's identity file against the state
store's record of the project name, before a run reads any state.

The warehouse is the truth about what was published; the state store only remembers. The
cases (W = the warehouse's id, S = the state store's record of the name):

- no S: a first run, or a new/deleted state store: register W (a new id when W is missing);
- S = W: the same project (moved, when the path differs: the record follows it), unless the
  old path still holds the same id — a *copy* of the warehouse, which would share one
  history: refused;
- no W, but the recorded folder is this one and still holds tables: the identity file alone
  was lost; it is written again;
- S ≠ W (or no W): another warehouse holds this name. If that warehouse is still there (on
  this host) it is a second project with the same name: refused, nothing is read. Another
  host's warehouse cannot be checked: refused. If it is gone (deleted, emptied, replaced),
  what the state store says was published is not there: refused too, unless
  ``--full-refresh``, which rebuilds every selected dataset from its inputs under a new id
  (earlier runs are not evidence of what this warehouse holds).

A SQLite state store inside the project folder (the default) is private to that folder: a
copied project folder carries its own history, so nothing is refused — a copied or
replaced warehouse only starts or follows its identity.
"""

from __future__ import annotations

import logging
from pathlib import Path

import sqlalchemy as sa

from lockgate.state.errors import ProjectIdentityError
from lockgate.state.lock import HOST
from lockgate.state.projects import ProjectRecord
from lockgate.state.store import StateStore
from lockgate.storage.identity import WarehouseIdentity, read_identity, write_identity

log = logging.getLogger(__name__)

FIX = (
    "give one of the projects its own `name:` in lockgate.yaml, or its own `state:` store "
    "(two projects with one name in one state store would read each other's watermarks)"
)


def private_store(state_url: str, root: Path) -> bool:
    """Whether the state store is a SQLite file inside the project folder: then it belongs
    to this copy of the project alone (a copied project folder carries its own history)."""
    url = sa.engine.make_url(state_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return False
    return Path(url.database).resolve().is_relative_to(Path(root).resolve())


def resolve(
    state: StateStore,
    warehouse: Path,
    name: str,
    *,
    full_refresh: bool = False,
    write: bool = True,
    private: bool = False,
) -> str | None:
    """The project id this run works under; registers it (and writes the warehouse's
    identity file) when ``write``. Raises :class:`ProjectIdentityError` on a clash.
    With ``write=False`` (dry run) returns None where a new identity would be created.
    ``private``: the state store belongs to this project folder alone (no clash possible)."""
    path = str(Path(warehouse).resolve())
    mine = read_identity(Path(warehouse))
    rec = state.project_record(name)
    if rec is not None and mine is not None and rec.project_id == mine.project_id:
        _follow(state, rec, mine, path, name, write=write, private=private)
        return mine.project_id
    if rec is not None:
        if mine is None and (rec.warehouse, rec.host) == (path, HOST) and _has_tables(warehouse):
            # the same folder, still holding tables: only the identity file was lost
            log.warning("project %r: restored the identity file of warehouse %s", name, path)
            if write:
                write_identity(Path(warehouse), name, rec.project_id)
                state.register_project(name, rec.project_id, path)
            return str(rec.project_id)
        if not private:
            _refuse_if_other_is_live(state, rec, path, name, mine, full_refresh)
        if not full_refresh and state.published_anything(name, rec.project_id):
            raise _emptied(state, rec, name, _here(path, mine))
        log.warning(
            "project %r: the state store's history belongs to warehouse %s (id %s), which "
            "no longer holds it; %s starts a new history: every dataset is loaded from "
            "its inputs",
            name,
            rec.warehouse,
            rec.project_id,
            path,
        )
    if not write:
        return None if mine is None else mine.project_id
    if mine is None:
        mine = write_identity(Path(warehouse), name)
    state.register_project(name, mine.project_id, path)
    return mine.project_id


def _follow(
    state: StateStore,
    rec: ProjectRecord,
    mine: WarehouseIdentity,
    path: str,
    name: str,
    *,
    write: bool,
    private: bool,
) -> None:
    """The same project: follow a moved warehouse — unless the old one is still there (a
    copy, which would share one history)."""
    if (rec.warehouse, rec.host) == (path, HOST):
        return
    if not private and _still_there(rec, mine.project_id):
        raise ProjectIdentityError(
            f"the warehouse {path} is a copy of {rec.warehouse} (both carry project "
            f"id {mine.project_id} of project {name!r}): they would share one history "
            f"in the state store {state.url}",
            hint="to move the warehouse, remove the old folder first; to keep the copy "
            f"as a project of its own, delete {path}/_lockgate_project.json and " + FIX,
        )
    log.warning(
        "project %r: its warehouse moved from %s (host %s) to %s",
        name,
        rec.warehouse,
        rec.host,
        path,
    )
    if write:
        state.register_project(name, mine.project_id, path)


def _has_tables(warehouse: Path) -> bool:
    try:
        return any((p / "_delta_log").is_dir() for p in Path(warehouse).iterdir())
    except OSError:
        return False


def _here(path: str, mine: WarehouseIdentity | None) -> str:
    return f"this warehouse {path} " + (
        f"has project id {mine.project_id}" if mine is not None else "has no lockgate identity"
    )


def _emptied(state: StateStore, rec: ProjectRecord, name: str, here: str) -> ProjectIdentityError:
    return ProjectIdentityError(
        f"the state store {state.url} holds the history of project {name!r} in warehouse "
        f"{rec.warehouse} (project id {rec.project_id}), but {here}: the warehouse was "
        "deleted, emptied or replaced, so what the state store says was published is not there",
        hint="if that was on purpose, `lockgate run --full-refresh` rebuilds every dataset from "
        "its inputs and starts a new history (rows whose input files are gone cannot come "
        "back); otherwise restore the warehouse from a backup",
    )


def _still_there(rec: ProjectRecord, project_id: str) -> bool:
    """Whether the recorded warehouse (on this host) still carries ``project_id``."""
    if rec.host != HOST:
        return False
    try:
        other = read_identity(Path(rec.warehouse))
    except Exception:  # unreadable: it is still there, and not ours to judge
        return True
    return other is not None and other.project_id == project_id


def _refuse_if_other_is_live(
    state: StateStore,
    rec: ProjectRecord,
    path: str,
    name: str,
    mine: WarehouseIdentity | None,
    full_refresh: bool,
) -> None:
    here = _here(path, mine)
    if rec.host == HOST:
        if rec.warehouse == path or not _still_there(rec, rec.project_id):
            return  # the recorded warehouse is gone (deleted, emptied, replaced)
        raise ProjectIdentityError(
            f"project name {name!r} is already used in the state store {state.url} by "
            f"another warehouse, {rec.warehouse} (project id {rec.project_id}); {here}",
            hint=FIX,
        )
    if full_refresh:
        return
    raise ProjectIdentityError(
        f"project name {name!r} is registered in the state store {state.url} to the "
        f"warehouse {rec.warehouse} on host {rec.host!r} (project id {rec.project_id}); {here}",
        hint=FIX + ". If that project no longer exists, `lockgate run --full-refresh` makes "
        "this warehouse the owner of the name and rebuilds it from its inputs",
    )
