"""``lockgate why``: the failing run compared with the last passing one along lineage."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import lockgate
from lockgate.errors import LockgateError
from lockgate.lineage.why import distribution_change, why
from lockgate.project import load_project
from tests.cli.helpers import cli
from tests.run.helpers import csv_source, make_project, sql

GOOD = "id,amount,status\n1,10,ok\n2,20,ok\n3,30,ok\n"
BAD = "id,amount,status\n4,-5,ok\n5,,ok\n6,-7,ok\n7,40,x\n8,100,ok\n"


@pytest.fixture
def failed(tmp_path: Path) -> tuple[Path, str, str]:
    """raw (CSV glob) → clean (merge on id) → total; a second file breaks clean's check."""
    root = make_project(
        tmp_path / "p",
        [
            csv_source(
                "raw",
                "data/*.csv",
                columns={"id": "BIGINT", "amount": "DOUBLE", "status": "VARCHAR"},
                checks=[{"type": "between", "column": "amount", "min": 0, "severity": "warn"}],
            ),
            sql(
                "clean",
                "select id, amount * 1.1 as amount_eur, status from raw where status <> 'x'",
                write={"mode": "merge", "keys": ["id"]},
                checks=[{"type": "between", "column": "amount_eur", "min": 0}],
            ),
            sql(
                "total",
                "select sum(amount_eur) as total, count(*) as n from clean",
                write={"mode": "overwrite"},
                checks=[
                    {"type": "between", "column": "total", "min": 0, "max": 70},
                    {"type": "between", "column": "n", "max": 3},
                ],
            ),
        ],
        files={"data/a.csv": GOOD},
    )
    first = lockgate.run(root)
    assert first.ok
    (root / "data" / "b.csv").write_text(BAD)
    second = lockgate.run(root)
    assert second.step("clean").checks[0]["passed"] is False
    return root, first.run_id, second.run_id


def test_ranks_the_upstream_evidence(failed: tuple[Path, str, str]) -> None:
    root, good_run, bad_run = failed
    r = why(load_project(root), "clean")
    assert (r.check, r.run_id, r.passing_run_id) == ("amount_eur_between", bad_run, good_run)
    assert r.failing["failing_rows"] == 2 and r.failing["before"]["failing_rows"] == 0
    assert r.upstream[0] == {
        "node": "raw.amount",
        "kind": "DIRECT",
        "subtype": "TRANSFORMATION",
        "hops": 1,
    }
    kinds = [(c.kind, c.dataset) for c in r.candidates]
    # the strongest evidence first: the upstream check that started failing and the
    # column whose distribution moved; context (new file, new version) after
    assert set(kinds[:2]) == {("check_failing", "raw"), ("distribution", "raw")}
    assert kinds.index(("new_files", "raw")) < kinds.index(("new_version", "raw"))
    dist = next(
        c for c in r.candidates if c.kind == "distribution" and c.evidence["column"] == "amount"
    )
    assert dist.evidence["now"]["min"] == -7.0 and dist.evidence["before"]["min"] == 10.0
    assert dist.evidence["now"]["max"] == 100.0
    # raw appends every file it reads: 3 rows, then a.csv again and b.csv (3 + 5)
    assert dist.evidence["now"]["null_rate"] == pytest.approx(1 / 11)
    files = next(c for c in r.candidates if c.kind == "new_files")
    assert files.evidence["added"] == ["data/b.csv"]
    # the failing output rows traced to their input rows through the key
    ((where, rows),) = r.input_rows.items()
    assert where == "raw@1"
    assert sorted(row["id"] for row in rows) == [4, 6]
    assert {row["amount"] for row in rows} == {-5.0, -7.0}


def test_two_hops_up_through_an_aggregate(failed: tuple[Path, str, str]) -> None:
    root, _, bad_run = failed
    r = why(load_project(root), "total", "total_between")
    assert r.run_id == bad_run
    nodes = {u["node"]: u["hops"] for u in r.upstream}
    assert nodes["clean.amount_eur"] == 1 and nodes["raw.amount"] == 2
    by = {(c.kind, c.dataset) for c in r.candidates}
    assert ("check_failing", "clean") in by  # clean's own check failed in the same run
    assert ("distribution", "raw") in by  # raw pinned through clean's producing step


def test_count_star_has_no_column_lineage_so_the_inputs_are_inspected_whole(
    failed: tuple[Path, str, str],
) -> None:
    root, _, _ = failed
    r = why(load_project(root), "total", "n_between")
    assert r.upstream == []
    assert any("no column lineage" in n for n in r.notes)
    by = {(c.kind, c.dataset) for c in r.candidates}
    assert {("check_failing", "clean"), ("new_files", "raw")} <= by
    assert not any(c.kind == "distribution" for c in r.candidates)


def test_cli_text_and_json(failed: tuple[Path, str, str]) -> None:
    root, _, bad_run = failed
    res = cli("why", "clean", "amount_eur_between", "-p", str(root))
    assert res.exit_code == 0, res.output
    assert f"failed in run {bad_run[:8]}" in res.output
    assert "raw.amount_between: 2 failing rows" in res.output
    assert "null rate 0.0% → 9.1%" in res.output
    assert f"lockgate quarantine clean --run {bad_run[:8]}" in res.output
    res = cli("why", "clean", "--run", bad_run[:10], "-p", str(root), "--json")
    data = json.loads(res.stdout)
    assert data["check"] == "amount_eur_between" and data["candidates"][0]["score"] > 0


def test_a_check_that_did_not_fail_is_an_error_with_a_hint(failed: tuple[Path, str, str]) -> None:
    root, good_run, _ = failed
    with pytest.raises(LockgateError, match="did not fail in run"):
        why(load_project(root), "clean", run=good_run)
    res = cli("why", "clean", "nope", "-p", str(root))
    assert res.exit_code != 0 and "amount_eur_between" in res.output


def test_distribution_change_ignores_noise() -> None:
    base = {"rows": 100, "null_rate": 0.0, "distinct": 50, "min": 0.0, "max": 10.0, "mean": 5.0}
    assert distribution_change(dict(base, mean=5.1), base) == (0.0, [])
    size, says = distribution_change(dict(base, null_rate=0.2), base)
    assert size > 0 and says == ["null rate 0.0% → 20.0%"]


def test_why_shows_no_personal_value_of_an_upstream_dataset(tmp_path: Path) -> None:
    # raw's e-mail and amount are personal: the traced input rows and the distribution
    # evidence (min/max are one person's values) must not show them
    good = "id,amount,email\n1,10,ann@example.org\n2,20,bob@example.org\n"
    bad = "id,amount,email\n4,-5123,carol@example.org\n6,-7321,dave@example.org\n"
    root = make_project(
        tmp_path / "p",
        [
            csv_source(
                "raw",
                "data/*.csv",
                columns={"id": "BIGINT", "amount": "DOUBLE", "email": "VARCHAR"},
                pii=["amount", "email"],
            ),
            sql(
                "clean",
                "select id, amount * 1.1 as amount_eur from raw",
                write={"mode": "merge", "keys": ["id"]},
                checks=[{"type": "between", "column": "amount_eur", "min": 0}],
            ),
        ],
        files={"data/a.csv": good},
    )
    assert lockgate.run(root).ok
    (root / "data" / "b.csv").write_text(bad)
    lockgate.run(root)
    r = why(load_project(root), "clean")
    ((_, rows),) = r.input_rows.items()
    assert sorted(row["id"] for row in rows) == [4, 6]  # still traced through the key
    assert {row["email"] for row in rows} == {row["amount"] for row in rows} == {"***"}
    dist = next(c for c in r.candidates if c.kind == "distribution")
    assert "range moved" in dist.summary and dist.evidence["now"]["min"] == "***"
    text = json.dumps(r.to_dict(), default=str)
    out = cli("why", "clean", "-p", str(root))
    assert out.exit_code == 0, out.output
    for leak in ("carol", "dave", "5123", "7321", "-5.1", "-7.3"):
        assert leak not in text + out.output, (leak, text, out.output)
