"""Change data capture from MariaDB (#9, ``mysql_cdc``): binlog decode rate and end-to-end
changes/s into Delta (batch mode), in CPU seconds of this process (the machine is shared),
against a private ``mariadbd --log-bin --binlog-format=ROW`` started here (removed after).

    .venv/bin/python benchmarks/mysql_cdc_bench.py [--changes 100000]

Goals (issue #9, stated for PostgreSQL): ≥ 200k changes/s decoded and ≥ 100k changes/s end to
end on one core. The binlog's row images are decoded by the ``mysql-replication`` library
(pure Python), which bounds both.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pymysql
import yaml
from deltalake import DeltaTable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import lockgate
from lockgate.runloop.follow import drain
from lockgate.sources._binlog import TablePlan, read

DDL = (
    "CREATE TABLE orders (id bigint PRIMARY KEY, customer int, status varchar(20), "
    "amount decimal(12,2), updated_at datetime(6))"
)


def start_server() -> tuple[int, Path, subprocess.Popen[bytes]]:
    tmp = Path(tempfile.mkdtemp(prefix="lg_my_bench_"))
    user = ["--user=root"] if os.geteuid() == 0 else []
    subprocess.run(
        [
            "mariadb-install-db",
            "--no-defaults",
            f"--datadir={tmp / 'd'}",
            "--skip-test-db",
            "--auth-root-authentication-method=normal",
            *user,
        ],
        check=True,
        capture_output=True,
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    proc = subprocess.Popen(
        [
            "mariadbd",
            "--no-defaults",
            f"--datadir={tmp / 'd'}",
            f"--port={port}",
            "--bind-address=127.0.0.1",
            f"--socket={tmp / 'sock'}",
            f"--log-error={tmp / 'log'}",
            f"--log-bin={tmp / 'd' / 'binlog'}",
            "--binlog-format=ROW",
            "--server-id=1",
            "--binlog-row-metadata=FULL",
            "--innodb-buffer-pool-size=256M",
            *user,
        ],
    )
    for _ in range(600):
        try:
            pymysql.connect(host="127.0.0.1", port=port, user="root").close()
            break
        except pymysql.err.OperationalError:
            time.sleep(0.1)
    return port, tmp, proc


def workload(conn: pymysql.connections.Connection, n: int) -> tuple[str, int]:
    """n/2 inserts then n/2 updates, in transactions of 10,000 rows; the binlog position
    before them."""
    with conn.cursor() as cur:
        cur.execute("SHOW MASTER STATUS")
        file, pos = cur.fetchone()[:2]
        cur.execute("SET SESSION max_recursive_iterations = 100000000")
        half = n // 2
        for lo in range(0, half, 10_000):
            hi = min(lo + 10_000, half)
            cur.execute(
                f"INSERT INTO orders WITH RECURSIVE g(x) AS (SELECT {lo + 1} UNION ALL "
                f"SELECT x + 1 FROM g WHERE x < {hi}) "
                "SELECT x, x % 1000, 'placed', x * 0.01, now(6) FROM g"
            )
        for lo in range(0, half, 10_000):
            cur.execute(
                "UPDATE orders SET status = 'shipped', amount = amount + 1 "
                f"WHERE id BETWEEN {lo + 1} AND {min(lo + 10_000, half)}"
            )
    return str(file), int(pos)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--changes", type=int, default=100_000)
    ap.add_argument("--profile", action="store_true", help="cProfile the decode, print the top")
    args = ap.parse_args()
    n = args.changes
    print("load:", os.getloadavg(), flush=True)
    port, tmp, proc = start_server()
    try:
        conn = pymysql.connect(host="127.0.0.1", port=port, user="root", autocommit=True)
        conn.cursor().execute("CREATE DATABASE bench")
        conn.select_db("bench")
        conn.cursor().execute(DDL)
        # decode: the binlog of the workload into a batch (no Delta)
        file, pos = workload(conn, n)
        plan = TablePlan(
            "bench",
            "orders",
            ("id", "customer", "status", "amount", "updated_at"),
            ("bigint", "int", "varchar(20)", "decimal(12,2)", "datetime(6)"),
            ("id",),
        )
        settings = {"host": "127.0.0.1", "port": port, "user": "root", "password": ""}
        # modules imported before the clock starts (once per process; a lockgate run has
        # pyarrow loaded anyway)
        import pyarrow
        import pymysqlreplication.binlogstream
        import pymysqlreplication.row_event  # noqa: F401

        pyarrow.array(["x"], pyarrow.string())  # its first conversion imports more

        if args.profile:
            import cProfile

            prof = cProfile.Profile()
            prof.enable()
        c0, t0 = time.process_time(), time.perf_counter()
        got = read(
            settings,
            plan,
            log_file=file,
            log_pos=pos,
            applied=None,
            max_changes=10**12,
            server_id=4242,
        )
        cpu, wall = time.process_time() - c0, time.perf_counter() - t0
        if args.profile:
            import pstats

            prof.disable()
            pstats.Stats(prof).sort_stats("tottime").print_stats(14)
        assert got.batch.decoded == n, got.batch.decoded
        print(f"decode: {n} changes, {cpu:.2f} CPU s ({n / cpu:,.0f}/CPU s), {wall:.2f} s wall")
        # end to end: snapshot of the table as it is, then n more changes through lockgate
        conn.cursor().execute("DROP TABLE orders")
        conn.cursor().execute(DDL)
        root = Path(tmp) / "proj"
        (root / "datasets").mkdir(parents=True)
        (root / "lockgate.yaml").write_text(
            yaml.safe_dump(
                {
                    "name": "mybench",
                    "connections": {
                        "src": {"type": "mysql", "url": f"mysql://root@127.0.0.1:{port}/bench"}
                    },
                }
            )
        )
        (root / "datasets" / "main.yaml").write_text(
            yaml.safe_dump(
                {
                    "datasets": [
                        {
                            "name": "orders",
                            "source": {
                                "type": "mysql_cdc",
                                "connection": "src",
                                "table": "bench.orders",
                                "max_changes": n,
                            },
                            "write": {"mode": "merge", "keys": ["id"]},
                            "checks": [{"type": "not_null", "column": "customer"}],
                        }
                    ]
                }
            )
        )
        lockgate.run(root)  # the (empty) snapshot and its position
        workload(conn, n)
        if args.profile:
            import cProfile
            import threading

            prof = cProfile.Profile()
            threading.setprofile(lambda *_: prof.enable())  # the run's worker threads too
            prof.enable()
        c0, t0 = time.process_time(), time.perf_counter()
        results = drain(lambda refresh: lockgate.run(root, full_refresh=refresh))
        cpu, wall = time.process_time() - c0, time.perf_counter() - t0
        if args.profile:
            import pstats

            prof.disable()
            threading.setprofile(None)
            pstats.Stats(prof).sort_stats(os.environ.get("SORT", "cumulative")).print_stats(
                int(os.environ.get("TOP", "40"))
            )
        rows = DeltaTable(str(root / "warehouse" / "orders")).to_pyarrow_table(columns=["id"])
        assert rows.num_rows == n // 2
        print(
            f"end to end: {n} changes, {len(results)} runs, {cpu:.2f} CPU s "
            f"({n / cpu:,.0f}/CPU s), {wall:.2f} s wall ({n / wall:,.0f}/s)"
        )
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)
        print("load:", os.getloadavg(), flush=True)


if __name__ == "__main__":
    main()
