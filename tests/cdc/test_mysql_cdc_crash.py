"""``mysql_cdc`` exactly once under ``kill -9``: a randomized DML workload on MariaDB
(inserts, updates, primary-key changes, deletes, transactions spanning tables, truncates,
rows failing a check) consumed by ``lockgate run`` subprocesses that kill themselves at
deterministic crash points (``LOCKGATE_CRASH_AT``: mid-snapshot, between decode and commit,
between the quarantine's and the dataset's commits, after the commit, before the state store
records the step) — no sleeps, no timing.

At the end every Delta table equals its source table row for row, every commit's
``cdc:<name>`` position is strictly greater than the one before (no batch applied twice) and
no quarantined change is there twice."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from deltalake import DeltaTable

from tests.cdc.conftest import mysql_cdc_project

pytestmark = [pytest.mark.mysql, pytest.mark.slow]

TABLES = {"acct": ["id"], "ledger": ["id"], "signup": ["id"]}
DDL = (
    "CREATE TABLE acct (id int PRIMARY KEY, owner varchar(40) NOT NULL, bal int NOT NULL, "
    "note text, flags bigint unsigned)",
    "CREATE TABLE ledger (id bigint PRIMARY KEY, acct_id int, amount decimal(12,2), memo text)",
    "CREATE TABLE signup (id int PRIMARY KEY, age int)",
)
#: signup rows with age > 150 fail the check: quarantined (with their position), never published
CHECKS = {"signup": [{"type": "between", "column": "age", "min": 0, "max": 150}]}
PLAIN = {
    "acct": ["id", "owner", "bal", "note", "flags"],
    "ledger": ["id", "acct_id", "amount", "memo"],
    "signup": ["id", "age"],
}


class Workload:
    """Random transactions over the three tables, reproducible from the seed."""

    def __init__(self, conn: Any, seed: int) -> None:
        self.conn, self.rnd = conn, random.Random(seed)
        self.acct: set[int] = set()
        self.ledger: set[int] = set()
        self.next_id = 1

    def sql(self, statement: str, args: tuple[Any, ...] = ()) -> None:
        with self.conn.cursor() as cur:
            cur.execute(statement, args)

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id

    def insert_acct(self) -> None:
        i = self.new_id()
        note = "n" * self.rnd.randint(0, 3000) if self.rnd.random() < 0.3 else None
        flags = self.rnd.choice([None, 0, 2**64 - 1, self.rnd.getrandbits(64)])
        self.sql(
            "INSERT INTO acct VALUES (%s, %s, %s, %s, %s)",
            (i, f"o{i}", self.rnd.randint(0, 100), note, flags),
        )
        self.acct.add(i)

    def insert_ledger(self) -> None:
        i = self.new_id()
        acct = self.rnd.choice(sorted(self.acct)) if self.acct else None
        amount = f"{self.rnd.randint(-99999, 99999) / 100:.2f}"
        self.sql("INSERT INTO ledger VALUES (%s, %s, %s, %s)", (i, acct, amount, f"m{i}"))
        self.ledger.add(i)

    def one_change(self) -> None:
        r = self.rnd.random()
        if r < 0.2 or not self.acct:
            self.insert_acct()
        elif r < 0.45:
            i = self.rnd.choice(sorted(self.acct))
            self.sql("UPDATE acct SET bal = bal + %s WHERE id = %s", (self.rnd.randint(1, 9), i))
        elif r < 0.55:  # a primary-key change
            old, new = self.rnd.choice(sorted(self.acct)), self.new_id()
            self.sql("UPDATE acct SET id = %s, bal = bal - 1 WHERE id = %s", (new, old))
            self.acct.discard(old)
            self.acct.add(new)
        elif r < 0.65:
            i = self.rnd.choice(sorted(self.acct))
            self.sql("DELETE FROM acct WHERE id = %s", (i,))
            self.acct.discard(i)
        elif r < 0.8:
            self.insert_ledger()
        elif r < 0.9 and self.ledger:
            i = self.rnd.choice(sorted(self.ledger))
            self.sql("UPDATE ledger SET amount = amount * 2, memo = NULL WHERE id = %s", (i,))
        elif self.ledger:
            i = self.rnd.choice(sorted(self.ledger))
            self.sql("DELETE FROM ledger WHERE id = %s", (i,))
            self.ledger.discard(i)
        if self.rnd.random() < 0.15:
            age = 999 if self.rnd.random() < 0.3 else self.rnd.randint(1, 99)
            self.sql("INSERT INTO signup VALUES (%s, %s)", (self.new_id(), age))

    def round(self, transactions: int) -> None:
        for _ in range(transactions):
            self.conn.begin()  # several changes, often over several tables
            for _ in range(self.rnd.randint(1, 6)):
                self.one_change()
            self.conn.commit()
            if self.rnd.random() < 0.05:  # TRUNCATE commits on its own in MySQL
                self.sql("TRUNCATE TABLE ledger")
                self.ledger.clear()
                for _ in range(self.rnd.randint(0, 3)):
                    self.insert_ledger()


def _consume(root: Path, env: dict[str, str], crash_at: int | None) -> int:
    e = dict(env)
    if crash_at is not None:
        e["LOCKGATE_CRASH_AT"] = str(crash_at)
    proc = subprocess.run(
        [sys.executable, "-m", "lockgate", "run", "-j", "1", "--json", "-p", str(root)],
        env=e,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if proc.returncode not in (0, -9):
        raise AssertionError(f"lockgate run failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc.returncode


def _clean_run(root: Path, monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    """The clean run after the crashes, in this process (as ``lockgate run``: drained until
    no step has more to read; exit 0 = the last run ok): it starts from what the killed
    runs left in Delta and in the source, so a fresh interpreter adds nothing."""
    from lockgate import run
    from lockgate.runloop.follow import drain

    monkeypatch.setenv("LG_CDC_MY_URL", url)
    results = drain(lambda refresh: run(root, max_workers=1, full_refresh=refresh))
    assert results[-1].ok, [(s.dataset, s.status, s.error) for s in results[-1].steps]


def _positions_in_log(table: Path, app_id: str) -> list[int]:
    out = []
    for f in sorted((table / "_delta_log").glob("*.json")):
        for line in f.read_text().splitlines():
            txn = json.loads(line).get("txn")
            if txn and txn["appId"] == app_id:
                out.append(int(txn["version"]))
    return out


def _norm(v: Any) -> Any:
    """bigint unsigned is DECIMAL(20,0) in Delta: compared as numbers."""
    return int(v) if isinstance(v, Decimal) and v == v.to_integral_value() else v


def _delta_rows(root: Path, name: str) -> list[tuple[Any, ...]]:
    t = DeltaTable(str(root / "warehouse" / name)).to_pyarrow_table(columns=PLAIN[name])
    return sorted(tuple(_norm(r[c]) for c in PLAIN[name]) for r in t.to_pylist())


def test_kill_9_at_every_crash_point_keeps_delta_equal_to_source(
    my_db: tuple[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, conn = my_db
    for statement in DDL:
        conn.cursor().execute(statement)
    work = Workload(conn, seed=20261130)
    for _ in range(40):
        work.insert_acct()
    for _ in range(30):
        work.insert_ledger()
    root = mysql_cdc_project(
        tmp_path / "p", url.rsplit("/", 1)[1], TABLES, checks=CHECKS, max_changes=25
    )
    env = {**os.environ, "LG_CDC_MY_URL": url, "LOCKGATE_CRASH_LOG": str(tmp_path / "crash.log")}
    crashes = 0
    # round 0 crashes mid-snapshot; later rounds walk the crash points of a batch run. A crashed
    # run is followed by the next round's DML and crash run; every third round a clean run
    # must bring every table level with its source.
    schedule = [2, 3, 4, 5, 6, 7, 8, 9, 12, 15]
    for rnd, crash_at in enumerate(schedule):
        if rnd:
            work.round(transactions=15)
        if _consume(root, env, crash_at) == -9:
            crashes += 1
        if rnd % 3 == 2 or rnd == len(schedule) - 1:
            _clean_run(root, monkeypatch, url)
            _assert_consistent(conn, root)
    assert crashes >= 8  # the schedule did kill the consumer, at many different points
    log = (tmp_path / "crash.log").read_text()
    for point in ("mid-snapshot", "decoded, not committed", "signup__quarantine: committed"):
        assert point in log, point


def _assert_consistent(conn: Any, root: Path) -> None:
    for name in TABLES:
        with conn.cursor() as cur:
            cur.execute(f"SELECT {', '.join(PLAIN[name])} FROM {name}")
            source = sorted(tuple(_norm(v) for v in r) for r in cur.fetchall())
        published = _delta_rows(root, name)
        if name == "signup":  # failing rows are quarantined, never published
            source = [r for r in source if r[1] <= 150]
            qpath = root / "warehouse" / "signup__quarantine"
            bad = []
            if qpath.exists():
                q = DeltaTable(str(qpath)).to_pyarrow_table().to_pylist()
                bad = [(r["id"], r["_lg_lsn"]) for r in q]
            assert len(bad) == len(set(bad)), "a quarantined change was written twice"
            with conn.cursor() as cur:
                cur.execute("SELECT id FROM signup WHERE age > 150")
                assert {i for i, _ in bad} == {r[0] for r in cur.fetchall()}
            assert all(lsn is not None for _, lsn in bad)
        assert published == source, f"{name}: Delta differs from the source"
        positions = _positions_in_log(root / "warehouse" / name, "cdc:lg_" + name)
        assert positions == sorted(set(positions)), f"{name}: a batch was applied twice"
