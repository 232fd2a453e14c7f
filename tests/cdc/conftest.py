"""A PostgreSQL cluster of the tests' own with ``wal_level=logical`` (the shared service runs
with ``replica``): ``initdb`` + ``pg_ctl`` from the installed binaries on a free port, in a
temporary folder the ``postgres`` user can read, started once per session and stopped after.
Skipped with the reason when the binaries are missing — a failure under
``LOCKGATE_REQUIRE_SERVICES=1``."""

from __future__ import annotations

import contextlib
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


# ---- a MariaDB server of the tests' own, writing a row-format binlog ------------------------


def _mariadb_binaries() -> tuple[str, str] | None:
    server = shutil.which("mariadbd") or shutil.which("mariadbd", path="/usr/sbin:/usr/libexec")
    install = shutil.which("mariadb-install-db") or shutil.which("mysql_install_db")
    return (server, install) if server and install else None


def _wait_ready(proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
    """Until the server accepts a connection (or exits: its log says why)."""
    import time

    pymysql = pytest.importorskip("pymysql")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            _unavailable(f"mariadbd exited ({proc.returncode}): {log.read_text()[-2000:]}")
        try:
            pymysql.connect(host="127.0.0.1", port=port, user="root", connect_timeout=2).close()
            return
        except pymysql.err.OperationalError:
            time.sleep(0.1)  # polling for readiness, not racing: no result depends on it
    _unavailable(f"mariadbd did not start in 120 s: {log.read_text()[-2000:]}")


@pytest.fixture(scope="session")
def binlog_mariadb() -> Iterator[int]:
    """Port of a private ``mariadbd --log-bin --binlog-format=ROW --server-id=1`` (with
    ``binlog_row_metadata=FULL``), data in a temporary folder, stopped after the session."""
    with mariadb_server(1) as port:
        yield port


@contextlib.contextmanager
def mariadb_server(server_id: int, *extra: str) -> Iterator[int]:
    """A private ``mariadbd --log-bin`` (row format, full metadata) on a free port; its port."""
    found = _mariadb_binaries()
    if found is None:
        _unavailable("MariaDB server binaries (mariadbd, mariadb-install-db) are not installed")
    assert found is not None
    server, install = found
    tmp = Path(tempfile.mkdtemp(prefix="lg_binlog_my_"))
    data = tmp / "data"
    user = ["--user=root"] if os.geteuid() == 0 else []
    init = subprocess.run(
        [
            install,
            "--no-defaults",
            f"--datadir={data}",
            "--skip-test-db",
            "--auth-root-authentication-method=normal",
            *user,
        ],
        capture_output=True,
        text=True,
    )
    if init.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        _unavailable(f"mariadb-install-db failed: {init.stderr[-2000:] or init.stdout[-2000:]}")
    port = _free_port()
    log = tmp / "server.log"
    proc = subprocess.Popen(
        [
            server,
            "--no-defaults",
            f"--datadir={data}",
            f"--port={port}",
            "--bind-address=127.0.0.1",
            f"--socket={tmp / 'sock'}",
            f"--pid-file={tmp / 'pid'}",
            f"--log-error={log}",
            f"--log-bin={data / 'binlog'}",
            "--binlog-format=ROW",
            f"--server-id={server_id}",
            *extra,
            "--binlog-row-metadata=FULL",
            "--innodb-buffer-pool-size=64M",
            "--sync-binlog=0",
            "--skip-name-resolve",
            *user,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_ready(proc, port, log)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
def my_db(binlog_mariadb: int) -> Iterator[tuple[str, Any]]:
    """(URL, autocommit pymysql connection) of a fresh database on the binlog server."""
    import pymysql

    name = "cdc_" + uuid.uuid4().hex[:10]
    conn = pymysql.connect(
        host="127.0.0.1",
        port=binlog_mariadb,
        user="root",
        autocommit=True,
        init_command="SET time_zone = '+00:00'",
    )
    conn.cursor().execute(f"CREATE DATABASE `{name}`")
    conn.select_db(name)
    try:
        yield f"mysql://root@127.0.0.1:{binlog_mariadb}/{name}", conn
    finally:
        conn.cursor().execute(f"DROP DATABASE IF EXISTS `{name}`")
        conn.close()


def mysql_cdc_project(
    root: Path,
    db: str,
    tables: dict[str, list[str]],
    *,
    checks: dict[str, list[dict[str, Any]]] | None = None,
    **source: Any,
) -> Path:
    """A project with one mysql_cdc dataset per table of database ``db`` (name → keys)."""
    datasets = [
        {
            "name": t,
            "source": {"type": "mysql_cdc", "connection": "src", "table": f"{db}.{t}", **source},
            "write": {"mode": "merge", "keys": keys},
            **({"checks": checks[t]} if checks and t in checks else {}),
        }
        for t, keys in tables.items()
    ]
    config = {
        "connections": {"src": {"type": "mysql", "url": "${LG_CDC_MY_URL}"}},
        "defaults": {"gate": "quarantine"},
    }
    return make_project(root, datasets, config=config)
