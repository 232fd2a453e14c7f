"""REST source (#8): N records from a local HTTP server (page-number pagination, 1,000 records
a page, 6 fields) into a published Delta table through the whole run loop, against a raw
httpx loop over the same server (GET every page + parse the JSON, nothing stored).

    .venv/bin/python benchmarks/rest_source.py --records 100000 1000000 [--repeats 3]

The server (stdlib ``ThreadingHTTPServer`` in this process, pages pre-serialised) runs in a
thread; each side is measured ``--repeats`` times, alternating (which side goes first
alternates too), and the medians compared. Both wall seconds and the process's CPU seconds
(``time.process_time``: client, server thread and DuckDB threads) are reported per side.
At 1M records the run loop's fixed cost (plan, state store, audit, Delta commit) is
amortised; at 100k it is a visible share of the total.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.sources.rest_server import Request, running

PAGE = 1000


def pages(n: int) -> list[bytes]:
    out = []
    for p in range(0, n, PAGE):
        recs = [
            {
                "id": i,
                "name": f"customer {i}",
                "amount": round(i * 0.37, 2),
                "active": i % 3 == 0,
                "created_at": f"2024-01-{1 + i % 28:02d}T10:{i % 60:02d}:00+00:00",
                "tags": ["a", "b"] if i % 5 == 0 else [],
            }
            for i in range(p, min(p + PAGE, n))
        ]
        out.append(json.dumps({"data": recs}).encode())
    out.append(json.dumps({"data": []}).encode())
    return out


def raw_httpx(url: str) -> tuple[float, float, int]:
    import httpx

    t0, c0 = time.perf_counter(), time.process_time()
    n = 0
    with httpx.Client() as client:
        page = 1
        while True:
            recs = client.get(url, params={"page": page}).json()["data"]
            if not recs:
                break
            n += len(recs)
            page += 1
    return time.perf_counter() - t0, time.process_time() - c0, n


def lockgate_run(url: str, tmp: Path, i: int) -> tuple[float, float, int]:
    import lockgate

    root = tmp / f"p{i}"
    (root / "datasets").mkdir(parents=True)
    (root / "lockgate.yaml").write_text(yaml.safe_dump({"name": "rest_bench"}))
    ds = {
        "name": "customers",
        "source": {
            "type": "rest",
            "base_url": url,
            "paginator": {"type": "page_number"},
            "record_path": "data",
            "primary_key": ["id"],
        },
        "checks": [{"type": "not_null", "column": "id"}, {"type": "unique", "column": "id"}],
        # as in session 5 (a primary_key without a write mode now merges on it)
        "write": {"mode": "append"},
    }
    (root / "datasets" / "main.yaml").write_text(yaml.safe_dump({"datasets": [ds]}))
    t0, c0 = time.perf_counter(), time.process_time()
    result = lockgate.run(root)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    assert result.ok, result.steps[0].error
    return seconds, cpu, result.steps[0].rows_out


def measure(records: int, repeats: int) -> None:
    body = pages(records)
    with running() as server, tempfile.TemporaryDirectory() as tmp:
        server.route("/c", lambda r: (200, {}, body[int(r.query["page"]) - 1]))
        url = server.url + "/c"
        raw_httpx(url)  # warm-up (imports, connection)
        lockgate_run(url, Path(tmp), -1)
        server.log.clear()
        wall: dict[str, list[float]] = {"raw_httpx": [], "lockgate": []}
        cpu: dict[str, list[float]] = {"raw_httpx": [], "lockgate": []}
        rows: dict[str, int] = {}
        for i in range(repeats):
            sides = ["raw_httpx", "lockgate"] if i % 2 == 0 else ["lockgate", "raw_httpx"]
            for side in sides:
                if side == "raw_httpx":
                    s, c, n = raw_httpx(url)
                else:
                    s, c, n = lockgate_run(url, Path(tmp), i)
                wall[side].append(s)
                cpu[side].append(c)
                rows[side] = n
                server.log.clear()
        _ = Request  # the server's request type (kept for readers of this file)
    for name, secs in wall.items():
        med = statistics.median(secs)
        print(
            json.dumps(
                {
                    "tool": name,
                    "records": rows[name],
                    "median_s": round(med, 3),
                    "median_cpu_s": round(statistics.median(cpu[name]), 3),
                    "records_per_s": round(rows[name] / med),
                    "runs_s": [round(x, 3) for x in secs],
                    "runs_cpu_s": [round(x, 3) for x in cpu[name]],
                }
            )
        )
    ratio = statistics.median(wall["raw_httpx"]) / statistics.median(wall["lockgate"])
    cpu_ratio = statistics.median(cpu["raw_httpx"]) / statistics.median(cpu["lockgate"])
    print(
        json.dumps(
            {
                "records": records,
                "lockgate_vs_raw_httpx": round(ratio, 3),
                "cpu_lockgate_vs_raw_httpx": round(cpu_ratio, 3),
            }
        )
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, nargs="+", default=[200_000])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    for n in args.records:
        measure(n, args.repeats)


if __name__ == "__main__":
    main()
