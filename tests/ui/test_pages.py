"""Every page renders what a person needs to see, on a real project after real runs."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from tests.ui.conftest import Shop


def text(html: str) -> str:
    """The visible text of a page, roughly: tags dropped, whitespace squeezed."""
    squeezed = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))
    return squeezed.replace(" :", ":").replace(" ,", ",")


def test_overview_lists_runs_risks_and_scores(local: TestClient, shop: Shop) -> None:
    r = local.get("/")
    assert r.status_code == 200
    t = text(r.text)
    for run_id in shop.run_ids:
        assert run_id[:12] in t
    assert "big: last step blocked" in t  # the blocked dataset is at risk
    assert "after_big: last step upstream_failed" in t
    assert 'id="scores-data"' in r.text and '"overall"' in r.text  # daily score series
    assert "orders" in t


def test_runs_page_pages_by_seq(local: TestClient, shop: Shop) -> None:
    t = text(local.get("/runs").text)
    assert shop.run_ids[0][:12] in t and shop.run_ids[1][:12] in t
    api = local.get("/api/runs", params={"limit": 1}).json()
    assert [r["run_id"] for r in api] == [shop.run_ids[1]]
    older = local.get("/api/runs", params={"limit": 1, "before": api[0]["seq"]}).json()
    assert [r["run_id"] for r in older] == [shop.run_ids[0]]


def test_run_page_shows_timeline_steps_checks_and_replay(local: TestClient, shop: Shop) -> None:
    r = local.get(f"/runs/{shop.run_ids[0][:10]}")
    assert r.status_code == 200
    t = text(r.text)
    assert 'class="gantt' in r.text and r.text.count('class="row"') == 3
    assert "orders success" in t and "big blocked" in t and "after_big upstream_failed" in t
    assert "amount_between" in t and "row_count" in t
    # rows in / out / quarantined / skipped of orders: 130 read, 10 published, 120 quarantined
    assert re.search(r"130 10 120 0", t)
    assert "Replay: lockgate run" in t
    replay = text(local.get(f"/runs/{shop.run_ids[1]}").text)
    assert "lockgate run --select orders --full-refresh" in replay
    assert local.get("/runs/ffffffffffff").status_code == 404


def test_dataset_page(local: TestClient, shop: Shop) -> None:
    r = local.get("/datasets/orders")
    assert r.status_code == 200
    t = text(r.text)
    assert "Owner: team-data" in t and "PII columns: note" in t
    assert "amount_between" in t and "Schema versions" in t and "v1" in t
    assert "id int64" in t or "id BIGINT" in t
    assert "Downstream: big" in t
    assert "Column lineage" in t and 'data-column="big.amount"' in r.text
    assert r.text.count('class="coledge direct"') == 3  # orders.{id,amount,note} -> big
    assert shop.run_ids[1][:12] in t  # recent runs
    assert local.get("/datasets/nope").status_code == 404


def test_lineage_graph_and_focus(local: TestClient) -> None:
    r = local.get("/lineage")
    assert r.status_code == 200 and r.text.count('class="node') == 3
    assert r.text.count('class="edge"') == 2
    one = local.get("/lineage", params={"focus": "after_big", "hops": 1})
    assert one.text.count('class="node') == 2  # big and after_big, not orders
    found = local.get("/lineage", params={"search": "after", "hops": 1})
    assert found.text.count('class="node') == 2


def test_lineage_graph_at_column_level(local: TestClient) -> None:
    r = local.get("/lineage", params={"level": "column"})
    assert r.status_code == 200
    assert r.text.count('class="colbox') == 3
    for c in ("orders.id", "orders.note", "big.amount", "after_big.n"):
        assert f'data-column="{c}"' in r.text
    assert "orders.amount -&gt; big.amount (DIRECT/IDENTITY)" in r.text
    assert "note (pii)" in r.text  # orders.note is tagged PII
    # count(*) reads no column: after_big.n has no column edge
    assert "-&gt; after_big.n" not in r.text
    one = local.get("/lineage", params={"level": "column", "focus": "after_big", "hops": 1})
    assert one.text.count('class="colbox') == 2
    assert local.get("/lineage", params={"level": "bogus"}).status_code == 422


def test_static_assets_are_served_locally(local: TestClient) -> None:
    html = local.get("/").text
    assert "http://" not in html and "https://" not in html  # no CDN
    for asset in ("/static/htmx.min.js", "/static/uPlot.iife.min.js", "/static/app.css"):
        assert local.get(asset).status_code == 200
