"""`lockgate ui` refuses to listen beyond localhost without tokens; `lockgate ui-token`
creates a token that is printed once and verifies, and revokes it."""

from __future__ import annotations

from pathlib import Path

from lockgate.state import StateStore
from lockgate.state import dashboard as dash
from tests.cli.helpers import cli
from tests.run.helpers import csv_source, make_project


def test_ui_refuses_off_localhost_without_tokens_then_tokens_work(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p", [csv_source("o", "o.csv")], files={"o.csv": "a\n1\n"})
    r = cli("ui", "--host", "0.0.0.0", "--port", "1", "-p", str(root))
    assert r.exit_code == 2 and "refusing to serve the dashboard on 0.0.0.0" in r.output
    made = cli("ui-token", "create", "ci", "--role", "operator", "-p", str(root))
    assert made.exit_code == 0, made.output
    secret = made.output.strip().splitlines()[-1]
    from lockgate.project import load_project

    with StateStore.open(load_project(root).state_url) as st:
        tok = dash.verify_token(st, secret)
        assert tok is not None and tok.role == "operator"
    gone = cli("ui-token", "revoke", tok.token_id, "-p", str(root))
    assert gone.exit_code == 0 and "revoked" in gone.output
    with StateStore.open(load_project(root).state_url) as st:
        assert dash.verify_token(st, secret) is None
    bad = cli("ui-token", "create", "x", "--role", "root", "-p", str(root))
    assert bad.exit_code == 2 and "unknown role 'root'" in bad.output
