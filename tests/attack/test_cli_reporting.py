"""CLI surface the issue names: per-step accounting in `run --json` and the summary,
`--debug` anywhere, `--version`, `quarantine --check` strictness and current-vs-history,
honest labels for table-level and warn-severity checks in `show` / `runs`."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from tests.attack._util import SKIP_KEYS, build, cli, write_files

REPO = Path(__file__).resolve().parents[2]


def _sub(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lockgate", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"},
    )


CHECKS = [
    {"type": "row_count", "min": 10, "severity": "warn"},
    {
        "type": "aggregate_between",
        "column": "score",
        "agg": "mean",
        "min": 50,
        "max": 60,
        "severity": "warn",
    },
    {"type": "between", "column": "score", "min": 0, "max": 100},
]


def _scores(tmp_path: Path, data: str = "id,score\n1,5\n2,-3\n3,7\n") -> Path:
    ds = {
        "name": "ds",
        "source": {"type": "file", "path": "data/a.csv"},
        "write": {"mode": "overwrite"},
        "checks": CHECKS,
    }
    return build(tmp_path / "p", [ds], {"data/a.csv": data})


def test_run_json_reports_accounting_keys_per_step(tmp_path: Path) -> None:
    root = _scores(tmp_path, "id,score\n1,5\n2,-3\n3,7\nx,1\n")
    r = cli("run", "-p", str(root), "--json")
    out = json.loads(r.stdout)
    for step in out["steps"]:
        missing = [k for k in SKIP_KEYS if k not in step]
        assert not missing, f"`run --json` step '{step['dataset']}' lacks {missing}"
        assert step["rows_in"] == step["rows_out"] + step["rows_quarantined"] + step["rows_skipped"]
        assert sum(step["skip_reasons"].values()) == step["rows_skipped"]
    ds = out["steps"][0]
    # no declared types: 'x' is a valid text id; only score -3 fails its range check
    assert (ds["rows_in"], ds["rows_out"], ds["rows_quarantined"]) == (4, 3, 1), ds


def test_run_text_summary_shows_skipped_rows(tmp_path: Path) -> None:
    ds = {
        "name": "m",
        "source": {"type": "file", "path": "data/m.csv"},
        "write": {"mode": "merge", "keys": ["k"], "order_by": "v"},
    }
    root = build(tmp_path / "p", [ds], {"data/m.csv": "k,v\na,1\na,2\nb,1\n"})
    r = cli("run", "-p", str(root))
    assert r.exit_code == 0, r.stdout + r.stderr
    assert "skipped" in r.stdout.lower(), (
        f"the run summary must show skipped rows: {r.stdout[-1200:]}"
    )


@pytest.mark.slow  # real subprocesses
@pytest.mark.parametrize("cmd", ["validate", "run"])
def test_debug_flag_after_the_subcommand(tmp_path: Path, cmd: str) -> None:
    root = _scores(tmp_path)
    r = _sub(cmd, "-p", str(root), "--debug")
    assert "No such option" not in r.stderr, f"--debug after '{cmd}' refused: {r.stderr[-400:]}"
    assert r.returncode == 0, r.stderr[-400:]
    if cmd == "run":
        assert "DEBUG" in r.stderr, (
            f"--debug after the subcommand must enable debug logs: {r.stderr[-400:]}"
        )


def test_version_flag() -> None:
    r = cli("--version")
    assert r.exit_code == 0, r.stdout + r.stderr
    assert version("lockgate") in r.stdout, (
        f"--version should print {version('lockgate')}: {r.stdout!r}"
    )


def test_quarantine_unknown_check_is_a_usage_error(tmp_path: Path) -> None:
    root = _scores(tmp_path)
    cli("run", "-p", str(root))
    ok = cli("quarantine", "ds", "-p", str(root), "--check", "score_between", "--json")
    assert ok.exit_code == 0 and json.loads(ok.stdout)["total"] == 1, ok.stdout
    for bad in ("score_betwen", "no_such_check"):
        r = cli("quarantine", "ds", "-p", str(root), "--check", bad)
        assert r.exit_code == 2, f"--check {bad}: exit {r.exit_code}, expected 2: {r.stdout[-300:]}"
        assert bad in r.stdout + r.stderr


def test_quarantine_defaults_to_current_data_and_all_shows_history(tmp_path: Path) -> None:
    root = _scores(tmp_path, "id,score\n1,5\n2,-3\n3,700\n")
    assert cli("run", "-p", str(root)).exit_code == 0
    write_files(root, {"data/a.csv": "id,score\n1,5\n4,-8\n"})  # overwrite: the old data is gone
    assert cli("run", "-p", str(root)).exit_code == 0
    cur = json.loads(cli("quarantine", "ds", "-p", str(root), "--json").stdout)
    assert cur["total"] == 1, f"by default only rows of the current data (id 4): {cur}"
    hist = cli("quarantine", "ds", "-p", str(root), "--json", "--all")
    assert hist.exit_code == 0 and json.loads(hist.stdout)["total"] == 3, hist.stdout[-400:]


def test_quarantine_shows_the_failing_value(tmp_path: Path) -> None:
    root = _scores(tmp_path)
    cli("run", "-p", str(root))
    r = cli("quarantine", "ds", "-p", str(root))
    assert re.search(r"score\s*=\s*-3\b", r.stdout), (
        f"show the failing value (score=-3 …): {r.stdout}"
    )


@pytest.mark.parametrize("cmd", ["show", "runs"])
def test_table_level_and_warn_checks_are_labelled_honestly(tmp_path: Path, cmd: str) -> None:
    root = _scores(tmp_path)
    res = cli("run", "-p", str(root), "--json")
    run_id = json.loads(res.stdout)["run_id"]
    r = cli(cmd, "ds" if cmd == "show" else run_id[:8], "-p", str(root))
    line = next((ln for ln in r.stdout.splitlines() if "score_mean_between" in ln), "")
    assert line, r.stdout
    assert "0.0000%" not in line, f"a table-level check shows a row fraction: {line}"
    assert "3" in line.split("score_mean_between", 1)[1], f"observed mean (3.0) not shown: {line}"
    assert "fail" not in line.lower(), f"a warn-severity failure must be labelled 'warn': {line}"
