"""Debian's headless Chromium through Playwright, for the browser tests (never a downloaded
browser). Skips when Playwright or chromium is missing on a laptop; fails instead when
``LOCKGATE_REQUIRE_SERVICES=1`` (CI installs chromium in ``.ci/run``)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from tests.conftest import REQUIRE_SERVICES

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@contextmanager
def chromium() -> Iterator[Any]:
    """A launched browser (``playwright.sync_api.Browser``), closed on exit."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    if not os.path.exists(CHROMIUM):
        msg = f"Debian's chromium is not installed ({CHROMIUM}): apt-get install chromium"
        if REQUIRE_SERVICES:
            pytest.fail(msg + " and LOCKGATE_REQUIRE_SERVICES=1", pytrace=False)
        pytest.skip(msg)
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()
