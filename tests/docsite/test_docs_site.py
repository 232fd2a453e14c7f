"""``lockgate docs``: the static data dictionary, checked as files and rendered offline in
Debian's headless Chromium (every non-file request is refused and recorded)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import lockgate
from lockgate.cli.app import app
from tests.browser import chromium
from tests.run.helpers import csv_source, make_project, sql

XSS = "<script>alert('x')</script>"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = make_project(
        tmp_path_factory.mktemp("docs") / "shop",
        [
            csv_source(
                "orders",
                "data/orders.csv",
                columns={"id": "BIGINT", "amount": "DOUBLE", "email": "VARCHAR"},
                description=f"orders as they arrive {XSS}",
                owner="team-data",
                tags=["core", "finance"],
                pii=["email"],
                freshness={"warn_after": "1h", "error_after": "1d"},
                checks=[
                    {"type": "between", "column": "amount", "min": 0, "severity": "warn"},
                    {"type": "anomaly", "metric": "row_count"},
                ],
            ),
            sql(
                "revenue",
                "select email, sum(amount) as total from orders group by email",
                description="revenue per customer",
                checks=[{"type": "not_null", "column": "total"}],
            ),
            sql("never_run", "select total from revenue"),
        ],
        files={"data/orders.csv": "id,amount,email\n1,10,a@x.io\n2,-5,b@x.io\n3,7,a@x.io\n"},
    )
    assert lockgate.run(root, select=["orders", "revenue"]).ok
    out = root / "site"
    res = CliRunner().invoke(app, ["docs", "--project", str(root), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "wrote 5 pages" in res.output
    return out


def test_pages_are_self_contained_and_escaped(site: Path) -> None:
    pages = sorted(p.relative_to(site).as_posix() for p in site.rglob("*.html"))
    assert pages == [
        "datasets/never_run.html",
        "datasets/orders.html",
        "datasets/revenue.html",
        "index.html",
        "lineage.html",
    ]
    for p in site.rglob("*.html"):
        html = p.read_text()
        assert "<script" not in html  # no script at all (and the payload is escaped)
        assert not re.search(r"(src|href)=\"(https?:)?//", html), p  # nothing remote
        assert "<link" not in html  # the CSS is inline
    assert "&lt;script&gt;alert(" in (site / "index.html").read_text()


def test_orders_page_content(site: Path) -> None:
    html = (site / "datasets" / "orders.html").read_text()
    assert "team-data" in html and "finance" in html
    assert 'data-column="revenue.total"' in html  # the lineage neighbourhood
    assert "amount_between" in html and "row_count_anomaly" in html
    assert "learning: 0 of 10" in html  # the anomaly check's first run


@pytest.mark.slow
def test_the_site_renders_offline_in_chromium(site: Path, tmp_path: Path) -> None:
    remote: list[str] = []
    with chromium() as browser:
        ctx = browser.new_context(
            viewport={"width": 1280, "height": 900}, java_script_enabled=False
        )

        def route(r: Any) -> None:
            if r.request.url.startswith("file://"):
                r.continue_()
            else:
                remote.append(r.request.url)
                r.abort()

        ctx.route("**/*", route)
        page = ctx.new_page()
        page.goto((site / "index.html").as_uri())
        row = page.locator("tr#orders")
        assert "team-data" in row.inner_text() and "email" in row.inner_text()
        assert "success" in row.inner_text()
        assert page.locator("tr#never_run").inner_text().count("never run") == 1
        page.get_by_role("link", name="orders", exact=True).click()
        assert page.url.endswith("/datasets/orders.html")
        assert page.locator("h1").inner_text().startswith("orders")
        assert f"orders as they arrive {XSS}" in page.locator("p.description").inner_text()
        cols = page.locator("table.columns").inner_text()
        assert "email PII" in cols and "revenue.email" in cols
        checks = page.locator("table.checks").inner_text()
        assert re.search(r"amount_between\s+between\s+accuracy\s+warn\s+FAIL", checks), checks
        assert "row_count_anomaly" in checks
        assert page.locator("svg.collineage text.colrow").count() >= 5
        page.screenshot(path=str(tmp_path / "orders.png"), full_page=True)
        page.get_by_role("link", name="revenue").first.click()
        assert "revenue per customer" in page.locator("p.description").inner_text()
        page.get_by_role("link", name="Column lineage").click()
        assert page.url.endswith("/lineage.html")
        titles = page.locator("svg.collineage path title").all_text_contents()
        assert "orders.amount -> revenue.total (DIRECT/AGGREGATION)" in titles
    assert remote == []
