"""``mask:`` on a batch dataset: the published table holds tokens, the checks judged the
clear values, the key never appears in config, SQL text or errors."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pyarrow as pa
import pytest

import lockgate
from lockgate.errors import ConfigError
from lockgate.masking import MaskRule, detokenize, masked_query, register_masking, tokenizer
from lockgate.project.loader import load_project
from tests.run.helpers import csv_source, make_project

KEY = "k3y-0f-the-test-that-is-long-enough"
CARDS = ["4111-1111-1111-1111", "5500 0000 0000 0004", "12345", "n/a"]
CSV = (
    "id,email,card,note\n"
    f'1,ann@x.io,{CARDS[0]},"call 555-1234 or 555-9876 now"\n'
    f"2,bob@x.io,{CARDS[1]},fine\n"
    f"3,not-an-email,{CARDS[2]},x\n"  # fails the regex check: quarantined with clear values
    f"4,,{CARDS[3]},\n"
)
MASK = {
    "email": "hash",
    "card": {"method": "tokenize"},
    "note": {"method": "redact", "pattern": r"\d{3}-\d{4}", "replace": "[phone]"},
}


def _project(tmp: Path, **extra: object) -> Path:
    return make_project(
        tmp / "p",
        [
            csv_source(
                "people",
                "data/p.csv",
                columns={"id": "BIGINT", "email": "VARCHAR", "card": "VARCHAR", "note": "VARCHAR"},
                mask=MASK,
                checks=[{"type": "regex_match", "column": "email", "pattern": "^[^@]+@[^@]+$"}],
                **extra,
            )
        ],
        files={"data/p.csv": CSV},
    )


def test_published_values_are_masked_and_checks_saw_clear_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOCKGATE_MASK_KEY", KEY)
    root = _project(tmp_path)
    res = lockgate.run(root)
    assert res.ok, res
    rows = {r["id"]: r for r in lockgate.read(root, "people").to_pylist()}
    assert set(rows) == {1, 2, 4}  # row 3 failed the check on its clear value
    assert rows[1]["email"] == hashlib.sha256((KEY + "ann@x.io").encode()).hexdigest()
    assert rows[4]["email"] is None and rows[4]["note"] is None
    assert rows[1]["note"] == "call [phone] or [phone] now" and rows[2]["note"] == "fine"
    token = rows[1]["card"]
    assert token != CARDS[0] and len(token) == len(CARDS[0])
    assert [i for i, ch in enumerate(token) if ch == "-"] == [4, 9, 14]
    assert detokenize(token, KEY) == CARDS[0]
    assert detokenize(rows[2]["card"], KEY) == CARDS[1]
    # 'n/a' has no digits to encrypt: replaced one way, never kept
    assert rows[4]["card"] != "n/a" and len(rows[4]["card"]) == 3
    # no clear value, nor the key, in any file of the published table
    blob = b"".join(
        f.read_bytes() for f in (root / "warehouse" / "people").rglob("*") if f.is_file()
    )
    for secret in [
        b"ann@x.io",
        b"bob@x.io",
        b"4111-1111",
        b"5500 0000",
        b"555-1234",
        b"555-9876",
        KEY.encode(),
    ]:
        assert secret not in blob
    # re-run of a changed file: the same clear value gives the same token (joins still work)
    again = lockgate.run(root, full_refresh=True)
    assert again.ok
    assert {r["id"]: r["card"] for r in lockgate.read(root, "people").to_pylist()}[1] == token


def test_a_missing_key_fails_the_step_and_publishes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LOCKGATE_MASK_KEY", raising=False)
    root = _project(tmp_path)
    res = lockgate.run(root)
    assert not res.ok
    step = res.steps[0]
    assert "LOCKGATE_MASK_KEY" in (step.error or "")
    assert not (root / "warehouse" / "people" / "_delta_log").exists()


def test_mask_on_a_merge_key_must_keep_equal_values_equal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOCKGATE_MASK_KEY", KEY)
    root = _project(tmp_path, write={"mode": "merge", "keys": ["note"]})
    with pytest.raises(ConfigError, match="merge key 'note' masked with 'redact'"):
        load_project(root)
    root2 = make_project(
        tmp_path / "q",
        [
            csv_source(
                "people",
                "data/p.csv",
                columns={"email": "VARCHAR", "n": "BIGINT"},
                mask={"email": "hash"},
                write={"mode": "merge", "keys": ["email"]},
            )
        ],
        files={"data/p.csv": "email,n\na@x.io,1\nb@x.io,2\n"},
    )
    assert lockgate.run(root2).ok
    (root2 / "data" / "p.csv").write_text("email,n\na@x.io,10\n")
    assert lockgate.run(root2).ok
    got = sorted((r["email"], r["n"]) for r in lockgate.read(root2, "people").to_pylist())
    token_a = hashlib.sha256((KEY + "a@x.io").encode()).hexdigest()
    token_b = hashlib.sha256((KEY + "b@x.io").encode()).hexdigest()
    assert got == sorted([(token_a, 10), (token_b, 2)])  # upserted on the token


def test_mask_on_a_declared_number_column_is_refused_at_load(tmp_path: Path) -> None:
    root = make_project(
        tmp_path / "p",
        [
            csv_source(
                "t",
                "data/t.csv",
                columns={"ssn": "BIGINT"},
                mask={"ssn": "partial"},
            )
        ],
        files={"data/t.csv": "ssn\n123456789\n"},
    )
    with pytest.raises(ConfigError, match="'ssn' is BIGINT; masked values are text"):
        load_project(root)


def test_mask_of_an_undeclared_number_column_fails_clearly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_project(
        tmp_path / "p",
        [csv_source("t", "data/t.csv", mask={"ssn": "partial", "nope": "redact"})],
        files={"data/t.csv": "ssn\n123456789\n"},
    )
    res = lockgate.run(root)
    assert not res.ok
    err = res.steps[0].error or ""
    assert "'ssn' is BIGINT" in err and "'nope' is not in the dataset's columns" in err
    assert "123456789" not in err


def test_tokenize_is_vectorised_over_distinct_values_and_keeps_nulls() -> None:
    calls: list[int] = []
    run = tokenizer(KEY, "0123456789")
    values = pa.array(["123456", None, "123456", "654321", "1"] * 1000)

    def counting(a: pa.Array) -> pa.Array:
        calls.append(len(a))
        return run(a)

    out = counting(values).to_pylist()
    assert out[1] is None and out[0] == out[2] and out[0] != out[3]
    assert all(len(t) == len(v) for t, v in zip(out, values.to_pylist(), strict=True) if v)
    assert detokenize(out[0], KEY) == "123456"
    with pytest.raises(ValueError, match="too short"):
        detokenize(out[4], KEY)


def test_rules_validate_their_options() -> None:
    with pytest.raises(ValueError, match="not a regular expression"):
        MaskRule(method="redact", pattern="(")
    with pytest.raises(ValueError, match="at least 2 characters"):
        MaskRule(method="tokenize", alphabet="a")
    with pytest.raises(ValueError, match="separators"):
        MaskRule(method="tokenize", alphabet="ab-")


def test_masked_query_on_an_engine_with_every_method(monkeypatch: pytest.MonkeyPatch) -> None:
    from lockgate.engine.session import DuckDBEngine

    monkeypatch.setenv("K", KEY)
    con = DuckDBEngine()
    con.register_arrow(
        "t",
        pa.table(
            {"a": ["secret-1", None], "b": ["abcdefgh", "ab"], "c": ["4111111111111111", "x"]}
        ),
    )
    rules = {
        "a": MaskRule(method="redact"),
        "b": MaskRule(method="partial", keep=0),
        "c": MaskRule(method="tokenize"),
    }
    register_masking(con, "K", rules)
    from sqlglot import exp

    got = con.arrow(masked_query(exp.select("*").from_("t"), ["a", "b", "c"], rules)).to_pylist()
    assert got[0]["a"] == "***" and got[1]["a"] is None
    assert got[0]["b"] == "********" and got[1]["b"] == "**"
    assert got[0]["c"] != "4111111111111111" and detokenize(got[0]["c"], KEY) == "4111111111111111"
    assert got[1]["c"] != "x"
    con.close()
