"""A password in any URL lockgate is given never appears in what it prints, writes or stores:
stdout, stderr (also with --debug), --json, HTML/JSON/YAML files, the warehouse and the
state store."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import yaml

from tests.attack._util import build, cli, csv_source

PW = "s3cr3t-P4ss"
PG = "127.0.0.1:5432"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def pg_schema() -> Iterator[str]:
    schema = "attack_" + uuid.uuid4().hex[:10]
    try:
        conn = psycopg.connect(f"postgresql://postgres@{PG}/test", autocommit=True)
    except psycopg.Error as e:  # pragma: no cover - services are required in CI
        if os.environ.get("LOCKGATE_REQUIRE_SERVICES"):
            raise
        pytest.skip(f"PostgreSQL not available: {e}")
    with conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
        conn.execute(f'CREATE TABLE "{schema}".t (id int, name text, amount numeric(10,2))')
        conn.execute(
            f"INSERT INTO \"{schema}\".t VALUES (1, 'a', 1.5), (2, NULL, 2.5), (3, 'c', -1)"
        )
        try:
            yield schema
        finally:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def _urls(schema: str) -> dict[str, str]:
    return {
        "pg_trust_ok": f"postgresql://postgres:{PW}@{PG}/test?table={schema}.t",
        "pg_psycopg_driver": f"postgresql+psycopg://postgres:{PW}@{PG}/test?table={schema}.t",
        "pg_password_param": f"postgresql://postgres@{PG}/test?password={PW}&table={schema}.t",
        "pg_unknown_user": f"postgresql://lockgate_attack:{PW}@{PG}/test?table={schema}.t",
        "pg_missing_table": f"postgresql://postgres:{PW}@{PG}/test?table={schema}.nope",
        "pg_no_table": f"postgresql://lockgate_attack:{PW}@{PG}/test",
        "pg_bad_port": f"postgres://lockgate_attack:{PW}@127.0.0.1:1/test?table=public.t",
        "mysql": f"mysql://root:{PW}@127.0.0.1:3306/test?table=t",
        "redis": f"redis://:{PW}@127.0.0.1:6379/0",
    }


URL_IDS = list(_urls("s"))


def _leaks(tmp: Path, outputs: dict[str, str]) -> list[str]:
    found = [
        f"{what}: ...{text[max(0, text.find(PW) - 60) : text.find(PW) + 20]}..."
        for what, text in outputs.items()
        if PW in text
    ]
    for f in tmp.rglob("*"):
        if f.is_file() and PW.encode() in f.read_bytes():
            found.append(f"file {f.relative_to(tmp)}")
    return found


@pytest.mark.parametrize("which", URL_IDS)
def test_no_command_echoes_the_password_of_a_target_url(
    tmp_path: Path, pg_schema: str, which: str
) -> None:
    url = _urls(pg_schema)[which]
    checks = tmp_path / "checks.yaml"
    checks.write_text(yaml.safe_dump({"checks": [{"type": "not_null", "column": "id"}]}))
    local = tmp_path / "local.csv"
    local.write_text("id\n1\n2\n")
    commands = {
        "check": ["check", url, "-c", str(checks)],
        "check --json": ["check", url, "-c", str(checks), "--json"],
        "check --ref": ["check", str(local), "-c", str(checks), "--ref", f"other={url}"],
        "profile": ["profile", url],
        "profile --json": ["profile", url, "--json"],
        "profile --html -o": [
            "profile",
            url,
            "--html",
            str(tmp_path / "r.html"),
            "-o",
            str(tmp_path / "r.json"),
        ],
        "suggest": ["suggest", url],
        "suggest -o": ["suggest", url, "-o", str(tmp_path / "s.yaml")],
    }
    outputs: dict[str, str] = {}
    exits = {}
    for name, args in commands.items():
        r = cli(*args)
        exits[name] = r.exit_code
        outputs[f"{name} stdout"] = r.stdout
        outputs[f"{name} stderr"] = r.stderr
        if r.exception is not None and not isinstance(r.exception, SystemExit):
            outputs[f"{name} exception"] = repr(r.exception)
    leaks = _leaks(tmp_path, outputs)
    assert not leaks, f"password of {which} URL leaked in: " + "; ".join(leaks)
    if which == "pg_trust_ok":
        assert exits["check"] == 0 and exits["profile --json"] == 0, (exits, outputs)
        assert (tmp_path / "r.html").exists(), outputs["profile --html -o stderr"]


@pytest.mark.slow  # real subprocesses
@pytest.mark.parametrize(
    "which,column,code",
    [("pg_trust_ok", "name", 1), ("pg_no_table", "id", 2)],
    ids=["failing_check", "no_table"],
)
def test_debug_output_does_not_echo_the_password(
    tmp_path: Path, pg_schema: str, which: str, column: str, code: int
) -> None:
    url = _urls(pg_schema)[which]
    checks = tmp_path / "checks.yaml"
    checks.write_text(yaml.safe_dump({"checks": [{"type": "not_null", "column": column}]}))
    r = subprocess.run(
        [sys.executable, "-m", "lockgate", "--debug", "check", url, "-c", str(checks), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"},
    )
    leaks = _leaks(tmp_path, {"stdout": r.stdout, "stderr": r.stderr})
    assert not leaks, f"--debug output leaked the password: {leaks}"
    assert r.returncode == code, f"exit {r.returncode}, expected {code}: {r.stderr[-500:]}"


def _state_project(tmp_path: Path, state: str) -> Path:
    return build(
        tmp_path / "p",
        [csv_source("items", "data/items.csv", checks=[{"type": "not_null", "column": "v"}])],
        {"data/items.csv": "k,v\n1,a\n2,\n"},
        config={"name": "attack_" + uuid.uuid4().hex[:12], "state": state},
    )


@pytest.mark.parametrize(
    "state",
    [
        f"postgresql://lockgate_attack:{PW}@{PG}/test",
        f"postgresql+psycopg://lockgate_attack:{PW}@{PG}/test",
        f"postgresql://lockgate_attack@{PG}/test?password={PW}",
        f"postgresql://lockgate_attack:{PW}@127.0.0.1:1/test",
    ],
    ids=["bad_user", "bad_user_psycopg", "password_param", "unreachable"],
)
def test_unusable_state_url_password_not_echoed(tmp_path: Path, state: str) -> None:
    root = _state_project(tmp_path, state)
    outputs: dict[str, str] = {}
    for args in (
        ["run"],
        ["run", "--json"],
        ["runs"],
        ["runs", "--json"],
        ["validate"],
        ["show", "items"],
        ["quarantine", "items"],
        ["run", "--dry-run"],
    ):
        r = cli(*args, "-p", str(root))
        outputs[" ".join(args) + " stdout"] = r.stdout
        outputs[" ".join(args) + " stderr"] = r.stderr
        if r.exception is not None and not isinstance(r.exception, SystemExit):
            outputs[" ".join(args) + " exception"] = repr(r.exception)
    outputs.update(
        {
            f"file {p.name}": p.read_text(errors="replace")
            for p in (root / ".lockgate").glob("*")
            if p.is_file()
        }
        if (root / ".lockgate").is_dir()
        else {}
    )
    leaks = [k for k, v in outputs.items() if PW in v]
    # lockgate.yaml itself holds the password (the user wrote it there): skip it
    files = [
        f
        for f in root.rglob("*")
        if f.is_file() and f.name != "lockgate.yaml" and PW.encode() in f.read_bytes()
    ]
    assert not leaks and not files, f"state URL password leaked in: {leaks} {files}: " + " | ".join(
        outputs[k][:300] for k in leaks[:2]
    )


def test_working_state_url_password_not_stored_or_printed(tmp_path: Path, pg_url: str) -> None:
    db = pg_url.rsplit("/", 1)[1]  # a fresh database: the shared one may hold newer state
    root = _state_project(tmp_path, f"postgresql://postgres:{PW}@{PG}/{db}")
    outputs: dict[str, str] = {}
    for args in (
        ["run", "--json"],
        ["run"],
        ["runs", "--json"],
        ["runs"],
        ["show", "items"],
        ["quarantine", "items", "--json"],
        ["quality", "items"],
    ):
        r = cli(*args, "-p", str(root))
        outputs[" ".join(args)] = r.stdout + r.stderr
    assert '"success"' in outputs["run --json"], outputs["run --json"][:500]
    leaks = [k for k, v in outputs.items() if PW in v]
    files = [
        str(f.relative_to(root))
        for f in root.rglob("*")
        if f.is_file() and f.name != "lockgate.yaml" and PW.encode() in f.read_bytes()
    ]
    assert not leaks and not files, f"password printed by {leaks} / stored in {files}"
    name = yaml.safe_load((root / "lockgate.yaml").read_text())["name"]
    with psycopg.connect(f"postgresql://postgres@{PG}/{db}") as conn:
        tables = conn.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_name LIKE 'lockgate%%' AND table_type = 'BASE TABLE'"
        ).fetchall()
        stored = []
        for schema, table in tables:
            hit = conn.execute(
                f'SELECT count(*) FROM "{schema}"."{table}" AS x '
                "WHERE x::text LIKE %s AND x::text LIKE %s",
                (f"%{PW}%", f"%{name}%"),
            ).fetchone()
            if hit and hit[0]:
                stored.append(f"{schema}.{table}")
    assert not stored, f"the state store holds the password in {stored}"
