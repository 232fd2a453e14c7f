"""Exactly once under ``kill -9``: a randomized DML workload (inserts, updates, primary-key
changes, deletes, large TOASTed text left unchanged by updates, transactions spanning
tables, truncates) consumed by ``lockgate run`` subprocesses that kill themselves at
deterministic crash points (``LOCKGATE_CRASH_AT``: mid-snapshot, between decode and commit,
between the quarantine's and the dataset's commits, between commit and slot advance, before
the state store records the step) — no sleeps, no timing.

At the end every Delta table equals its source table row for row, every commit's
``cdc:<slot>`` position is strictly greater than the one before (no batch applied twice),
no quarantined change is there twice, and each slot's confirmed LSN equals its table's."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from deltalake import DeltaTable

from lockgate.sources._pgoutput import lsn_int
from tests.cdc.conftest import cdc_project

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

TABLES = {"acct": ["id"], "ledger": ["id"], "signup": ["id"]}
DDL = """
CREATE TABLE acct (id int PRIMARY KEY, owner text NOT NULL, bal int NOT NULL, note text);
CREATE TABLE ledger (id bigint PRIMARY KEY, acct_id int, amount int, memo text);
CREATE TABLE signup (id int PRIMARY KEY, age int);
"""
#: signup rows with age > 150 fail the check: quarantined (with their LSN), never published
CHECKS = [{"type": "between", "column": "age", "min": 0, "max": 150}]
PLAIN = {
    "acct": ["id", "owner", "bal", "note"],
    "ledger": ["id", "acct_id", "amount", "memo"],
    "signup": ["id", "age"],
}


class Workload:
    """Random transactions over the three tables, reproducible from the seed."""

    def __init__(self, src: Any, seed: int) -> None:
        self.src, self.rnd = src, random.Random(seed)
        self.acct: set[int] = set()
        self.ledger: set[int] = set()
        self.next_id = 1
        self.signups = 0

    def big(self) -> str:
        # incompressible text > 2 kB: stored out of line (TOAST)
        return "".join(f"{self.rnd.getrandbits(64):016x}" for _ in range(200))

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id

    def seed_rows(self) -> None:
        for _ in range(60):
            self.insert_acct()
        for _ in range(40):
            self.insert_ledger()

    def insert_acct(self) -> None:
        i = self.new_id()
        note = self.big() if self.rnd.random() < 0.3 else None
        self.src.execute(
            "INSERT INTO acct VALUES (%s, %s, %s, %s)", (i, f"o{i}", self.rnd.randint(0, 100), note)
        )
        self.acct.add(i)

    def insert_ledger(self) -> None:
        i = self.new_id()
        memo = self.big() if self.rnd.random() < 0.2 else f"m{i}"
        acct = self.rnd.choice(sorted(self.acct)) if self.acct else None
        self.src.execute(
            "INSERT INTO ledger VALUES (%s, %s, %s, %s)", (i, acct, self.rnd.randint(-50, 50), memo)
        )
        self.ledger.add(i)

    def one_change(self) -> None:
        r = self.rnd.random()
        if r < 0.2 or not self.acct:
            self.insert_acct()
        elif r < 0.45:  # an update that leaves the TOASTed note unchanged
            i = self.rnd.choice(sorted(self.acct))
            self.src.execute(
                "UPDATE acct SET bal = bal + %s WHERE id = %s", (self.rnd.randint(1, 9), i)
            )
        elif r < 0.55:  # a primary-key change (the note travels as unchanged TOAST)
            old = self.rnd.choice(sorted(self.acct))
            new = self.new_id()
            self.src.execute("UPDATE acct SET id = %s, bal = bal - 1 WHERE id = %s", (new, old))
            self.acct.discard(old)
            self.acct.add(new)
        elif r < 0.62:
            i = self.rnd.choice(sorted(self.acct))
            self.src.execute("UPDATE acct SET note = %s WHERE id = %s", (self.big(), i))
        elif r < 0.72:
            i = self.rnd.choice(sorted(self.acct))
            self.src.execute("DELETE FROM acct WHERE id = %s", (i,))
            self.acct.discard(i)
        elif r < 0.85:
            self.insert_ledger()
        elif r < 0.92 and self.ledger:
            i = self.rnd.choice(sorted(self.ledger))
            self.src.execute("UPDATE ledger SET amount = amount * 2 WHERE id = %s", (i,))
        elif self.ledger:
            i = self.rnd.choice(sorted(self.ledger))
            self.src.execute("DELETE FROM ledger WHERE id = %s", (i,))
            self.ledger.discard(i)
        if self.rnd.random() < 0.15:
            self.signups += 1
            age = 999 if self.rnd.random() < 0.3 else self.rnd.randint(1, 99)
            self.src.execute("INSERT INTO signup VALUES (%s, %s)", (self.new_id(), age))

    def round(self, transactions: int) -> None:
        for _ in range(transactions):
            with self.src.transaction():  # several changes, often over several tables
                for _ in range(self.rnd.randint(1, 6)):
                    self.one_change()
                if self.rnd.random() < 0.04:
                    self.src.execute("TRUNCATE ledger")
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

    monkeypatch.setenv("LG_CDC_URL", url)
    results = drain(lambda refresh: run(root, max_workers=1, full_refresh=refresh))
    assert results[-1].ok, [(s.dataset, s.status, s.error) for s in results[-1].steps]


def _positions_in_log(table: Path, app_id: str) -> list[int]:
    """The app transaction ``app_id`` of every commit that carries it, in commit order."""
    out = []
    for f in sorted((table / "_delta_log").glob("*.json")):
        for line in f.read_text().splitlines():
            txn = json.loads(line).get("txn")
            if txn and txn["appId"] == app_id:
                out.append(int(txn["version"]))
    return out


def _delta_rows(root: Path, name: str) -> list[tuple[Any, ...]]:
    t = DeltaTable(str(root / "warehouse" / name)).to_pyarrow_table(columns=PLAIN[name])
    return sorted(tuple(r[c] for c in PLAIN[name]) for r in t.to_pylist())


def test_kill_9_at_every_crash_point_keeps_delta_equal_to_source(
    src: Any, cdc_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prefix = "k" + uuid.uuid4().hex[:8]
    src.execute(DDL)
    work = Workload(src, seed=20261130)
    work.seed_rows()
    root = cdc_project(tmp_path / "p", TABLES, slot_prefix=prefix, max_changes=40)
    _add_checks(root / "datasets" / "main.yaml")
    env = {**os.environ, "LG_CDC_URL": cdc_url, "LOCKGATE_CRASH_LOG": str(tmp_path / "crash.log")}
    crashes = 0
    # round 0 crashes mid-snapshot (point 2: after 'run started'); later rounds walk the
    # points of a batch run: decoded / quarantine committed / committed / not acknowledged …
    # A crashed run is followed by the next round's DML and crash run; every third round a
    # clean run must bring every table level with its source.
    schedule = [2, 3, 4, 5, 6, 7, 8, 9, 12, 15]
    for rnd, crash_at in enumerate(schedule):
        if rnd:
            work.round(transactions=12)
        if _consume(root, env, crash_at) == -9:
            crashes += 1
        if rnd % 3 == 2 or rnd == len(schedule) - 1:
            _clean_run(root, monkeypatch, cdc_url)
            _assert_consistent(src, root, prefix)
    assert crashes >= 8  # the schedule did kill the consumer, at many different points
    log = (tmp_path / "crash.log").read_text()
    for point in (
        "mid-snapshot",
        "decoded, not committed",
        "committed, not acknowledged",
        "signup__quarantine: committed",
        "acct: committed",
    ):
        assert point in log, point


def _add_checks(ds: Path) -> None:
    import yaml

    doc = yaml.safe_load(ds.read_text())
    for d in doc["datasets"]:
        if d["name"] == "signup":
            d["checks"] = CHECKS
    ds.write_text(yaml.safe_dump(doc, sort_keys=False))


def _assert_consistent(src: Any, root: Path, prefix: str) -> None:
    for name in TABLES:
        cols = ", ".join(PLAIN[name])
        source = sorted(tuple(r) for r in src.execute(f"SELECT {cols} FROM {name}").fetchall())
        published = _delta_rows(root, name)
        if name == "signup":  # failing rows are quarantined, never published
            source = [r for r in source if r[1] <= 150]
            qpath = root / "warehouse" / "signup__quarantine"
            bad = []
            if qpath.exists():
                q = DeltaTable(str(qpath)).to_pyarrow_table().to_pylist()
                bad = [(r["id"], r["_lg_lsn"]) for r in q]
            assert len(bad) == len(set(bad)), "a quarantined change was written twice"
            in_source = {r[0] for r in src.execute("SELECT id FROM signup WHERE age > 150")}
            assert {i for i, _ in bad} == in_source
            assert all(lsn is not None for _, lsn in bad)
        assert published == source, f"{name}: Delta differs from the source"
        slot = f"{prefix}_{name}"
        positions = _positions_in_log(root / "warehouse" / name, "cdc:" + slot)
        assert positions == sorted(set(positions)), f"{name}: a batch was applied twice"
        row = src.execute(
            "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = %s",
            (slot,),
        ).fetchone()
        assert lsn_int(row[0]) == positions[-1], f"{name}: slot and table disagree"
