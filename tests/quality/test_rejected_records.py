"""Records of a check/profile/suggest target that cannot be read are counted and shown,
never silently left out: records read = rows checked + records rejected."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lockgate.quality import run_standalone
from lockgate.quality.profile import profile_target
from tests.cli.helpers import cli
from tests.hyp import examples

ID_CHECK = "checks:\n  - type: not_null\n    column: id\n"
AMOUNT_CHECK = "checks:\n  - type: between\n    column: amount\n    min: 0\n    max: 1000\n"


def _big_csv(path: Path, n: int, bad: dict[int, str]) -> None:
    """``n`` records id,amount,name; record i (1-based) gets amount ``bad[i]`` if given."""
    with path.open("w") as f:
        f.write("id,amount,name\n")
        for i in range(1, n + 1):
            f.write(f"{i},{bad.get(i, str(i % 100))},n{i}\n")


def _checks(tmp_path: Path, text: str, name: str = "c.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_a_bad_value_deep_in_a_csv_is_rejected_and_counted(tmp_path: Path) -> None:
    # row 30,001 is beyond the type sniffer's sample: it was silently left out of total_rows
    _big_csv(tmp_path / "big.csv", 40_000, {30_001: "abc"})
    res = run_standalone(str(tmp_path / "big.csv"), _checks(tmp_path, ID_CHECK))
    assert res.total_rows == 39_999
    assert res.rejected is not None and res.rejected.rejected == 1
    assert res.records == 40_000
    [rec] = res.rejected.sample
    assert rec.line == 30_002  # the header is line 1
    assert rec.file is not None and rec.file.endswith("big.csv")
    assert "amount" in rec.reason and "abc" in rec.reason
    assert not res.passed  # a record nobody checked is not a pass
    assert run_standalone(
        str(tmp_path / "big.csv"), _checks(tmp_path, ID_CHECK), max_rejected=1
    ).passed


def test_counts_do_not_depend_on_the_columns_a_check_reads(tmp_path: Path) -> None:
    # DuckDB converts only the columns a query reads: checking `id` counted 40,000 rows,
    # checking `amount` 39,999, of the same file
    _big_csv(tmp_path / "big.csv", 40_000, {30_001: "abc"})
    by_id = run_standalone(str(tmp_path / "big.csv"), _checks(tmp_path, ID_CHECK, "a.yaml"))
    by_amount = run_standalone(str(tmp_path / "big.csv"), _checks(tmp_path, AMOUNT_CHECK, "b.yaml"))
    assert by_id.total_rows == by_amount.total_rows == 39_999
    assert by_id.rejected_count == by_amount.rejected_count == 1


def test_check_json_reports_rejected_records(tmp_path: Path) -> None:
    _big_csv(tmp_path / "big.csv", 30_005, {30_001: "abc", 30_003: "1.5.6"})
    r = cli("check", str(tmp_path / "big.csv"), "-c", str(_checks(tmp_path, ID_CHECK)), "--json")
    assert r.exit_code == 1, r.output
    out = json.loads(r.stdout)
    assert out["records"] == out["total_rows"] == 30_005  # a rejected record still counts
    assert out["rows_checked"] == 30_003
    assert out["rejected"]["count"] == 2
    assert out["total_rows"] == out["rows_checked"] + out["rejected"]["count"]
    assert [s["line"] for s in out["rejected"]["sample"]] == [30_002, 30_004]
    assert all(s["reason"] and s["file"].endswith("big.csv") for s in out["rejected"]["sample"])
    assert out["passed"] is False


def test_check_text_output_lists_rejected_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    _big_csv(tmp_path / "big.csv", 30_005, {30_001: "abc"})
    checks = str(_checks(tmp_path, ID_CHECK))
    r = cli("check", str(tmp_path / "big.csv"), "-c", checks)
    assert r.exit_code == 1
    assert "30,005 records read, 30,004 checked, 1 rejected" in r.stdout
    assert "big.csv:30002: column 'amount'" in r.stdout
    ok = cli("check", str(tmp_path / "big.csv"), "-c", checks, "--max-rejected", "1")
    assert ok.exit_code == 0, ok.output


def test_ndjson_glob_reports_rejects(tmp_path: Path) -> None:
    d = tmp_path / "in"
    d.mkdir()
    (d / "a.ndjson").write_text('{"id": 1, "amount": 5}\n{"id": 2, "amount": 6}\n')
    (d / "b.ndjson").write_text('{"id": 3, "amount": 7}\n{"id": 4, broken\n{"id": 5}\n')
    res = run_standalone(str(d / "*.ndjson"), _checks(tmp_path, ID_CHECK))
    assert (res.total_rows, res.rejected_count, res.records) == (4, 1, 5)
    [rec] = res.rejected.sample if res.rejected else ()
    assert rec.file is not None and rec.file.endswith("b.ndjson") and rec.line == 2


def test_csv_glob_reports_the_file_of_each_reject(tmp_path: Path) -> None:
    d = tmp_path / "in"
    d.mkdir()
    _big_csv(d / "a.csv", 10, {})
    _big_csv(d / "b.csv", 30_010, {30_007: "oops"})
    p = profile_target(str(d / "*.csv"))
    assert (p.rows, p.rejected, p.records) == (30_019, 1, 30_020)
    assert p.rejected_sample[0]["file"].endswith("b.csv")
    assert p.rejected_sample[0]["line"] == 30_008


def test_profile_and_suggest_cli_report_rejects(tmp_path: Path) -> None:
    _big_csv(tmp_path / "big.csv", 30_010, {30_001: "abc"})
    r = cli("profile", str(tmp_path / "big.csv"), "--json", "--html", str(tmp_path / "r.html"))
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert (out["rows"], out["rejected"], out["records"]) == (30_009, 1, 30_010)
    html = (tmp_path / "r.html").read_text()
    assert "records rejected" in html and "big.csv:30002" in html
    s = cli("suggest", str(tmp_path / "big.csv"))
    assert s.exit_code == 0, s.output
    assert "# 1 record(s) could not be read" in s.stdout
    assert "big.csv:30002" in s.stdout


def test_a_huge_bad_value_is_not_copied_into_the_report(tmp_path: Path) -> None:
    _big_csv(tmp_path / "big.csv", 30_005, {30_003: "x" * 200_000})
    r = cli("check", str(tmp_path / "big.csv"), "-c", str(_checks(tmp_path, ID_CHECK)), "--json")
    out = json.loads(r.stdout)
    assert out["rejected"]["count"] == 1
    assert len(out["rejected"]["sample"][0]["reason"]) < 1000


@settings(max_examples=examples(25), deadline=None)
@given(
    n=st.integers(min_value=0, max_value=60),
    bad=st.dictionaries(
        st.integers(min_value=1, max_value=60),
        st.sampled_from(["abc", "1e", "--", "12x", "١٢"]),
        max_size=8,
    ),
    ragged=st.sets(st.integers(min_value=1, max_value=60), max_size=4),
)
def test_records_read_equal_rows_checked_plus_rejected(
    n: int, bad: dict[int, str], ragged: set[int]
) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "t.csv"
        with path.open("w") as f:
            f.write("id,amount,name\n")
            for i in range(1, n + 1):
                extra = ",x" if i in ragged else ""
                f.write(f"{i},{bad.get(i, str(i))},n{i}{extra}\n")
        cf = Path(d) / "c.yaml"
        cf.write_text(ID_CHECK)
        if n == 0:
            return
        res = run_standalone(str(path), cf, max_rejected=n)
        assert res.total_rows + res.rejected_count == n
        good = [i for i in range(1, n + 1) if i not in bad and i not in ragged]
        assert res.total_rows >= len(good)


def test_a_target_with_no_readable_record_is_an_input_error(tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_text("")
    r = cli("check", str(tmp_path / "empty.csv"), "-c", str(_checks(tmp_path, ID_CHECK)))
    assert r.exit_code == 2
    assert "has no readable record" in r.stderr and "empty file" in r.stderr


def test_rejected_records_of_a_reference_are_reported(tmp_path: Path) -> None:
    _big_csv(tmp_path / "orders.csv", 10, {})
    with (tmp_path / "customers.ndjson").open("w") as f:
        f.write('{"id": 1}\n{"id": 2, oops\n')
        f.writelines(f'{{"id": {i}}}\n' for i in range(3, 11))
    cf = _checks(tmp_path, "checks:\n  - type: relationship\n    column: id\n    to: customers\n")
    r = cli(
        "check",
        str(tmp_path / "orders.csv"),
        "-c",
        str(cf),
        "--json",
        "--ref",
        f"customers={tmp_path / 'customers.ndjson'}",
    )
    out = json.loads(r.stdout)
    assert out["rejected"]["count"] == 0
    ref = out["reference_rejected"]["customers"]
    assert ref["count"] == 1 and ref["sample"][0]["line"] == 2
    assert out["passed"] is False and r.exit_code == 1
