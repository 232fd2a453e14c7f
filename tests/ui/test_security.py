"""Auth (tokens hashed at rest, roles, grants), CSRF, audit log, escaping, no secrets."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from lockgate.errors import UsageError
from lockgate.state import dashboard as dash
from lockgate.state import tables as t
from lockgate.ui import auth_required
from tests.ui.conftest import XSS, Shop, state_of

PAGES = ["/", "/runs", "/datasets/orders", "/datasets/orders/quarantine", "/lineage"]


def _token(shop: Shop, role: str, datasets: list[str] | None = None) -> str:
    with state_of(shop) as st:
        return dash.create_token(st, f"{role}-user", role, datasets)[1]


def _csrf(client: TestClient) -> str:
    html = client.get("/").text
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    assert m
    return m.group(1)


def test_tokens_are_stored_hashed(shop: Shop) -> None:
    secret = _token(shop, "viewer")
    with state_of(shop) as st, st.engine.connect() as conn:
        stored = [r.token_sha256 for r in conn.execute(sa.select(t.api_tokens))]
    assert secret not in stored and dash.token_hash(secret) in stored


def test_off_localhost_refuses_to_start_without_tokens(shop: Shop, tmp_path_factory) -> None:
    from lockgate.project import load_project
    from tests.run.helpers import csv_source, make_project

    root = make_project(
        tmp_path_factory.mktemp("nt") / "p", [csv_source("o", "o.csv")], files={"o.csv": "a\n1\n"}
    )
    fresh = load_project(root)
    assert auth_required(fresh, "127.0.0.1") is False
    with pytest.raises(UsageError, match="refusing to serve"):
        auth_required(fresh, "0.0.0.0")
    _token(shop, "viewer")
    assert auth_required(shop.project, "0.0.0.0") is True  # a token exists: starts, with auth


@pytest.mark.parametrize("path", PAGES)
def test_pages_need_a_token_when_auth_is_on(secured: TestClient, path: str) -> None:
    r = secured.get(path, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert secured.get("/api/runs").status_code == 401
    bad = secured.get("/api/runs", headers={"Authorization": "Bearer lgt_nope"})
    assert bad.status_code == 401


# route x role: the minimum role of each route
MATRIX = [
    ("GET", "/", "viewer"),
    ("GET", "/runs", "viewer"),
    ("GET", "/datasets/orders", "viewer"),
    ("GET", "/datasets/orders/quarantine", "viewer"),
    ("GET", "/datasets/orders/quarantine.csv", "viewer"),
    ("GET", "/lineage", "viewer"),
    ("GET", "/api/runs", "viewer"),
    ("GET", "/api/datasets/orders/quarantine", "viewer"),
    ("GET", "/audit", "admin"),
    ("POST", "/runs", "operator"),
]


@pytest.mark.parametrize("role", ["viewer", "operator", "admin"])
def test_route_role_matrix(secured: TestClient, shop: Shop, role: str, monkeypatch) -> None:
    started: list[list[str]] = []
    monkeypatch.setattr("lockgate.ui.app._run", lambda ui, names: started.append(names))
    auth = {"Authorization": f"Bearer {_token(shop, role)}"}
    rank = dash.ROLES.index(role)
    for method, path, needs in MATRIX:
        data = {"select": "orders"} if method == "POST" else None
        r = secured.request(method, path, headers=auth, data=data, follow_redirects=False)
        allowed = rank >= dash.ROLES.index(needs)
        assert (r.status_code in (200, 303)) == allowed, (role, method, path, r.status_code)
        if not allowed:
            assert r.status_code == 403


def test_dataset_grants(secured: TestClient, shop: Shop) -> None:
    auth = {"Authorization": f"Bearer {_token(shop, 'viewer', ['big'])}"}
    assert secured.get("/datasets/big", headers=auth).status_code == 200
    assert secured.get("/datasets/orders", headers=auth).status_code == 403
    assert secured.get("/datasets/orders/quarantine.csv", headers=auth).status_code == 403
    lineage = secured.get("/lineage", headers=auth).text
    assert lineage.count('class="node') == 1


def test_login_cookie_and_csrf_on_forms(secured: TestClient, shop: Shop, monkeypatch) -> None:
    monkeypatch.setattr("lockgate.ui.app._run", lambda ui, names: None)
    secret = _token(shop, "operator")
    secured.get("/login")
    csrf = secured.cookies.get("lg_csrf")
    assert secured.post("/login", data={"token": secret}).status_code == 403  # no CSRF value
    r = secured.post("/login", data={"token": secret, "csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303
    assert secured.get("/runs").status_code == 200  # the cookie logs the browser in
    forged = secured.post("/runs", data={"select": "orders", "csrf": "x" * 32})
    assert forged.status_code == 403
    ok = secured.post(
        "/runs", data={"select": "orders", "csrf": _csrf(secured)}, follow_redirects=False
    )
    assert ok.status_code == 303
    with state_of(shop) as st:
        actions = [(e.actor, e.action) for e in dash.audit_entries(st, shop.project.name)]
    assert ("token:operator-user", "trigger_run") in actions


def test_pii_reads_are_audited(local: TestClient, shop: Shop) -> None:
    with state_of(shop) as st:
        before = len(dash.audit_entries(st, shop.project.name, 1000))
        local.get("/datasets/orders/quarantine", params={"check": "amount_between"})
        local.get("/datasets/orders")  # sample rows of a PII dataset
        local.get("/datasets/big")  # not PII: not audited
        entries = dash.audit_entries(st, shop.project.name, 1000)
    new = entries[: len(entries) - before]
    assert sorted(e.action for e in new) == ["read_quarantine", "read_sample"]
    assert all(e.target == "orders" for e in new)


def test_everything_is_escaped(local: TestClient, shop: Shop) -> None:
    with state_of(shop) as st:
        detail = st.get_run(shop.run_ids[0])
        assert detail is not None
        step = detail.steps[0]
        st.record_check_results(
            step.step_id,
            step.run_id,
            shop.project.name,
            step.dataset,
            [{"name": "evil", "passed": False, "message": f"bad value {XSS}"}],
        )
    pages = [
        local.get(f"/runs/{shop.run_ids[0]}").text,
        local.get("/datasets/orders").text,
        local.get("/datasets/orders/quarantine", params={"column": "id", "value": "7"}).text,
    ]
    for html in pages:
        assert XSS not in html
        assert "&lt;script&gt;alert(" in html
    q = local.get("/datasets/orders/quarantine", params={"column": "note", "value": XSS})
    assert XSS not in q.text and q.status_code == 200


def test_secrets_are_never_rendered(local: TestClient, shop: Shop) -> None:
    with state_of(shop) as st:
        run = st.start_run(shop.project.name, selection="orders")
        st.finish_run(
            run.run_id,
            "failed",
            error="could not connect to postgresql://app:hunter2secret@db.example/prod",
        )
    html = local.get(f"/runs/{run.run_id}").text
    assert "hunter2secret" not in html and "postgresql://app:" in html
    assert "hunter2secret" not in local.get(f"/api/runs/{run.run_id}").text


def test_a_triggered_run_is_a_real_run(local: TestClient, shop: Shop) -> None:
    from lockgate.ui.app import _run

    ui = local.app.state.ui  # type: ignore[attr-defined]
    _run(ui, ["orders"])  # what the operator's POST /runs starts in a thread
    (run_id,) = ui.runs_started
    runs = local.get("/api/runs", params={"limit": 1}).json()
    assert runs[0]["run_id"] == run_id and runs[0]["selection"] == "orders"


def test_personal_columns_are_masked_for_viewers_and_shown_to_admins(
    secured: TestClient, shop: Shop
) -> None:
    viewer = {"Authorization": f"Bearer {_token(shop, 'viewer')}"}
    admin = {"Authorization": f"Bearer {_token(shop, 'admin')}"}
    url = "/api/datasets/orders/quarantine?limit=500"
    masked = secured.get(url, headers=viewer).json()["rows"]
    shown = secured.get(url, headers=admin).json()["rows"]
    assert masked and {r["note"] for r in masked} == {"***"}  # note is pii: in the fixture
    assert {r["note"] for r in shown} >= {"n1", "n2"}
    assert [r["id"] for r in masked] == [r["id"] for r in shown]  # the same rows
    # probing a masked column's values through the filter is refused
    probe = secured.get("/api/datasets/orders/quarantine?column=note&value=n1", headers=viewer)
    assert probe.status_code in (400, 404) and "personal data" in probe.text
    ok = secured.get("/api/datasets/orders/quarantine?column=note&value=n1", headers=admin)
    assert ok.status_code == 200 and ok.json()["rows"]
    page = secured.get("/datasets/orders", headers=viewer).text
    assert not re.search(r"\bn[0-3]\b", page) and "***" in page  # the sample on the page
    assert re.search(r"\bn[0-3]\b", secured.get("/datasets/orders", headers=admin).text)


def test_run_api_masks_samples_recorded_before_a_column_became_personal(
    tmp_path: Path,
) -> None:
    """The samples of a run recorded before ``pii:`` named the column hold clear values:
    the run API masks them for viewers (admins see them)."""
    import lockgate
    from lockgate.project import load_project
    from lockgate.ui.app import create_app
    from tests.run.helpers import csv_source, make_project

    ds = csv_source(
        "people",
        "data/p.csv",
        columns={"id": "BIGINT", "email": "VARCHAR", "amount": "DOUBLE"},
        checks=[{"type": "between", "column": "amount", "min": 0}],
    )
    csv = {"data/p.csv": "id,email,amount\n1,zz-early@example.com,-1\n"}
    root = make_project(tmp_path / "p", [ds], files=csv)
    run_id = lockgate.run(root).run_id
    make_project(tmp_path / "p", [{**ds, "pii": ["email"]}])
    shop = Shop(root, load_project(root), [run_id])
    viewer = {"Authorization": f"Bearer {_token(shop, 'viewer')}"}
    admin = {"Authorization": f"Bearer {_token(shop, 'admin')}"}
    with TestClient(create_app(shop.project, auth_required=True)) as c:
        seen = c.get(f"/api/runs/{run_id}", headers=viewer)
        assert seen.status_code == 200 and "zz-early" not in seen.text and "***" in seen.text
        assert "zz-early" in c.get(f"/api/runs/{run_id}", headers=admin).text
