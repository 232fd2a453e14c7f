"""A PostgreSQL cluster of the tests' own with ``wal_level=logical`` (the shared service runs
with ``replica``): ``initdb`` + ``pg_ctl`` from the installed binaries on a free port, in a
temporary folder the ``postgres`` user can read, started once per session and stopped after.
Skipped with the reason when the binaries are missing — a failure under
``LOCKGATE_REQUIRE_SERVICES=1``."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REQUIRE_SERVICES
from tests.run.helpers import make_project

psycopg = pytest.importorskip("psycopg")


def _unavailable(msg: str) -> None:
    if REQUIRE_SERVICES:
        pytest.fail(msg + " and LOCKGATE_REQUIRE_SERVICES=1", pytrace=False)
    pytest.skip(msg + " (set LOCKGATE_REQUIRE_SERVICES=1 to make this a failure)")


def _bindir() -> Path | None:
    for cand in [
        os.environ.get("LOCKGATE_PG_BINDIR", ""),
        *sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True),
    ]:
        if cand and (Path(cand) / "initdb").exists() and (Path(cand) / "pg_ctl").exists():
            return Path(cand)
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_postgres(cmd: list[str]) -> list[str]:
    """initdb refuses to run as root: run the server binaries as the postgres user then."""
    if os.geteuid() != 0:
        return cmd
    runuser = shutil.which("runuser")
    if runuser is None:
        _unavailable("running as root without runuser: cannot start a PostgreSQL cluster")
    return [str(runuser), "-u", "postgres", "--", *cmd]


@pytest.fixture(scope="session")
def logical_pg() -> Iterator[str]:
    """URL of the ``postgres`` database of a private cluster with wal_level=logical."""
    bindir = _bindir()
    if bindir is None:
        _unavailable("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    assert bindir is not None
    tmp = Path(tempfile.mkdtemp(prefix="lg_logical_pg_"))
    data = tmp / "data"
    if os.geteuid() == 0:
        shutil.chown(tmp, "postgres")
    os.chmod(tmp, 0o755)
    port = _free_port()
    run = lambda cmd: subprocess.run(  # noqa: E731
        _as_postgres(cmd), check=True, capture_output=True, text=True
    )
    try:
        run(
            [
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
                "-E",
                "UTF8",
            ]
        )
        opts = (
            f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={tmp} "
            "-c wal_level=logical -c max_replication_slots=64 -c max_wal_senders=64 "
            "-c fsync=off -c full_page_writes=off"
        )
        run(
            [
                str(bindir / "pg_ctl"),
                "-D",
                str(data),
                "-o",
                opts,
                "-l",
                str(tmp / "log"),
                "-w",
                "start",
            ]
        )
    except subprocess.CalledProcessError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        _unavailable(f"cannot start a PostgreSQL cluster: {e.stderr or e.stdout}")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            _as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
            capture_output=True,
        )
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
def cdc_url(logical_pg: str) -> Iterator[str]:
    """A fresh database on the logical cluster (its slots dropped, then the database)."""
    name = "cdc_" + uuid.uuid4().hex[:10]
    with psycopg.connect(logical_pg, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    try:
        yield logical_pg.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(logical_pg, autocommit=True) as c:
            for (slot,) in c.execute(
                "SELECT slot_name FROM pg_replication_slots WHERE database = %s", (name,)
            ).fetchall():
                c.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def src(cdc_url: str) -> Iterator[Any]:
    with psycopg.connect(cdc_url, autocommit=True) as conn:
        yield conn


def cdc_project(
    root: Path,
    tables: dict[str, list[str]],
    *,
    slot_prefix: str,
    checks: list[dict[str, Any]] | None = None,
    **source: Any,
) -> Path:
    """A project with one postgres_cdc dataset per table (name → key columns); the slots
    are named ``<slot_prefix>_<table>`` (slot names are cluster-wide)."""
    datasets = [
        {
            "name": t,
            "source": {
                "type": "postgres_cdc",
                "connection": "src",
                "table": f"public.{t}",
                "slot": f"{slot_prefix}_{t}",
                **source,
            },
            "write": {"mode": "merge", "keys": keys},
            **({"checks": checks} if checks else {}),
        }
        for t, keys in tables.items()
    ]
    config = {
        "connections": {"src": {"type": "postgres", "url": "${LG_CDC_URL}"}},
        "defaults": {"gate": "quarantine"},
    }
    return make_project(root, datasets, config=config)
