"""A project's identity: the warehouse carries an id, the state store records which
warehouse a project name belongs to. Two projects with one name in one state store are
refused; a deleted warehouse, a deleted state store and a moved warehouse are handled by
what the warehouse holds, never by the state store's memory of another warehouse."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import deltalake
import pytest
import sqlalchemy as sa

from lockgate.project import load_project
from lockgate.runloop.plan import plan
from lockgate.runloop.results import RunStatus, StepStatus
from lockgate.runloop.runner import run
from lockgate.state import StateStore
from lockgate.state import tables as t
from lockgate.state.errors import ProjectIdentityError
from lockgate.storage.identity import IDENTITY_FILE, WarehouseIdentityError, read_identity
from tests.run.helpers import csv_source, make_project

EVENTS = [csv_source("ev", "data/*.csv", incremental={"cursor": "ts"}, columns={"ts": "BIGINT"})]


def _csv(first: int, last: int) -> str:
    return "ts,v\n" + "".join(f"{i},v{i}\n" for i in range(first, last + 1))


def _project(root: Path, url: str, rows: int, name: str = "shop", **cfg: str) -> Path:
    config = {"name": name, "state": url, **cfg}
    return make_project(root, EVENTS, files={"data/x.csv": _csv(1, rows)}, config=config)


def _rows(root: Path, table: str = "ev", warehouse: str = "warehouse") -> int:
    return deltalake.DeltaTable(str(root / warehouse / table)).to_pyarrow_table().num_rows


def test_second_project_with_the_same_name_is_refused(state_url: str, tmp_path: Path) -> None:
    """``state_url`` is one store both point at: SQLite by absolute path, or PostgreSQL."""
    a = _project(tmp_path / "a", state_url, rows=100)
    b = _project(tmp_path / "b", state_url, rows=200)
    assert run(load_project(a)).status == RunStatus.SUCCESS
    with pytest.raises(ProjectIdentityError) as ei:
        run(load_project(b))
    msg = str(ei.value)
    assert str((a / "warehouse").resolve()) in msg and str(b / "warehouse") in msg
    assert "name:" in msg and "state:" in msg  # how to fix it
    assert ei.value.exit_code == 2
    with pytest.raises(ProjectIdentityError):  # the dry run refuses as well
        plan(load_project(b))
    assert not (b / "warehouse" / "ev").exists()  # nothing of b was read or published
    # the first project is untouched and keeps working
    (a / "data" / "y.csv").write_text(_csv(101, 120))
    assert run(load_project(a)).step("ev").rows_out == 20
    # with a name of its own, b gets every one of its rows
    cfg = (b / "lockgate.yaml").read_text().replace("name: shop", "name: shop_b")
    (b / "lockgate.yaml").write_text(cfg)
    r = run(load_project(b))
    assert r.step("ev").rows_out == 200 and _rows(b) == 200


def test_first_run_writes_the_identity_and_registers_it(state_url: str, tmp_path: Path) -> None:
    a = _project(tmp_path / "a", state_url, rows=3)
    run(load_project(a))
    ident = read_identity(a / "warehouse")
    assert ident is not None and ident.name == "shop"
    with StateStore.open(state_url) as st:
        rec = st.project_record("shop")
        assert rec is not None and rec.project_id == ident.project_id
        assert rec.warehouse == str((a / "warehouse").resolve())
        with st.engine.connect() as conn:
            ids = conn.execute(sa.select(t.runs.c.project_id)).scalars().all()
        assert ids == [ident.project_id]


def test_deleted_warehouse_is_refused_until_a_full_refresh(state_url: str, tmp_path: Path) -> None:
    a = _project(tmp_path / "a", state_url, rows=50)
    run(load_project(a))
    old = read_identity(a / "warehouse")
    shutil.rmtree(a / "warehouse")  # the state store still says 50 rows were published
    (a / "data" / "y.csv").write_text(_csv(51, 60))
    with pytest.raises(ProjectIdentityError, match="deleted, emptied or replaced") as ei:
        run(load_project(a))  # not 10 rows reported as success
    assert "--full-refresh" in str(ei.value) and ei.value.exit_code == 2
    assert not (a / "warehouse" / "ev").exists()
    r = run(load_project(a), full_refresh=True)
    assert r.status == RunStatus.SUCCESS
    assert r.step("ev").rows_out == 60 and _rows(a) == 60  # not just the 10 new ones
    new = read_identity(a / "warehouse")
    assert new is not None and old is not None and new.project_id != old.project_id


def test_emptied_warehouse_keeps_no_inherited_file_list(state_url: str, tmp_path: Path) -> None:
    """The identity file survives but the tables are gone: the dataset fails loudly (the state
    store says it published) instead of skipping the files it remembers."""
    a = _project(tmp_path / "a", state_url, rows=5)
    run(load_project(a))
    shutil.rmtree(a / "warehouse" / "ev")
    (a / "data" / "y.csv").write_text(_csv(6, 7))
    r = run(load_project(a))
    step = r.step("ev")
    assert step.status == StepStatus.FAILED and "no such table" in step.reason
    assert "--full-refresh" in (step.hint or "")
    r = run(load_project(a), full_refresh=True)
    assert r.status == RunStatus.SUCCESS and _rows(a) == 7


def test_deleted_state_store_adopts_the_warehouse(tmp_path: Path) -> None:
    a = _project(tmp_path / "a", "sqlite:///.lockgate/state.db", rows=10)
    run(load_project(a))
    ident = read_identity(a / "warehouse")
    shutil.rmtree(a / ".lockgate")
    (a / "data" / "y.csv").write_text(_csv(11, 15))
    r = run(load_project(a))
    assert r.status == RunStatus.SUCCESS and _rows(a) == 15
    assert read_identity(a / "warehouse") == ident


def test_moved_warehouse_follows(state_url: str, tmp_path: Path) -> None:
    a = _project(tmp_path / "a", state_url, rows=10, warehouse="wh1")
    run(load_project(a))
    shutil.move(a / "wh1", a / "wh2")
    (a / "lockgate.yaml").write_text((a / "lockgate.yaml").read_text().replace("wh1", "wh2"))
    r = run(load_project(a))
    assert r.step("ev").status == StepStatus.NOOP  # same project, same data: nothing to do
    with StateStore.open(state_url) as st:
        rec = st.project_record("shop")
    assert rec is not None and rec.warehouse == str((a / "wh2").resolve())


@pytest.mark.postgres
def test_copied_warehouse_sharing_a_server_store_is_refused(pg_url: str, tmp_path: Path) -> None:
    a = _project(tmp_path / "a", pg_url, rows=10)
    run(load_project(a))
    b = tmp_path / "b"
    shutil.copytree(a, b, ignore=shutil.ignore_patterns(".lockgate"))
    with pytest.raises(ProjectIdentityError, match="is a copy of"):
        run(load_project(b))


def test_project_registered_on_another_host(state_url: str, tmp_path: Path) -> None:
    a = _project(tmp_path / "a", state_url, rows=10)
    run(load_project(a))
    with StateStore.open(state_url) as st, st.engine.begin() as conn:
        conn.execute(sa.update(t.projects).values(project_id="f" * 32, host="elsewhere"))
    with pytest.raises(ProjectIdentityError, match="elsewhere") as ei:
        run(load_project(a))
    assert "--full-refresh" in str(ei.value)
    r = run(load_project(a), full_refresh=True)  # the explicit take-over
    assert r.status == RunStatus.SUCCESS and _rows(a) == 10


@pytest.mark.parametrize("text", ["{not json", "[]", '{"project_id": "../x"}', ""])
def test_malformed_identity_file(tmp_path: Path, text: str) -> None:
    a = _project(tmp_path / "a", "sqlite:///.lockgate/state.db", rows=2)
    run(load_project(a))
    (a / "warehouse" / IDENTITY_FILE).write_text(text)
    with pytest.raises(WarehouseIdentityError) as ei:
        run(load_project(a))
    assert IDENTITY_FILE in str(ei.value) and ei.value.exit_code == 2


def test_identity_file_is_json_with_the_name(tmp_path: Path) -> None:
    a = _project(tmp_path / "a", "sqlite:///.lockgate/state.db", rows=2)
    run(load_project(a))
    data = json.loads((a / "warehouse" / IDENTITY_FILE).read_text())
    assert data["name"] == "shop" and len(data["project_id"]) == 32


def test_project_from_before_identities_is_adopted(state_url: str, tmp_path: Path) -> None:
    """A warehouse and state store written before identities existed: the first run gives
    the warehouse its id and keeps the history (the file list of published files is used)."""
    a = _project(tmp_path / "a", state_url, rows=10)
    run(load_project(a))
    (a / "warehouse" / IDENTITY_FILE).unlink()
    with StateStore.open(state_url) as st, st.engine.begin() as conn:
        conn.execute(sa.delete(t.projects))
        conn.execute(sa.update(t.runs).values(project_id=None))
    r = run(load_project(a))
    assert r.status == RunStatus.SUCCESS and r.step("ev").status == StepStatus.NOOP
    ident = read_identity(a / "warehouse")
    assert ident is not None
    with StateStore.open(state_url) as st:
        steps = st.dataset_steps("shop", "ev", project_id=ident.project_id)
    assert [s.status for s in steps] == ["noop", "success"]  # the old run was adopted


def test_copied_project_folder_with_its_own_state_runs(tmp_path: Path) -> None:
    """The default SQLite state inside the project folder travels with a copy: both the
    original and the copy keep working, each on its own history."""
    a = _project(tmp_path / "a", "sqlite:///.lockgate/state.db", rows=10)
    run(load_project(a))
    b = tmp_path / "b"
    shutil.copytree(a, b)
    (b / "data" / "y.csv").write_text(_csv(11, 12))
    r = run(load_project(b))
    assert r.status == RunStatus.SUCCESS and r.step("ev").rows_out == 2 and _rows(b) == 12
    (a / "data" / "y.csv").write_text(_csv(11, 15))
    r = run(load_project(a))
    assert r.status == RunStatus.SUCCESS and r.step("ev").rows_out == 5 and _rows(a) == 15


def test_copied_warehouse_sharing_a_sqlite_file_is_refused(tmp_path: Path) -> None:
    shared = f"sqlite:///{tmp_path / 'shared' / 'state.db'}"
    a = _project(tmp_path / "a", shared, rows=10)
    run(load_project(a))
    b = tmp_path / "b"
    shutil.copytree(a, b)
    with pytest.raises(ProjectIdentityError, match="is a copy of"):
        run(load_project(b))


def test_lost_identity_file_is_restored(state_url: str, tmp_path: Path) -> None:
    a = _project(tmp_path / "a", state_url, rows=10)
    run(load_project(a))
    ident = read_identity(a / "warehouse")
    (a / "warehouse" / IDENTITY_FILE).unlink()
    r = run(load_project(a))
    assert r.status == RunStatus.SUCCESS and r.step("ev").status == StepStatus.NOOP
    restored = read_identity(a / "warehouse")
    assert ident is not None and restored is not None
    assert restored.project_id == ident.project_id


def test_warehouse_that_never_held_a_table_may_be_deleted(state_url: str, tmp_path: Path) -> None:
    """Nothing was ever published (the first run failed): nothing can be lost either."""
    a = make_project(
        tmp_path / "a",
        EVENTS,
        files={"data/x.csv": "ts,v\n1,a\n"},
        config={"name": "shop", "state": state_url},
    )
    (a / "data" / "x.csv").unlink()
    assert run(load_project(a)).status == RunStatus.FAILED  # no input: nothing published
    shutil.rmtree(a / "warehouse")
    (a / "data" / "x.csv").write_text(_csv(1, 4))
    r = run(load_project(a))
    assert r.status == RunStatus.SUCCESS and _rows(a) == 4
