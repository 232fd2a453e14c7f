"""``type: rest`` with ``primary_key`` and no write mode merges on the key: a second run over
the same (partly changed) API data leaves each key once; an explicit ``append`` appends."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import lockgate
from lockgate.project import load_project
from tests.run.helpers import make_project
from tests.sources.rest_server import Reply, Request, Server, running

pytest.importorskip("httpx")


@pytest.fixture
def server() -> Iterator[Server]:
    with running() as s:
        yield s


def accounted(step: Any) -> None:
    assert step.rows_in == step.rows_out + step.rows_quarantined + step.rows_skipped


def _serve(server: Server, rows: list[dict[str, Any]]) -> None:
    def pages(r: Request) -> Reply:
        p = int(r.query["page"])
        return 200, {}, {"data": rows[(p - 1) * 4 : p * 4]}

    server.route("/c", pages)


def _project(root: Path, server: Server, **dataset: Any) -> Path:
    src = {
        "type": "rest",
        "base_url": server.url,
        "path": "/c",
        "paginator": {"type": "page_number"},
        "record_path": "data",
        "primary_key": ["id"],
    }
    return make_project(root, [{"name": "c", "source": src, **dataset}])


def test_primary_key_without_write_mode_merges_on_it(tmp_path: Path, server: Server) -> None:
    rows = [{"id": i, "v": f"v{i}"} for i in range(1, 11)] + [{"id": None, "v": "no key"}]
    _serve(server, rows)
    root = _project(tmp_path / "p", server)
    write = load_project(root).effective_write("c")
    assert str(write.mode) == "merge" and write.keys == ("id",)
    first = lockgate.run(root).steps[0]
    assert first.status == "success", first.error
    accounted(first)
    rows[2]["v"] = "changed"  # id 3 changed at the source
    second = lockgate.run(root).steps[0]
    assert second.status == "success", second.error
    accounted(second)
    assert second.rows_in == 11 and second.rows_quarantined == 1  # the record without a key
    table = lockgate.read(root, "c").to_pylist()
    got = sorted((r["id"], r["v"]) for r in table)
    assert got == sorted([(i, "changed" if i == 3 else f"v{i}") for i in range(1, 11)])


def test_explicit_append_and_project_default_stay_append(tmp_path: Path, server: Server) -> None:
    rows = [{"id": i, "v": f"v{i}"} for i in range(1, 6)]
    _serve(server, rows)
    root = _project(tmp_path / "a", server, write={"mode": "append"})
    for _ in range(2):
        step = lockgate.run(root).steps[0]
        accounted(step)
    assert sorted(r["id"] for r in lockgate.read(root, "c").to_pylist()) == sorted(
        [*range(1, 6), *range(1, 6)]
    )
    root = _project(tmp_path / "b", server)
    cfg = (root / "lockgate.yaml").read_text() + "defaults: {write_mode: append}\n"
    (root / "lockgate.yaml").write_text(cfg)
    assert str(load_project(root).effective_write("c").mode) == "append"


def test_an_empty_first_read_publishes_nothing_and_fixes_no_type(
    tmp_path: Path, server: Server
) -> None:
    """No record and no ``columns:``: the columns are unknown, so nothing is published (a
    placeholder would fix the key as text and leave a column0 behind); the first records
    then create the table with their real types."""
    rows: list[dict[str, Any]] = []
    _serve(server, rows)
    root = make_project(
        tmp_path / "p",
        [
            {
                "name": "c",
                "source": {
                    "type": "rest",
                    "base_url": server.url,
                    "path": "/c",
                    "paginator": {"type": "page_number"},
                    "record_path": "data",
                    "primary_key": ["id"],
                },
            },
            {"name": "d", "transform": {"sql": "select id, v from c"}},
        ],
    )
    empty = lockgate.run(root)
    step = empty.steps[0]
    assert step.status == "success" and step.rows_in == 0 and step.output_version is None
    assert "no records read" in (step.reason or "")
    assert not (root / "warehouse" / "c" / "_delta_log").exists()
    # the downstream transform says why it cannot run yet
    assert "reads 'c', which has never been published" in (empty.steps[1].error or "")
    rows.extend({"id": i, "v": f"v{i}"} for i in range(1, 4))
    full = lockgate.run(root)
    assert full.ok, full
    table = lockgate.read(root, "c")
    assert table.schema.field("id").type == "int64" and "column0" not in table.column_names
    assert sorted(table.column("id").to_pylist()) == [1, 2, 3]
    assert sorted(lockgate.read(root, "d").column("id").to_pylist()) == [1, 2, 3]
