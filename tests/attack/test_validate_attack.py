"""`lockgate validate` refuses what would break later: names differing only in case,
names too long for the file system, YAML alias bombs, non-UTF-8 files, bad regexes,
SQL using columns no upstream declares — each with exit 2 and the file (and line) named."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.attack._util import build, cli, csv_source, run, sql, write_files

REPO = Path(__file__).resolve().parents[2]


def _validate(root: Path) -> tuple[int, str, list[dict[str, Any]]]:
    r = cli("validate", "-p", str(root))
    j = cli("validate", "-p", str(root), "--json")
    problems = json.loads(j.stdout) if j.stdout.strip().startswith("[") else []
    return r.exit_code, r.stdout + r.stderr, problems


@pytest.mark.parametrize(
    "a,b,split",
    [("dup", "DUP", False), ("Orders", "orders", True), ("sales_EU", "Sales_eu", False)],
    ids=["dup_DUP", "Orders_orders_two_files", "mixed"],
)
def test_names_differing_only_in_case_are_rejected(
    tmp_path: Path, a: str, b: str, split: bool
) -> None:
    ds = [csv_source(a, "data/a.csv"), csv_source(b, "data/b.csv")]
    root = build(
        tmp_path / "p", ds[:1] if split else ds, {"data/a.csv": "x\n1\n", "data/b.csv": "x\n2\n"}
    )
    if split:
        write_files(root, {"datasets/more.yaml": yaml.safe_dump({"datasets": ds[1:]})})
    code, out, _ = _validate(root)
    assert code == 2, (
        f"'{a}' and '{b}' differ only in case (one table folder on case-insensitive file "
        f"systems, one name in SQL): validate exited {code}: {out[-600:]}"
    )
    assert a in out and b in out, f"both names must be reported: {out[-600:]}"


@pytest.mark.parametrize("length", [250, 300])
def test_over_long_dataset_name_fails_validate_or_runs(tmp_path: Path, length: int) -> None:
    name = "n" + "x" * (length - 1)
    root = build(tmp_path / "p", [csv_source(name, "data/a.csv")], {"data/a.csv": "x\n1\n"})
    code, out, _ = _validate(root)
    if code == 0:
        res = run(root)
        assert res.ok, (
            f"a {length}-character name passed validate but the run failed: "
            f"{res.steps[0].reason[:300]}"
        )
    else:
        assert code == 2 and any(w in out.lower() for w in ("long", "length", "characters")), (
            f"expected a clear 'too long' problem: {out[-600:]}"
        )
    if length >= 300:
        assert code == 2, (
            f"a {length}-character name cannot be a folder name: validate must reject it"
        )


def _bomb(levels: int = 7, width: int = 9) -> list[str]:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        refs = ", ".join([f"*a{i - 1}"] * width)
        lines.append(f"a{i}: &a{i} [{refs}]")
    return lines


def _limit_memory() -> None:  # a bomb must not take the shared machine down with it
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))


@pytest.mark.slow  # real subprocesses
@pytest.mark.parametrize("where", ["dataset_tags", "check_values", "lockgate_yaml"])
def test_yaml_alias_bomb_is_refused_fast(tmp_path: Path, where: str) -> None:
    root = build(tmp_path / "p", [csv_source("a", "data/a.csv")], {"data/a.csv": "x\n1\n"})
    bomb = _bomb()
    if where == "lockgate_yaml":
        rel = "lockgate.yaml"
        text = (root / rel).read_text() + "\n".join(bomb) + "\n"
    else:
        rel = "datasets/bomb.yaml"
        anchors = "\n".join("  " + b for b in bomb)
        use = (
            "    tags: *a6\n"
            if where == "dataset_tags"
            else "    checks:\n      - {type: accepted_values, column: x, values: *a6}\n"
        )
        text = (
            "x-common:\n" + anchors + "\n"
            "datasets:\n  - name: b\n    source: {type: file, path: data/a.csv}\n" + use
        )
    (root / rel).write_text(text)
    try:
        r = subprocess.run(
            [sys.executable, "-m", "lockgate", "validate", "-p", str(root)],
            capture_output=True,
            text=True,
            timeout=60,
            preexec_fn=_limit_memory,
            env={**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"},
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"validate did not finish within 60 s on a {len(text)}-byte YAML alias bomb")
    assert r.returncode == 2, (
        f"alias bomb ({where}, {len(text)} bytes): exit {r.returncode} (expected 2, refused): "
        f"{r.stderr[-600:]}"
    )
    out = r.stdout + r.stderr
    assert Path(rel).name in out, "the offending file must be named"
    assert any(w in out.lower() for w in ("alias", "anchor", "expan")), (
        "validate must refuse the alias expansion itself (not walk millions of nodes and report "
        f"what they contain): {out[-600:]}"
    )


@pytest.mark.parametrize(
    "rel,payload",
    [
        (
            "datasets/latin.yaml",
            "datasets:\n  - name: caf\xe9\n    source: {type: file, path: data/a.csv}\n".encode(
                "latin-1"
            ),
        ),
        (
            "datasets/cp1252.yaml",
            b"datasets:\n  - name: x\n    description: \x93smart quotes\x94\n"
            b"    source: {type: file, path: data/a.csv}\n",
        ),
        ("datasets/q.sql", b"select x, '\xff\xfe' as junk from a\n"),
    ],
    ids=["latin1_yaml", "cp1252_yaml", "binary_sql"],
)
def test_non_utf8_file_is_a_config_error_naming_the_file(
    tmp_path: Path, rel: str, payload: bytes
) -> None:
    ds: list[dict[str, Any]] = [csv_source("a", "data/a.csv")]
    if rel.endswith(".sql"):
        ds.append({"name": "q", "transform": {"sql_file": "q.sql"}})
    root = build(tmp_path / "p", ds, {"data/a.csv": "x\n1\n", rel: payload})
    code, out, _problems = _validate(root)
    assert code == 2, f"non-UTF-8 {rel}: exit {code} (expected 2): {out[-600:]}"
    assert "unexpected" not in out.lower(), f"a crash, not a config problem: {out[-600:]}"
    assert Path(rel).name in out, f"the file {rel} must be named: {out[-600:]}"


@pytest.mark.parametrize(
    "pattern", [r"\pL+", r"\p{Greek}+", r"[\p{Lu}\d]+", r"\PN*", r"(?i)straße", r"\p{Han}{1,3}"]
)
def test_re2_patterns_are_accepted(tmp_path: Path, pattern: str) -> None:
    check = {"type": "regex_match", "column": "w", "pattern": pattern}
    root = build(
        tmp_path / "p",
        [csv_source("a", "data/a.csv", checks=[check])],
        {"data/a.csv": "w\n\u03b1\u03b2\u03b3\n"},
    )
    code, out, _ = _validate(root)
    assert code == 0, (
        f"{pattern!r} is valid RE2 (DuckDB's regex engine) but validate rejected it: {out[-400:]}"
    )


@pytest.mark.parametrize("pattern", [r"(?<=a)b", r"(a)\1", r"(", r"a{2,1}", r"(?P<n>a)(?P=n)"])
def test_patterns_re2_cannot_run_are_rejected(tmp_path: Path, pattern: str) -> None:
    check = {"type": "regex_match", "column": "w", "pattern": pattern}
    root = build(
        tmp_path / "p", [csv_source("a", "data/a.csv", checks=[check])], {"data/a.csv": "w\nab\n"}
    )
    code, out, _ = _validate(root)
    assert code == 2, (
        f"{pattern!r} is not valid RE2: validate must reject it, exit {code}: {out[-400:]}"
    )


UPSTREAM = csv_source(
    "obs", "data/obs.csv", columns={"id": "BIGINT", "weather": "VARCHAR", "temp": "DOUBLE"}
)


@pytest.mark.parametrize(
    "sql_text,bad,line",
    [
        ("select\n  id,\n  lower(trim(wheather)) as w\nfrom obs\n", "wheather", 3),
        ("select id, temp\nfrom obs\nwhere tmp > 3\n", "tmp", 3),
        ("with x as (select id, weather from obs)\nselect id, x.wether\nfrom x\n", "wether", 2),
    ],
    ids=["select_expr", "where_clause", "through_cte"],
)
def test_sql_file_unknown_upstream_column_reported_with_file_line(
    tmp_path: Path, sql_text: str, bad: str, line: int
) -> None:
    ds = [
        UPSTREAM,
        {"name": "out", "transform": {"sql_file": "out.sql"}, "write": {"mode": "overwrite"}},
    ]
    root = build(
        tmp_path / "p",
        ds,
        {"data/obs.csv": "id,weather,temp\n1,Sun,20\n", "datasets/out.sql": sql_text},
    )
    code, out, problems = _validate(root)
    assert code == 2, (
        f"SQL references '{bad}', which 'obs' does not declare: validate exit {code}: {out[-400:]}"
    )
    hits = [p for p in problems if bad in json.dumps(p)]
    assert hits, f"no problem names the column '{bad}': {problems}"
    text = json.dumps(hits)
    assert "out.sql" in text and (
        f"out.sql:{line}" in out or any(p.get("line") == line for p in hits)
    ), f"the problem must point at out.sql line {line}: {hits}"


def test_inline_sql_unknown_column_reported(tmp_path: Path) -> None:
    ds = [
        UPSTREAM,
        sql("out", "select id, upper(wheather) as w from obs", write={"mode": "overwrite"}),
    ]
    root = build(tmp_path / "p", ds, {"data/obs.csv": "id,weather,temp\n1,Sun,20\n"})
    code, out, _problems = _validate(root)
    assert code == 2 and "wheather" in out, (
        f"unknown column in inline SQL not reported: {out[-400:]}"
    )
    assert "main.yaml" in out, f"the YAML file defining the SQL must be named: {out[-400:]}"


def test_known_columns_and_aliases_still_validate(tmp_path: Path) -> None:
    text = (
        "with x as (select id, weather as w from obs)\n"
        "select id, lower(w) as w2, count(*) over () as n\nfrom x\n"
    )
    ds = [
        UPSTREAM,
        {"name": "out", "transform": {"sql_file": "out.sql"}, "write": {"mode": "overwrite"}},
    ]
    root = build(
        tmp_path / "p",
        ds,
        {"data/obs.csv": "id,weather,temp\n1,Sun,20\n", "datasets/out.sql": text},
    )
    code, out, _ = _validate(root)
    assert code == 0, f"valid SQL over declared columns must pass: {out[-400:]}"
