"""``connections:`` and ``targets:`` in lockgate.yaml, attacked: unknown names, unset
variables, missing secret files, passwords in URLs, capability flags."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import lockgate
from lockgate.connections import Connection, ConnectionConfigError
from lockgate.project import load_project, validate_project
from lockgate.redact import redact
from tests.conftest import PG_HOST, PG_PORT, require_service
from tests.run.helpers import make_project

PG_SOURCE = {"name": "orders", "source": {"type": "postgres", "connection": "shop", "table": "t"}}


def _config(**extra: Any) -> dict[str, Any]:
    return {
        "warehouse": "wh",
        "connections": {"shop": {"type": "postgres", "url": "${SHOP_URL}"}},
        "targets": {
            "dev": {"warehouse": "wh_dev", "state": "sqlite:///.lockgate/dev.db"},
            "prod": {
                "warehouse": "/srv/wh",
                "connections": {"shop": {"type": "postgres", "url": "file:secrets/shop_url"}},
            },
        },
        **extra,
    }


def test_target_selected_by_argument_env_and_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LOCKGATE_TARGET", raising=False)
    root = make_project(tmp_path / "p", [PG_SOURCE], config=_config())
    base = load_project(root)
    assert base.target is None and base.warehouse_path == root / "wh"
    dev = load_project(root, target="dev")
    assert dev.target == "dev" and dev.warehouse_path == root / "wh_dev"
    assert dev.state_url.endswith(f"{root.as_posix()}/.lockgate/dev.db")
    prod = load_project(root, target="prod")
    assert prod.warehouse_path == Path("/srv/wh")
    assert prod.config.connections["shop"].fields() == {"url": "file:secrets/shop_url"}
    assert dev.config.connections["shop"].fields() == {"url": "${SHOP_URL}"}
    monkeypatch.setenv("LOCKGATE_TARGET", "prod")
    assert load_project(root).target == "prod"
    assert load_project(root, target="dev").target == "dev"  # the flag wins
    monkeypatch.delenv("LOCKGATE_TARGET")
    make_project(root, [PG_SOURCE], config=_config(default_target="dev"))
    assert load_project(root).target == "dev"


def test_unknown_target_is_located_with_a_suggestion(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LOCKGATE_TARGET", raising=False)
    root = make_project(tmp_path / "p", [PG_SOURCE], config=_config())
    [p] = validate_project(root, target="prd")
    assert p.message == "unknown target 'prd' (--target)"
    assert p.file == "lockgate.yaml" and p.line == 7 and p.hint == "did you mean 'prod'?"
    make_project(root, [PG_SOURCE], config=_config(default_target="stage"))
    [p] = validate_project(root)
    assert "unknown target 'stage' (default_target)" in p.message
    assert p.hint == "known targets: dev, prod"


def test_unknown_connection_is_located_with_a_suggestion(tmp_path: Path) -> None:
    ds = {**PG_SOURCE, "source": {**PG_SOURCE["source"], "connection": "shoop"}}
    root = make_project(tmp_path / "p", [ds], config=_config())
    [p] = validate_project(root)
    assert p.message == "dataset 'orders': unknown connection 'shoop'"
    assert (p.file, p.line, p.hint) == ("datasets/main.yaml", 5, "did you mean 'shop'?")


def test_incremental_on_a_source_that_cannot(tmp_path: Path) -> None:
    ds = {**PG_SOURCE, "incremental": {"cursor": "id"}}
    root = make_project(tmp_path / "p", [ds], config=_config())
    [p] = validate_project(root)
    assert "source type 'postgres' does not support 'incremental:'" in p.message
    assert p.line == 7 and "file" in (p.hint or "")


def test_missing_env_var_names_the_variable_not_a_value(tmp_path: Path) -> None:
    conn = Connection("shop", "postgres", {"url": "postgresql://me:${SHOP_PW}@db/x"})
    with pytest.raises(ConnectionConfigError) as e:
        conn.resolve({"OTHER": "hunter2secret"})
    assert "environment variable SHOP_PW is not set" in str(e.value)
    assert "connection 'shop', field 'url'" in str(e.value)


def test_file_reference_to_a_missing_file(tmp_path: Path) -> None:
    conn = Connection("shop", "postgres", {"password": "file:secrets/pw"}, root=tmp_path)
    with pytest.raises(ConnectionConfigError) as e:
        conn.resolve({})
    assert f"cannot read the secret file {tmp_path / 'secrets' / 'pw'}" in str(e.value)
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "pw").write_text("s3cret-from-file\n")
    assert conn.resolve({}) == {"password": "s3cret-from-file"}
    assert redact("login failed: s3cret-from-file") == "login failed: ***"  # remembered


def test_secret_in_a_url_is_never_echoed() -> None:
    conn = Connection("shop", "postgres", {"url": "postgresql://u:pw-in-yaml-42@h/db"})
    assert "pw-in-yaml-42" not in repr(conn)
    conn.resolve({})
    assert redact("could not connect to postgresql://u:pw-in-yaml-42@h/db") == (
        "could not connect to postgresql://u:***@h/db"
    )


@pytest.mark.postgres
def test_postgres_source_through_a_connection(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_service("PostgreSQL", PG_HOST, PG_PORT)
    import psycopg

    plain = pg_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as pg:
        pg.execute("CREATE TABLE public.t (id bigint, amount numeric(12,2), at timestamptz)")
        pg.execute("INSERT INTO public.t VALUES (1, 1.50, '2024-01-01'), (2, NULL, NULL)")
    secret = "pw-Xq7-never-shown"  # trust auth ignores it; lockgate must still hide it
    with_pw = plain.replace("postgres@", f"postgres:{secret}@")
    monkeypatch.setenv("SHOP_URL", with_pw)
    root = make_project(tmp_path / "p", [PG_SOURCE], config=_config())
    result = lockgate.run(root, target="dev")
    assert result.ok, result.steps[0].error
    table = lockgate.read(load_project(root, target="dev"), "orders")
    assert table.num_rows == 2 and str(table.schema.field("amount").type) == "decimal128(12, 2)"
    text = json.dumps(result.to_dict(), default=str)
    assert secret not in text
    state = (root / ".lockgate" / "dev.db").read_bytes()
    assert secret.encode() not in state
    # a failing connection: the error names the table, never the password
    monkeypatch.setenv("SHOP_URL", with_pw.rsplit("/", 1)[0] + "/no_such_db")
    failed = lockgate.run(root, target="dev")
    assert not failed.ok and secret not in (failed.steps[0].error or "")
    assert "no_such_db" in (failed.steps[0].error or "")


def test_connections_in_the_json_schema() -> None:
    from lockgate.project import json_schema

    defs = json_schema("project")["$defs"]
    assert {"connections", "targets", "default_target"} <= set(defs["ProjectConfig"]["properties"])
    assert "connections" in defs["TargetSpec"]["properties"]


def test_run_with_an_unset_variable_fails_the_step_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SHOP_URL", raising=False)
    root = make_project(tmp_path / "p", [PG_SOURCE], config=_config())
    result = lockgate.run(root, target="dev")
    step = result.steps[0]
    assert not result.ok and step.status == "failed"
    assert "connection 'shop', field 'url': environment variable SHOP_URL is not set" in (
        step.error or ""
    )


def test_cli_target_flag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.cli.helpers import cli

    monkeypatch.delenv("LOCKGATE_TARGET", raising=False)
    root = make_project(tmp_path / "p", [PG_SOURCE], config=_config())
    ok = cli("validate", "-p", str(root), "--target", "dev")
    assert ok.exit_code == 0, ok.output
    bad = cli("validate", "-p", str(root), "--target", "prd", "--json")
    assert bad.exit_code != 0
    assert "unknown target 'prd' (--target)" in bad.output and "prod" in bad.output
    planned = cli("run", "-p", str(root), "-t", "dev", "--dry-run", "--json")
    assert planned.exit_code == 0, planned.output
    assert json.loads(planned.stdout)[0]["dataset"] == "orders"
