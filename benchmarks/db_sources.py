"""Live database sources (#8): N rows from PostgreSQL / MariaDB into a published Delta
table through the whole run loop (stage → audit of 2 checks → publish), rows/s and peak RSS.

    .venv/bin/python benchmarks/db_sources.py --rows 1000000 [--db postgres|mysql|both]
        [--partitions N]    # partition: {column: id, partitions: N} (parallel ranges)

Each measurement runs in its own process (peak RSS is that process's ``ru_maxrss``); the
table is created once in a scratch database (dropped afterwards). Columns: id bigint,
amount numeric(12,2), at timestamp(tz), note text, flag boolean.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import yaml

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
MY = {"host": "127.0.0.1", "port": 3306, "user": "root"}


def _create_pg(rows: int) -> tuple[str, str]:
    import psycopg

    db = "lg_bench_" + uuid.uuid4().hex[:8]
    with psycopg.connect(PG_ADMIN, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{db}"')
    url = f"postgresql://postgres@127.0.0.1:5432/{db}"
    with psycopg.connect(url, autocommit=True) as c:
        c.execute(
            "CREATE TABLE bench AS SELECT g::bigint AS id, ((g % 100000) / 100.0)::numeric(12,2)"
            " AS amount, timestamptz '2024-01-01' + g * interval '1 second' AS at,"
            " 'note ' || g AS note, g % 2 = 0 AS flag FROM generate_series(1, "
            + str(int(rows))
            + ") g"
        )
    return db, url


def _create_mysql(rows: int) -> tuple[str, str]:
    import pymysql

    db = "lg_bench_" + uuid.uuid4().hex[:8]
    conn = pymysql.connect(**MY, autocommit=True)  # type: ignore[arg-type]
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{db}`")
        cur.execute(f"USE `{db}`")
        cur.execute(
            f"CREATE TABLE `{db}`.bench (id bigint, amount decimal(12,2), at datetime,"
            " note varchar(40), flag tinyint(1))"
        )
        cur.execute(
            f"INSERT INTO `{db}`.bench SELECT seq, (seq % 100000) / 100, "
            "'2024-01-01' + INTERVAL seq SECOND, CONCAT('note ', seq), seq % 2 "
            f"FROM seq_1_to_{rows}"
        )
    conn.close()
    return db, f"mysql://root@127.0.0.1:3306/{db}"


def _drop(kind: str, db: str) -> None:
    if kind == "postgres":
        import psycopg

        with psycopg.connect(PG_ADMIN, autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
    else:
        import pymysql

        conn = pymysql.connect(**MY, autocommit=True)  # type: ignore[arg-type]
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{db}`")
        conn.close()


def _project(root: Path, kind: str, url: str, partitions: int = 0) -> None:
    root.mkdir(parents=True)
    cfg = {"name": "bench", "connections": {"db": {"type": kind, "url": url}}}
    (root / "lockgate.yaml").write_text(yaml.safe_dump(cfg))
    (root / "datasets").mkdir()
    source: dict[str, object] = {"type": kind, "connection": "db", "table": "bench"}
    if partitions:
        source["partition"] = {"column": "id", "partitions": partitions}
    ds = {
        "name": "bench",
        "source": source,
        "checks": [{"type": "not_null", "column": "id"}, {"type": "unique", "column": "id"}],
    }
    (root / "datasets" / "main.yaml").write_text(yaml.safe_dump({"datasets": [ds]}))


def _child(root: str) -> None:
    import lockgate

    t0 = time.perf_counter()
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    result = lockgate.run(root)
    seconds = time.perf_counter() - t0
    ru = resource.getrusage(resource.RUSAGE_SELF)
    cpu = ru.ru_utime + ru.ru_stime - ru0.ru_utime - ru0.ru_stime
    step = result.steps[0]
    rss_mb = ru.ru_maxrss / 1024
    out = {"ok": result.ok, "rows": step.rows_out, "s": seconds, "cpu_s": round(cpu, 2)}
    print(json.dumps({**out, "rss_mb": rss_mb, "warnings": step.warnings}))


def measure(kind: str, rows: int, partitions: int = 0) -> dict[str, object]:
    db, url = _create_pg(rows) if kind == "postgres" else _create_mysql(rows)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp) / "p"
            _project(root, kind, url, partitions)
            out = subprocess.run(
                [sys.executable, __file__, "--child", str(root)],
                check=True,
                capture_output=True,
                text=True,
                env={**os.environ},
            )
            res: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        _drop(kind, db)
    res["db"] = kind
    res["partitions"] = partitions
    res["rows_per_s"] = round(int(str(res["rows"])) / float(str(res["s"])))
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--db", choices=["postgres", "mysql", "both"], default="both")
    ap.add_argument("--partitions", type=int, default=0)
    ap.add_argument("--child")
    args = ap.parse_args()
    if args.child:
        _child(args.child)
        return
    for kind in ["postgres", "mysql"] if args.db == "both" else [args.db]:
        print(json.dumps(measure(kind, args.rows, args.partitions)))


if __name__ == "__main__":
    main()
