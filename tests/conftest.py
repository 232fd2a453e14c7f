"""Shared fixtures. Service-backed tests skip when the service is unreachable, unless
``LOCKGATE_REQUIRE_SERVICES=1`` (CI), where unreachable is a failure."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

REQUIRE_SERVICES = os.environ.get("LOCKGATE_REQUIRE_SERVICES") == "1"
PG_HOST, PG_PORT = "127.0.0.1", 5432
MYSQL_HOST, MYSQL_PORT = "127.0.0.1", 3306


#: tests measured slow (``make slow-list`` rebuilds it; see tests/tier.py): marked ``slow`` here
#: so ``make test-fast`` (``-m "not slow"``) stays under a minute
SLOW_TESTS = frozenset(Path(__file__).with_name("slow_tests.txt").read_text().split())


#: the slowest tests of a full run (seconds), see tests/heavy_tests.txt: scheduled first
HEAVY_TESTS = {
    nodeid: float(seconds)
    for seconds, nodeid in (
        line.split(" ", 1)
        for line in Path(__file__).with_name("heavy_tests.txt").read_text().splitlines()
        if line and not line.startswith("#")
    )
}


@pytest.hookimpl(tryfirst=True)  # before ``-m`` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.nodeid.split("[", 1)[0] in SLOW_TESTS:
            item.add_marker(pytest.mark.slow)
    # Heaviest first (longest-processing-time-first scheduling): with ``--dist load
    # --maxschedchunk 1`` (make test) a worker takes the next test when it is free, so the
    # long ones start at once and the short ones fill in until both workers end together,
    # instead of a kill -9 sweep collected last running alone at the end. The rest keep
    # their collection order; the order is the same on every xdist worker.
    items.sort(key=lambda item: -HEAVY_TESTS.get(item.nodeid, 0.0))


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    if _reachable(host, port):
        return
    msg = f"{name} is not reachable at {host}:{port}"
    if REQUIRE_SERVICES:
        pytest.fail(msg + " and LOCKGATE_REQUIRE_SERVICES=1", pytrace=False)
    pytest.skip(msg + " (set LOCKGATE_REQUIRE_SERVICES=1 to make this a failure)")


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database on the local service, dropped afterwards."""
    require_service("PostgreSQL", PG_HOST, PG_PORT)
    import psycopg

    dbname = "lg_test_" + uuid.uuid4().hex[:12]
    admin = f"postgresql://postgres@{PG_HOST}:{PG_PORT}/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{dbname}"')
    try:
        yield f"postgresql+psycopg://postgres@{PG_HOST}:{PG_PORT}/{dbname}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')


@pytest.fixture
def mysql_url() -> Iterator[str]:
    """A fresh, empty MariaDB/MySQL database on the local service, dropped afterwards."""
    require_service("MariaDB", MYSQL_HOST, MYSQL_PORT)
    pymysql = pytest.importorskip("pymysql")
    dbname = "lg_test_" + uuid.uuid4().hex[:12]
    conn = pymysql.connect(host=MYSQL_HOST, port=MYSQL_PORT, user="root", autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{dbname}`")
        yield f"mysql://root@{MYSQL_HOST}:{MYSQL_PORT}/{dbname}"
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{dbname}`")
        conn.close()
