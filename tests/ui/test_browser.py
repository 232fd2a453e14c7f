"""The dashboard in a real browser: Debian's chromium driven by Playwright (no browser
download). Opens every page after a run with quarantined rows and a blocked dataset and
clicks through run → step → check → quarantine. Screenshots go to ``docs/screenshots/`` when
``LOCKGATE_SCREENSHOTS=1`` (for the README), else to the test's temporary folder."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser import chromium
from tests.ui.conftest import XSS, Shop

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(shop: Shop) -> Iterator[str]:
    import uvicorn

    from lockgate.ui.app import create_app

    port = _free_port()
    config = uvicorn.Config(
        create_app(shop.project, auth_required=False),
        host="127.0.0.1",
        port=port,
        log_level="warning",
    )
    srv = uvicorn.Server(config)
    started = threading.Event()

    async def serve() -> None:
        await srv.serve()

    def run() -> None:
        import asyncio

        loop = asyncio.new_event_loop()
        task = loop.create_task(serve())

        async def watch() -> None:
            while not srv.started and not task.done():
                await asyncio.sleep(0.01)
            started.set()

        loop.run_until_complete(asyncio.gather(task, watch()))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert started.wait(30) and srv.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(10)


def test_click_through_in_chromium(server: str, shop: Shop, tmp_path: Path) -> None:
    shots = REPO / "docs" / "screenshots" if os.environ.get("LOCKGATE_SCREENSHOTS") else tmp_path
    shots.mkdir(parents=True, exist_ok=True)
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        dialogs: list[str] = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(server + "/")
        risk = page.locator("section", has_text="Datasets at risk")
        assert "last step blocked" in risk.inner_text()
        page.wait_for_selector(".chart .uplot")  # the score chart was drawn by uPlot
        page.screenshot(path=str(shots / "overview.png"), full_page=True)

        page.click(f"text={shop.run_ids[0][:12]}")
        assert page.locator("h1").inner_text().startswith("Run ")
        assert page.locator(".gantt .row").count() == 3
        page.screenshot(path=str(shots / "run.png"), full_page=True)

        page.go_back()
        page.click(f"text={shop.run_ids[1][:12]}")
        page.click("#step-1 >> text=amount_between")  # a failing check → its quarantined rows
        page.wait_for_url("**/datasets/orders/quarantine?*")
        rows = page.locator("table.qtable tbody tr")
        assert rows.count() == 50
        assert "amount_between" in rows.first.inner_text()
        page.screenshot(path=str(shots / "quarantine.png"), full_page=True)

        page.select_option("select[name=column]", "note")
        page.fill("input[name=value]", XSS)
        page.click("text=Filter")  # htmx swaps the rows in place
        page.wait_for_function("document.querySelectorAll('table.qtable tbody tr').length === 1")
        assert XSS in page.locator("table.qtable tbody tr").inner_text()  # shown as text
        assert dialogs == []  # the payload did not run

        for path, name in (("/datasets/orders", "dataset"), ("/lineage", "lineage")):
            page.goto(server + path)
            assert page.locator("h1").is_visible()
            page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
