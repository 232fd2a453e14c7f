"""The read commands, human and --json: runs, runs RUN_ID, show, quarantine, run --dry-run,
validate; exit codes and did-you-mean hints; --json output is pure JSON on stdout."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.cli.helpers import MORE_ORDERS, build, cli, run_json, subprocess_cli


@pytest.fixture
def ran(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    root = build(tmp_path / "p")
    code, out = run_json(root)
    assert code == 0, out
    return root, out


def _json(*args: str) -> Any:
    r = cli(*args)
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def _dry(root: Path, *extra: str) -> dict[str, tuple[str, str]]:
    steps = _json("run", "--dry-run", "--json", "-p", str(root), *extra)
    return {s["dataset"]: (s["status"], s["reason"]) for s in steps}


def test_run_json_is_pure_json_with_progress_on_stderr(tmp_path: Path) -> None:
    root = build(tmp_path / "p")
    p = subprocess_cli("run", "--json", "-p", str(root))
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)  # nothing but JSON on stdout
    assert out["status"] == "success" and out["project"].startswith("t_")
    steps = {s["dataset"]: s for s in out["steps"]}
    assert steps["orders"]["rows_in"] == 5 and steps["orders"]["rows_quarantined"] == 2
    assert steps["orders"]["output_version"] == 0
    assert {c["name"] for c in steps["orders"]["checks"]} == {
        "customer_id_not_null",
        "status_accepted_values",
    }
    assert "success orders" in p.stderr  # progress went to stderr
    p = subprocess_cli("run", "--json", "-p", str(root))
    again = json.loads(p.stdout)
    assert p.returncode == 0 and {s["status"] for s in again["steps"]} == {"noop"}


def test_human_run_prints_summary(tmp_path: Path) -> None:
    root = build(tmp_path / "p")
    r = cli("run", "-p", str(root))
    assert r.exit_code == 0
    for name in ("orders", "rev", "top", "enriched", "big_orders"):
        assert name in r.stdout
    assert "success" in r.stdout and r.stderr == ""


def test_dry_run_says_what_and_why(tmp_path: Path) -> None:
    root = build(tmp_path / "p")
    before = _dry(root)
    assert before["orders"] == ("planned", "never published")
    assert before["rev"] == ("planned", "upstream 'orders' will publish a new version")
    assert before["big_orders"][1] == "upstream 'enriched' will publish a new version"
    r = cli("run", "--dry-run", "-p", str(root))
    assert r.exit_code == 0 and "never published" in r.stdout and "would" in r.stdout
    assert not (root / "warehouse" / "orders").exists()  # a dry run publishes nothing

    assert cli("run", "-p", str(root)).exit_code == 0
    after = _dry(root)
    assert {s for s, _ in after.values()} == {"noop"}
    assert "unchanged since version 0" in after["orders"][1]

    # touching the input (same content, new mtime) changes its fingerprint
    csv = root / "data" / "orders.csv"
    st = csv.stat()
    os.utime(csv, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    touched = _dry(root)
    status, why = touched["orders"]
    assert status == "planned" and why.startswith("new input: source ")
    assert why.endswith("since version 0"), why
    assert touched["rev"][0] == "planned" and "upstream 'orders'" in touched["rev"][1]

    # --select limits the plan; --full-refresh says so
    sel = _dry(root, "--select", "enriched+")
    assert set(sel) == {"enriched", "big_orders"}
    assert all(s == "noop" for s, _ in sel.values())
    fr = _dry(root, "--select", "rev", "--full-refresh")
    assert fr == {"rev": ("planned", "--full-refresh: rebuild from all input data")}


def test_runs_history_and_one_run(ran: tuple[Path, dict[str, Any]]) -> None:
    root, first = ran
    (root / "data" / "orders.csv").write_text(MORE_ORDERS)
    code, second = run_json(root, "--select", "orders+")
    assert code == 0
    runs = _json("runs", "--json", "-p", str(root))
    assert [r["run_id"] for r in runs] == [second["run_id"], first["run_id"]]  # newest first
    assert [r["seq"] for r in runs] == [2, 1]
    assert runs[0]["selection"] == "orders+" and runs[1]["selection"] == "*"
    assert runs[0]["status"] == "success" and runs[1]["summary"]["rows_quarantined"] == 2
    assert len(_json("runs", "--json", "-n", "1", "-p", str(root))) == 1

    human = cli("runs", "-p", str(root))
    assert human.exit_code == 0
    assert first["run_id"][:8] in human.stdout and second["run_id"][:8] in human.stdout

    one = _json("runs", first["run_id"][:6], "--json", "-p", str(root))
    assert one["run_id"] == first["run_id"]
    steps = {s["dataset"]: s for s in one["steps"]}
    assert set(steps) == {"orders", "rev", "top", "enriched", "big_orders"}
    assert steps["orders"]["rows_quarantined"] == 2
    r = cli("runs", first["run_id"][:8], "-p", str(root))
    assert r.exit_code == 0
    assert first["run_id"] in r.stdout and "customer_id_not_null" in r.stdout

    r = cli("runs", "ffffffffff", "-p", str(root))
    assert r.exit_code == 2 and "no run 'ffffffffff'" in r.stderr and "lockgate runs" in r.stderr


def test_show_dataset(ran: tuple[Path, dict[str, Any]]) -> None:
    root, first = ran
    info = _json("show", "orders", "--json", "-p", str(root))
    assert info["kind"] == "source" and info["version"] == 0
    assert [c["name"] for c in info["schema"]] == ["order_id", "customer_id", "status", "amount"]
    assert info["history"][0]["version"] == 0
    assert info["history"][0]["lockgate"]["run_id"] == first["run_id"]
    assert info["last_steps"][0]["run_id"] == first["run_id"]
    assert {c["check_name"] for c in info["checks"]} >= {"customer_id_not_null"}
    assert sorted(r["order_id"] for r in info["sample"]) == [1, 2, 5]
    assert info["upstream"] == []
    assert _json("show", "top", "--json", "-p", str(root))["upstream"] == ["rev"]
    assert _json("show", "orders", "--json", "--rows", "0", "-p", str(root))["sample"] == []

    r = cli("show", "orders", "-p", str(root))
    assert r.exit_code == 0
    for part in ("schema", "versions", "last runs", "checks", "sample", "customer_id"):
        assert part in r.stdout, part


def test_show_never_published(tmp_path: Path) -> None:
    root = build(tmp_path / "p")
    info = _json("show", "rev", "--json", "-p", str(root))
    assert info["version"] is None and info["schema"] is None and info["sample"] == []
    r = cli("show", "rev", "-p", str(root))
    assert r.exit_code == 0 and "never published" in r.stdout


def test_quarantine(ran: tuple[Path, dict[str, Any]]) -> None:
    root, first = ran
    q = _json("quarantine", "orders", "--json", "-p", str(root))
    assert q["total"] == 2
    assert q["by_check"] == {"customer_id_not_null": 1, "status_accepted_values": 1}
    assert {r["order_id"]: r["_lg_failed_checks"] for r in q["rows"]} == {
        3: ["customer_id_not_null"],
        4: ["status_accepted_values"],
    }
    only = _json(
        "quarantine", "orders", "--check", "status_accepted_values", "--json", "-p", str(root)
    )
    assert only["total"] == 1 and only["rows"][0]["status"] == "bogus"
    by_run = _json("quarantine", "orders", "--run", first["run_id"][:8], "--json", "-p", str(root))
    assert by_run["total"] == 2
    none = _json("quarantine", "orders", "--run", "0000000", "--json", "-p", str(root))
    assert none["total"] == 0 and none["rows"] == []
    assert _json("quarantine", "rev", "--json", "-p", str(root)) == {
        "dataset": "rev",
        "scope": "current",
        "total": 0,
        "superseded_rows_hidden": 0,
        "by_check": {},
        "rows": [],
    }
    r = cli("quarantine", "orders", "-p", str(root))
    assert r.exit_code == 0
    assert "2 quarantined rows" in r.stdout and "bogus" in r.stdout
    r = cli("quarantine", "rev", "-p", str(root))
    assert r.exit_code == 0 and "no quarantined rows" in r.stdout


@pytest.mark.parametrize(
    ("args", "typo", "suggestion"),
    [
        (["show", "ordrs"], "ordrs", "orders"),
        (["quarantine", "revv"], "revv", "rev"),
        (["run", "--select", "enrichd+"], "enrichd", "enriched"),
        (["run", "--dry-run", "--select", "+bigorders"], "bigorders", "big_orders"),
    ],
)
def test_unknown_dataset_did_you_mean(
    tmp_path: Path, args: list[str], typo: str, suggestion: str
) -> None:
    root = build(tmp_path / "p")
    for extra in ([], ["--json"]):
        r = cli(*args, *extra, "-p", str(root))
        assert r.exit_code == 2, r.output
        assert r.stdout == ""
        assert f"unknown dataset '{typo}'" in r.stderr
        assert f"did you mean '{suggestion}'?" in r.stderr


def test_validate_human_and_json(tmp_path: Path) -> None:
    root = build(tmp_path / "p")
    r = cli("validate", "-p", str(root))
    assert r.exit_code == 0 and "5 datasets, no problems" in r.stdout
    assert _json("validate", "--json", "-p", str(root)) == []
    r = cli("validate", "-p", str(tmp_path / "nowhere"))
    assert r.exit_code == 2 and "does not exist" in r.output
