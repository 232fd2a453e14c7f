"""Personal values that reached readers by side doors: a ``mask:`` column (it is personal
whether or not ``pii:`` names it), the value quoted in a parse error's reason, and a
database error quoting an upstream personal value in a failed step's message. Each is
checked on what a reader or an alert receives *and* on the state store's file itself."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import lockgate
from lockgate import api
from lockgate.cli.app import app
from lockgate.pii import MASK, PiiColumns, mask_row, scrub_engine_error
from tests.run.helpers import csv_source, make_project, sql

SECRET = "zz-secret-007@example.com"
SECRET_BIRTH = "zz-birth-1961"
COLS = {"id": "INTEGER", "email": "VARCHAR", "amount": "DOUBLE"}
CSV = (
    "id,email,amount\n"
    "1,ann@example.org,10\n"
    f"2,{SECRET},-5\n"  # negative: fails a check, its row is a failing sample
)


def _state_bytes(root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in (root / ".lockgate").rglob("*.db*"))


@pytest.fixture()
def key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCKGATE_MASK_KEY", "k" * 32)


def test_a_masked_column_is_personal_even_without_pii(tmp_path: Path, key: None) -> None:
    """``mask: {email: hash}`` publishes hashes, but the checks judged the clear values: the
    failing samples, the quarantine and ``runs`` must not show them to readers."""
    root = make_project(
        tmp_path / "p",
        [
            csv_source(
                "masked",
                "data/c.csv",
                columns=COLS,
                mask={"email": "hash"},
                checks=[{"type": "between", "column": "amount", "min": 0}],
            )
        ],
        files={"data/c.csv": CSV},
    )
    res = lockgate.run(root)
    assert res.ok and res.steps[0].rows_quarantined == 1
    assert SECRET not in json.dumps(res.to_dict(), default=str)
    assert SECRET.encode() not in _state_bytes(root)
    assert SECRET not in json.dumps(api.quarantine(root, "masked").to_dict(), default=str)
    assert SECRET not in json.dumps(api.dataset_info(root, "masked"), default=str)
    out = CliRunner().invoke(app, ["runs", res.run_id, "--json", "-p", str(root)])
    assert out.exit_code == 0 and SECRET not in out.output
    # the right to see personal values still shows the quarantined clear value
    shown = api.quarantine(root, "masked", show_pii=True)
    assert SECRET in json.dumps(shown.to_dict(), default=str)
    # and the published table holds no clear value at all
    assert SECRET not in lockgate.read(root, "masked").column("email").to_pylist()


def test_a_parse_error_of_a_personal_column_does_not_quote_its_value(tmp_path: Path) -> None:
    root = make_project(
        tmp_path / "p",
        [
            csv_source(
                "people",
                "data/p.csv",
                columns={"id": "INTEGER", "email": "VARCHAR", "born": "DATE", "n": "INTEGER"},
                pii=["email", "born"],
            )
        ],
        files={
            "data/p.csv": f"id,email,born,n\n1,a@b.io,{SECRET_BIRTH},x9\n2,c@d.io,1970-01-01,1\n"
        },
    )
    assert lockgate.run(root).ok
    view = api.quarantine(root, "people")
    assert view.total == 1
    text = json.dumps(view.to_dict(), default=str)
    assert SECRET_BIRTH not in text, text
    # the column's name and the other (not personal) column's value stay readable
    assert "'born'" in text and "x9" in text, text
    shown = json.dumps(api.quarantine(root, "people", show_pii=True).to_dict(), default=str)
    assert SECRET_BIRTH in shown


@pytest.mark.parametrize(
    ("reason", "masked"),
    [
        # a file/REST record: lockgate.sources._records
        (
            "line 3: column 'born': cannot convert 'x'; y' to DATE; column 'n': "
            "cannot convert 'x9' to INTEGER",
            f"line 3: column 'born': cannot convert '{MASK}' to DATE; column 'n': "
            "cannot convert 'x9' to INTEGER",
        ),
        # a database row: lockgate.sources._db
        (
            "column born (date): value '0000-00-00' is not representable as DATE",
            f"column born (date): value '{MASK}' is not representable as DATE",
        ),
        (
            "column 'other': cannot convert 'v' to DATE",
            "column 'other': cannot convert 'v' to DATE",
        ),
        # a CSV cast error in DuckDB's own words (lockgate.sources._csv)
        (
            "line 3: column 'born': Could not parse string \"zz-1\" according to format "
            'specifier "%d" zz-1 ^ Error: bad',
            f"line 3: column 'born': Could not parse string \"{MASK}\" according to format "
            f'specifier "{MASK}" Error: bad',
        ),
    ],
)
def test_reasons_quoting_a_personal_columns_value(reason: str, masked: str) -> None:
    row = mask_row({"_lg_reason": reason}, PiiColumns(["born"]))
    assert row["_lg_reason"] == masked


def test_a_failed_steps_engine_error_does_not_quote_an_upstream_personal_value(
    tmp_path: Path,
) -> None:
    """DuckDB quotes the value it could not convert; that value came from a personal column
    upstream (two hops: the middle dataset is not tagged), so the step's error — recorded,
    shown by ``runs`` and sent to alert targets — hides it."""
    root = make_project(
        tmp_path / "p",
        [
            csv_source("customers", "data/c.csv", columns=COLS, pii=["email"]),
            sql("copy", "SELECT id, email FROM customers"),
            sql("bad", "SELECT id, CAST(email AS INTEGER) AS x FROM copy"),
            sql("plain", "SELECT CAST('not-personal' AS INTEGER) AS x"),
        ],
        files={"data/c.csv": CSV},
    )
    res = lockgate.run(root)
    by = {s.dataset: s for s in res.steps}
    assert str(by["bad"].status) == "failed"
    assert "Could not convert string" in (by["bad"].error or "")
    text = json.dumps(res.to_dict(), default=str)
    assert "ann@example.org" not in text and SECRET not in text, text
    assert b"ann@example.org" not in _state_bytes(root)
    out = CliRunner().invoke(app, ["runs", res.run_id, "-p", str(root)])
    assert "ann@example.org" not in out.output
    # a dataset reading nothing personal keeps the value in its error (it helps, harms none)
    assert "not-personal" in (by["plain"].error or "")


def test_scrub_engine_error_keeps_identifiers_and_the_sql() -> None:
    e = (
        "SQL of dataset 'bad' (main.yaml:3) failed: Conversion Error: Could not convert "
        "string 'ann@x.io' to INT32 when casting from source column email LINE 1: "
        "SELECT CAST(email AS INTEGER) FROM t WHERE k = 'lit'"
    )
    assert scrub_engine_error(e) == e.replace("'ann@x.io'", f"'{MASK}'")
    binder = 'Binder Error: Referenced column "emial" not found; candidates: "email"'
    assert scrub_engine_error(binder) == binder
    date = 'Conversion Error: date field value out of range: "1961-13-40", expected format'
    assert "1961-13-40" not in (scrub_engine_error(date) or "")


def test_masking_a_column_the_table_holds_in_the_clear_needs_a_full_refresh(
    tmp_path: Path, key: None
) -> None:
    """Adding ``mask:`` to a published append table would leave the earlier clear values
    beside the new masked ones: the step refuses until a full refresh rewrites the table."""
    ds = csv_source("users", "data/c.csv", columns=COLS, write={"mode": "append"})
    root = make_project(tmp_path / "p", [ds], files={"data/c.csv": CSV})
    assert lockgate.run(root).ok
    make_project(tmp_path / "p", [{**ds, "mask": {"email": "hash"}}])
    res = lockgate.run(root)
    step = res.steps[0]
    assert str(step.status) == "failed" and "--full-refresh" in (step.hint or ""), step
    assert "'email' published unmasked before" in (step.error or "")
    assert lockgate.read(root, "users").num_rows == 2  # nothing appended beside them
    assert lockgate.run(root, full_refresh=True).ok
    emails = lockgate.read(root, "users").column("email").to_pylist()
    assert len(emails) == 2 and SECRET not in emails and "ann@example.org" not in emails
    assert lockgate.run(root).ok  # the table is masked now: later runs append again


@pytest.mark.parametrize("metric", ["max(salary)", "min(salary)", "freshness_lag(born)"])
def test_an_anomaly_metric_that_is_one_persons_value_is_refused(
    tmp_path: Path, metric: str
) -> None:
    """Its baseline is the recorded value of every run: a personal column's max would put a
    salary in the state store each time."""
    from lockgate.errors import ConfigError

    people = csv_source(
        "people",
        "data/p.csv",
        columns={"id": "INTEGER", "salary": "DOUBLE", "born": "TIMESTAMP"},
        pii=["salary", "born"],
        checks=[{"type": "anomaly", "metric": metric}],
    )
    root = make_project(tmp_path / "p", [people], files={"data/p.csv": "id,salary,born\n"})
    with pytest.raises(ConfigError, match=r"one person's value"):
        lockgate.load_project(root)
    ok = {**people, "checks": [{"type": "anomaly", "metric": "mean(salary)"}]}
    make_project(tmp_path / "p", [ok])
    lockgate.load_project(root)


def test_profiling_a_datasets_table_folder_masks_like_its_name(tmp_path: Path) -> None:
    """``lockgate profile warehouse/customers__quarantine`` is the dataset's quarantine by
    path: its personal columns and the raw records quoting them are masked as by name."""
    root = make_project(
        tmp_path / "p",
        [
            csv_source(
                "customers",
                "data/c.csv",
                columns=COLS,
                pii=["email"],
                checks=[{"type": "between", "column": "amount", "min": 0}],
            )
        ],
        files={"data/c.csv": CSV + "3,zz-secret-raw@example.com,notanumber\n"},
    )
    assert lockgate.run(root).ok
    for folder in ("customers", "customers__quarantine"):
        path = str(root / "warehouse" / folder)
        out = CliRunner().invoke(app, ["profile", path, "-p", str(root), "--json"])
        assert out.exit_code == 0, out.output
        assert SECRET not in out.output and "zz-secret-raw" not in out.output, out.output
        shown = CliRunner().invoke(app, ["profile", path, "-p", str(root), "--json", "--show-pii"])
        assert "@example" in shown.output


def test_samples_recorded_before_a_column_was_declared_personal_are_masked_when_read(
    tmp_path: Path,
) -> None:
    ds = csv_source(
        "customers",
        "data/c.csv",
        columns=COLS,
        checks=[{"type": "between", "column": "amount", "min": 0}],
    )
    root = make_project(tmp_path / "p", [ds], files={"data/c.csv": CSV})
    res = lockgate.run(root)
    assert SECRET in json.dumps(api.run_detail(root, res.run_id), default=str)  # not personal yet
    make_project(tmp_path / "p", [{**ds, "pii": ["email"]}])
    for shown in (api.run_detail(root, res.run_id), api.dataset_info(root, "customers")):
        assert SECRET not in json.dumps(shown, default=str)
    out = CliRunner().invoke(app, ["runs", res.run_id, "--json", "-p", str(root)])
    assert SECRET not in out.output and MASK in out.output
    assert SECRET in json.dumps(api.run_detail(root, res.run_id, show_pii=True), default=str)
    out = CliRunner().invoke(app, ["runs", res.run_id, "--json", "--show-pii", "-p", str(root)])
    assert SECRET in out.output


def test_pii_true_makes_every_column_personal(tmp_path: Path) -> None:
    """The issue's words (``pii: true``) work: every column, as the ``pii`` tag."""
    root = make_project(
        tmp_path / "p",
        [
            csv_source("c", "data/c.csv", columns=COLS, pii=True, tags=["core"]),
            csv_source("d", "data/c.csv", columns=COLS, pii=False),
        ],
        files={"data/c.csv": CSV},
    )
    assert lockgate.run(root).ok
    rows = api.dataset_info(root, "c", sample_rows=5)["sample"]
    assert rows and all(v == MASK for r in rows for v in r.values()), rows
    assert lockgate.load_project(root).datasets["c"].tags == ("core", "pii")
    assert SECRET in json.dumps(api.dataset_info(root, "d", sample_rows=5)["sample"])
