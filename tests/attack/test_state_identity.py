"""The state store and the warehouse must agree, and a project must not inherit another
project's state: disagreement fails the affected dataset clearly (others keep running),
never a success with rows missing."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from lockgate.runloop.results import StepStatus
from tests.attack._util import build, cli, csv_source, published, run, write_files


def _events(path: str = "data/*.csv") -> dict[str, Any]:
    return {
        "name": "ev",
        "source": {"type": "file", "path": path, "columns": {"id": "BIGINT", "ts": "BIGINT"}},
        "incremental": {"cursor": "ts"},
    }


def _rows(lo: int, hi: int) -> str:
    return "id,ts\n" + "".join(f"{i},{i}\n" for i in range(lo, hi + 1))


def test_two_projects_with_one_name_sharing_a_state_store(tmp_path: Path, pg_url: str) -> None:
    name = "attack_same_" + uuid.uuid4().hex[:10]
    cfg = {"name": name, "state": pg_url}
    a = build(tmp_path / "a", [_events()], {"data/x.csv": _rows(1, 100)}, config=cfg)
    b = build(tmp_path / "b", [_events()], {"data/y.csv": _rows(1, 40)}, config=cfg)
    assert run(a).ok
    r = cli("run", "-p", str(b), "--json")
    ids = sorted(row["id"] for row in published(b, "ev"))
    if r.exit_code == 0:
        assert ids == list(range(1, 41)), (
            f"project b (same name as a, own warehouse) ingested {len(ids)} of its 40 rows and "
            "reported success: it inherited a's watermark"
        )
    else:
        assert "project" in (r.stdout + r.stderr).lower(), (
            f"refusal must explain the clash: {r.stderr[-500:]}"
        )


def _two_datasets(tmp_path: Path) -> Path:
    return build(
        tmp_path / "p",
        [_events(), csv_source("other", "data_other/o.csv")],
        {"data/a.csv": _rows(1, 3), "data_other/o.csv": "k\n1\n"},
    )


def test_deleted_latest_delta_log_is_not_a_silent_success(tmp_path: Path) -> None:
    root = _two_datasets(tmp_path)
    assert run(root).ok
    write_files(root, {"data/b.csv": _rows(4, 6)})
    assert run(root).ok
    log = sorted((root / "warehouse" / "ev" / "_delta_log").glob("*.json"))
    log[-1].unlink()  # the commit that added ids 4..6
    write_files(root, {"data/c.csv": _rows(7, 9), "data_other/o.csv": "k\n1\n2\n"})
    res = run(root)
    step = res.step("ev")
    ids = sorted(r["id"] for r in published(root, "ev"))
    if step.status == StepStatus.SUCCESS:
        assert ids == list(range(1, 10)), (
            f"the state store trusted itself over the warehouse: success with ids {ids} "
            "(the deleted commit's rows 4..6 are gone)"
        )
    else:
        assert "unexpected" not in step.reason.lower() and step.reason, step.reason
    assert res.step("other").status == StepStatus.SUCCESS, "an unrelated dataset must keep running"


def test_truncated_delta_log_fails_only_that_dataset_and_is_recorded(tmp_path: Path) -> None:
    root = _two_datasets(tmp_path)
    assert run(root).ok
    write_files(root, {"data/b.csv": _rows(4, 6)})
    assert run(root).ok
    log = sorted((root / "warehouse" / "ev" / "_delta_log").glob("*.json"))
    text = log[-1].read_bytes()
    log[-1].write_bytes(text[: len(text) // 2])
    write_files(root, {"data_other/o.csv": "k\n1\n2\n3\n"})
    r = cli("run", "-p", str(root), "--json")
    assert r.exit_code != 0, "a corrupt table log cannot be a successful run"
    assert r.stdout.strip().startswith("{"), (
        f"the run must still happen and report: {r.stderr[-600:]}"
    )
    import json

    steps = {s["dataset"]: s for s in json.loads(r.stdout)["steps"]}
    assert steps["other"]["status"] == "success", (
        f"an unrelated dataset was aborted: {steps['other']}"
    )
    assert steps["ev"]["status"] == "failed" and "unexpected" not in steps["ev"]["reason"].lower()
    history = cli("runs", "-p", str(root), "--json")
    assert json.loads(r.stdout)["run_id"] in history.stdout, "the failed run is not in the history"
    fix = cli("run", "-p", str(root), "--full-refresh", "--select", "ev", "--json")
    assert fix.exit_code == 0, (
        f"--full-refresh must be able to rebuild the dataset: {fix.stderr[-600:]}"
    )
    assert sorted(x["id"] for x in published(root, "ev")) == list(range(1, 7))
