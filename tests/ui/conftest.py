"""A real project after real runs: quarantined rows (including an XSS payload as a value), a
blocked dataset and its skipped downstream; and clients of the dashboard on it."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

# starlette's TestClient prefers the httpx2 package; httpx works the same for these tests
warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
pytest.importorskip("fastapi", reason="the dashboard needs the 'ui' extra")
from fastapi.testclient import TestClient  # noqa: E402

import lockgate  # noqa: E402
from lockgate.project import Project, load_project  # noqa: E402
from lockgate.state import StateStore  # noqa: E402
from lockgate.ui.app import create_app  # noqa: E402
from tests.run.helpers import csv_source, make_project, sql  # noqa: E402

XSS = "<script>alert('x')</script>"
ROWS = 130  # 120 quarantined: more than two pages of 50


@dataclass
class Shop:
    root: Path
    project: Project
    run_ids: list[str]


def _orders_csv() -> str:
    lines = ["id,amount,note"]
    for i in range(1, ROWS + 1):
        amount = 5 if i % 13 == 0 else -i  # 10 good rows, 120 bad ones
        note = XSS if i == 7 else f"n{i % 4}"
        lines.append(f'{i},{amount},"{note}"')
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Shop:
    root = make_project(
        tmp_path_factory.mktemp("ui") / "shop",
        [
            csv_source(
                "orders",
                "data/orders.csv",
                columns={"id": "BIGINT", "amount": "DOUBLE", "note": "VARCHAR"},
                description=f"orders {XSS}",
                owner="team-data",
                tags=["core"],
                pii=["note"],
                checks=[{"type": "between", "column": "amount", "min": 0}],
            ),
            sql("big", "select * from orders", checks=[{"type": "row_count", "min": 1000}]),
            sql("after_big", "select count(*) as n from big"),
        ],
        files={"data/orders.csv": _orders_csv()},
    )
    first = lockgate.run(root)
    second = lockgate.run(root, select=["orders"], full_refresh=True)
    return Shop(root, load_project(root), [first.run_id, second.run_id])


def state_of(shop: Shop) -> StateStore:
    return StateStore.open(shop.project.state_url)


@pytest.fixture
def local(shop: Shop) -> Iterator[TestClient]:
    """The dashboard on localhost without tokens: the local user is admin."""
    with TestClient(create_app(shop.project, auth_required=False)) as c:
        yield c


@pytest.fixture
def secured(shop: Shop) -> Iterator[TestClient]:
    """The dashboard with authentication required."""
    with TestClient(create_app(shop.project, auth_required=True)) as c:
        yield c
