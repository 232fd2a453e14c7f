"""The shop example's feature store end to end: the weekly churn features are published by a
real run, a training set over the generated labels equals a brute-force answer computed in
Python from the published tables (not from the feature dataset's SQL), materialisation and
the Feast-compatible server return the latest vectors (through the README's own ``curl``
request), and an unchanged re-run of the whole example still starts neither DuckDB, pyarrow
nor numpy."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import urllib.request
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import ModuleType
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

import lockgate
from lockgate.features.offline import training_set
from lockgate.project import Project, load_project
from tests.examples.conftest import SHOP

pytestmark = pytest.mark.slow

ORDERS = 3000
WEEK = timedelta(days=7)


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory, gen: ModuleType) -> Project:
    """A copy of examples/shop (definitions only) with generated data, run once."""
    root = tmp_path_factory.mktemp("shop")
    shutil.copy(SHOP / "lockgate.yaml", root / "lockgate.yaml")
    shutil.copytree(SHOP / "datasets", root / "datasets")
    gen.generate(root / "data", ORDERS, chunk_rows=1000)
    project = load_project(root)
    result = lockgate.run(project)
    assert result.status == "success", [(s.dataset, s.status, s.error) for s in result.steps]
    return project


def _rows(project: Project, name: str) -> list[dict[str, Any]]:
    table = lockgate.read(project, name, as_="arrow")
    assert isinstance(table, pa.Table)
    return table.to_pylist()


@dataclass(frozen=True)
class Snapshot:
    spend_30d: float
    orders_30d: int
    tickets_90d: int


def brute_force_snapshots(project: Project) -> dict[int, dict[datetime, Snapshot]]:
    """customer → snapshot time → features, from the published silver/bronze rows, the
    definitions of ``churn_history.sql`` written out in plain Python."""
    recorded: dict[int, datetime] = {}
    for r in _rows(project, "raw_orders"):
        if r["order_id"] is not None and r["updated_at"] is not None:
            seen = recorded.get(r["order_id"])
            recorded[r["order_id"]] = (
                r["updated_at"] if seen is None else min(seen, r["updated_at"])
            )
    orders = [
        (o["customer_id"], o["ordered_at"], o["amount"], recorded[o["order_id"]])
        for o in _rows(project, "orders")
        if o["order_id"] in recorded
    ]
    first = min(o[3] for o in orders)
    monday = datetime(first.year, first.month, first.day) - timedelta(days=first.weekday())
    times = []
    at = monday + WEEK
    while at <= max(o[3] for o in orders):
        times.append(at)
        at += WEEK
    by_customer: dict[int, list[tuple[int, datetime, Any, datetime]]] = defaultdict(list)
    for o in orders:
        by_customer[o[0]].append(o)
    tickets: dict[int, list[datetime]] = defaultdict(list)
    for t in _rows(project, "tickets"):
        tickets[t["customer_id"]].append(t["opened_at"])
    out: dict[int, dict[datetime, Snapshot]] = {}
    for c in _rows(project, "customers"):
        cid, snaps = c["customer_id"], {}
        for s in times:
            if not c["signup_at"] < s:
                continue
            window = [
                o for o in by_customer[cid] if s - timedelta(days=30) <= o[1] < s and o[3] < s
            ]
            snaps[s] = Snapshot(
                spend_30d=float(sum((o[2] for o in window), start=0)),
                orders_30d=len(window),
                tickets_90d=sum(1 for t in tickets[cid] if s - timedelta(days=90) <= t < s),
            )
        out[cid] = snaps
    return out


def known_at(snaps: dict[datetime, Snapshot], t: datetime | None) -> Snapshot | None:
    """The snapshot a training row at ``t`` may see: the newest with snapshot_at <= t (the
    view's event and created timestamp are both snapshot_at; no TTL)."""
    if t is None:
        return None
    seen = [s for s in snaps if s <= t]
    return snaps[max(seen)] if seen else None


def test_the_feature_dataset_is_the_brute_force_history(shop: Project) -> None:
    expected = brute_force_snapshots(shop)
    got = {
        (r["customer_id"], r["snapshot_at"]): Snapshot(
            r["spend_30d"], r["orders_30d"], r["tickets_90d"]
        )
        for r in _rows(shop, "churn_feature_history")
    }
    want = {(c, s): v for c, snaps in expected.items() for s, v in snaps.items()}
    assert len(want) > 1000  # ~150 customers x 12 weeks: the comparison means something
    assert got.keys() == want.keys()
    for k, v in want.items():
        assert got[k].orders_30d == v.orders_30d and got[k].tickets_90d == v.tickets_90d, k
        assert got[k].spend_30d == pytest.approx(v.spend_30d, rel=1e-12, abs=1e-9), k


def _labels(project: Project, extra: list[tuple[int | None, datetime | None, bool]]) -> pa.Table:
    table = pacsv.read_csv(project.root / "data" / "labels.csv")
    more = pa.table(
        {
            "customer_id": pa.array([e[0] for e in extra], pa.int64()),
            "event_timestamp": pa.array([e[1] for e in extra], table.schema.field(1).type),
            "churned_within_30d": pa.array([e[2] for e in extra], pa.bool_()),
        }
    )
    return pa.concat_tables([table, more.cast(table.schema)])


def test_the_training_set_equals_the_brute_force_answer(shop: Project) -> None:
    snapshots = brute_force_snapshots(shop)
    some = next(c for c, s in snapshots.items() if len(s) > 2)
    first, second = sorted(snapshots[some])[:2]
    extra = [
        (some, first, True),  # exactly at a snapshot: it is known (<=)
        (some, first - timedelta(microseconds=1), False),  # just before the first: NULL
        (some, second - timedelta(seconds=1), True),  # the first still holds
        (some, second, True),  # duplicate entity rows stay, each with its answer
        (some, second, True),
        (10**9, second, False),  # an unknown customer keeps its row, NULL features
        (None, second, False),  # a NULL key never matches
        (some, None, False),  # a NULL time never matches
        (some, datetime(2031, 1, 1), True),  # long after the data: the newest snapshot
    ]
    labels = _labels(shop, extra)
    out = training_set(shop, "churn_model", labels)
    n = labels.num_rows
    assert out.num_rows == n
    # the caller's rows and columns, in the caller's order, untouched
    assert out.select(labels.column_names).to_pylist() == labels.to_pylist()
    assert out.column_names == [*labels.column_names, "spend_30d", "orders_30d", "tickets_90d"]
    matched = 0
    for i, row in enumerate(out.to_pylist()):
        want = known_at(snapshots.get(row["customer_id"], {}), row["event_timestamp"])
        if want is None:
            assert (row["spend_30d"], row["orders_30d"], row["tickets_90d"]) == (None,) * 3, i
            continue
        matched += 1
        assert row["orders_30d"] == want.orders_30d and row["tickets_90d"] == want.tickets_90d, i
        assert row["spend_30d"] == pytest.approx(want.spend_30d, rel=1e-12, abs=1e-9), i
    assert n - 20 > matched > n // 2  # most labels see a snapshot, some do not
    # and the set is recorded: a replay gives the same bytes
    from lockgate.features.recorded import ID_KEY, replay_training_set

    again = replay_training_set(shop, (out.schema.metadata or {})[ID_KEY].decode())
    assert again.identical and again.table.equals(out)


def _readme_curl() -> dict[str, Any]:
    text = (SHOP / "README.md").read_text()
    found = re.search(r"curl -s localhost:6566/get-online-features -d '([^']+)'", text)
    assert found, "the shop README shows one curl request"
    body: dict[str, Any] = json.loads(found.group(1))
    return body


@pytest.fixture
def server(shop: Project) -> Iterator[str]:
    """``lockgate features serve --port 0`` on the example; yields its base URL."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cli = [sys.executable, "-m", "lockgate", "features", "serve", "--port", "0"]
    proc = subprocess.Popen(
        [*cli, "--project", str(shop.root)], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # printed once the socket listens
        found = re.search(r"listening on (http://\S+)", line)
        assert found, line
        yield found.group(1)
    finally:
        proc.kill()
        proc.wait()


def _post(url: str, body: dict[str, Any]) -> dict[str, Any]:
    req = urllib.request.Request(url, json.dumps(body).encode(), method="POST")
    with urllib.request.urlopen(req, timeout=60) as resp:
        out: dict[str, Any] = json.loads(resp.read())
        return out


def test_serve_answers_the_readme_request_with_the_materialised_vectors(
    shop: Project, server: str
) -> None:
    cli = [sys.executable, "-m", "lockgate", "features", "materialize", "--json"]
    done = subprocess.run(
        [*cli, "--project", str(shop.root)], capture_output=True, text=True, check=True
    )
    report = json.loads(done.stdout)
    customers = {r["customer_id"] for r in _rows(shop, "customers")}
    assert {v: r["written"] for v, r in report.items()} == {
        "customer_spend": len(customers),
        "customer_support": len(customers),
    }
    latest = {c: snaps[max(snaps)] for c, snaps in brute_force_snapshots(shop).items() if snaps}
    body = _readme_curl()
    asked = [*body["entities"]["customer_id"], 10**9]  # and one unknown customer
    out = _post(server + "/get-online-features", {**body, "entities": {"customer_id": asked}})
    names = out["metadata"]["feature_names"]
    assert names[0] == "customer_id"
    by_name = dict(zip(names, out["results"], strict=True))
    assert by_name["customer_id"]["values"] == asked
    for name, result in by_name.items():
        if name == "customer_id":
            continue
        feature = name.split("__")[-1]
        for i, cid in enumerate(asked):
            if cid not in latest:
                assert (result["values"][i], result["statuses"][i]) == (None, "NOT_FOUND")
                continue
            want = getattr(latest[cid], feature)
            assert result["statuses"][i] == "PRESENT"
            assert result["values"][i] == pytest.approx(want, rel=1e-12, abs=1e-9), (name, cid)
    health = urllib.request.urlopen(server + "/health", timeout=60).read()
    assert json.loads(health) == {"status": "ok"}


def test_an_unchanged_re_run_of_the_example_starts_neither_duckdb_pyarrow_nor_numpy(
    shop: Project,
) -> None:
    root = str(shop.root)
    subprocess.run(  # remembers the dialect answers (the first run had no .lockgate/ yet)
        [sys.executable, "-m", "lockgate", "run", "--project", root],
        check=True,
        capture_output=True,
    )
    probe = (
        "import runpy, sys\n"
        f"sys.argv = ['lockgate', 'run', '--project', {root!r}]\n"
        "try:\n    runpy.run_module('lockgate', run_name='__main__')\n"
        "except SystemExit as e:\n    assert not e.code, e.code\n"
        "print('LOADED', sorted(m for m in ('duckdb', 'pyarrow', 'numpy') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "churn_feature_history: inputs unchanged" in out.stdout
    assert "LOADED []" in out.stdout, out.stdout[-2000:]
