"""Personal columns (``pii:``) are masked in samples, quarantine views and profiles unless
the reader may see them; the data itself is untouched."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import lockgate
from lockgate import api
from lockgate.cli.app import app
from lockgate.errors import UsageError
from lockgate.pii import MASK
from tests.run.helpers import csv_source, make_project

EMAILS = ["ann@example.org", "bob_at_example.org", "carol@example.org"]
CSV = (
    "id,email,amount\n"
    f"1,{EMAILS[0]},10\n"
    f"2,{EMAILS[1]},20\n"  # not an e-mail: quarantined, its value quoted in the reason
    f"3,{EMAILS[2]},-5\n"  # negative: quarantined
    "4,,7\n"  # NULL e-mail: stays NULL
    "5,dave@example.org,notanumber\n"  # unreadable: raw record kept in the quarantine
)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    r = make_project(
        tmp_path_factory.mktemp("pii") / "p",
        [
            csv_source(
                "customers",
                "data/c.csv",
                columns={"id": "INTEGER", "email": "VARCHAR", "amount": "DOUBLE"},
                pii=["email"],
                checks=[
                    {"type": "regex_match", "column": "email", "pattern": "^[^@]+@[^@]+$"},
                    {"type": "between", "column": "amount", "min": 0},
                ],
            ),
            {
                "name": "secret",
                "transform": {"sql": "select id, email, amount from customers"},
                "tags": ["pii"],
            },
        ],
        files={"data/c.csv": CSV},
    )
    assert lockgate.run(r).ok
    return r


def _text(obj: object) -> str:
    return json.dumps(obj, default=str)


def test_the_sample_masks_personal_values_but_keeps_nulls_and_other_columns(root: Path) -> None:
    info = api.dataset_info(root, "customers", sample_rows=10)
    by_id = {r["id"]: r for r in info["sample"]}
    assert by_id[1] == {"id": 1, "email": MASK, "amount": 10.0}
    assert by_id[4]["email"] is None
    assert not any(e in _text(info) for e in EMAILS)
    shown = api.dataset_info(root, "customers", sample_rows=10, show_pii=True)
    assert {r["id"]: r["email"] for r in shown["sample"]}[1] == EMAILS[0]
    # the data itself is never masked
    assert EMAILS[0] in lockgate.read(root, "customers").column("email").to_pylist()


def test_quarantine_masks_values_raw_records_and_reasons(root: Path) -> None:
    view = api.quarantine(root, "customers", limit=50)
    assert view.total == 3
    text = _text(view.to_dict())
    assert not any(e in text for e in [*EMAILS, "dave@example.org"]), text
    rows = {r.get("id"): r for r in view.rows}
    assert rows[2]["email"] == MASK and rows[3]["email"] == MASK
    raw = [r for r in view.rows if r.get("_lg_raw_record") is not None]
    assert raw and all(r["_lg_raw_record"] == MASK for r in raw)
    assert any(MASK in w["reason"] for r in view.rows for w in r["_lg_why"])  # scrubbed
    full = _text(api.quarantine(root, "customers", limit=50, show_pii=True).to_dict())
    assert EMAILS[1] in full and "dave@example.org" in full


def test_filtering_a_quarantine_by_a_personal_column_needs_the_right_to_see_it(
    root: Path,
) -> None:
    with pytest.raises(UsageError, match="personal data"):
        api.quarantine_page(root, "customers", column="email", value=EMAILS[1])
    page = api.quarantine_page(root, "customers", column="email", value=EMAILS[1], show_pii=True)
    assert [r["id"] for r in page.rows] == [2]
    masked = api.quarantine_page(root, "customers")  # other filters are fine, values masked
    assert masked.total == 3 and not any(e in _text(masked.rows) for e in EMAILS)


def test_a_dataset_tagged_pii_masks_every_column_but_lockgates(root: Path) -> None:
    sample = api.dataset_info(root, "secret", sample_rows=10)["sample"]
    assert sample and all(set(r.values()) <= {MASK, None} for r in sample)


def test_cli_show_quarantine_and_profile(root: Path) -> None:
    run = CliRunner()
    for args in (
        ["show", "customers", "--rows", "10"],
        ["show", "customers", "--json"],
        ["quarantine", "customers"],
        ["quarantine", "customers", "--json"],
        ["profile", "customers"],
        ["profile", "customers", "--json"],
    ):
        out = run.invoke(app, [*args, "-p", str(root)])
        assert out.exit_code == 0, out.output
        assert not any(e in out.output for e in EMAILS), (args, out.output)
    revealed = run.invoke(app, ["quarantine", "customers", "--show-pii", "-p", str(root)])
    assert EMAILS[1] in revealed.output
    prof = json.loads(run.invoke(app, ["profile", "customers", "--json", "-p", str(root)]).stdout)
    email = next(c for c in prof["columns"] if c["name"] == "email")
    assert email["min"] == email["max"] == MASK and email["null_count"] == 1
    amount = next(c for c in prof["columns"] if c["name"] == "amount")
    assert amount["max"] == 10.0  # not personal: as it is
