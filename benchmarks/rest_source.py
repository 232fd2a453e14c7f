"""REST source (#8): N records from a local HTTP server (page-number pagination, 1,000 records
a page, 6 fields) into a published Delta table through the whole run loop, against a raw
httpx loop over the same server (GET every page + parse the JSON, nothing stored).

    .venv/bin/python benchmarks/rest_source.py --records 200000 [--repeats 3]

The server (stdlib ``ThreadingHTTPServer`` in this process, pages pre-serialised) runs in a
thread; each side is measured ``--repeats`` times, interleaved, and the medians compared.
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


def raw_httpx(url: str) -> tuple[float, int]:
    import httpx

    t0 = time.perf_counter()
    n = 0
    with httpx.Client() as client:
        page = 1
        while True:
            recs = client.get(url, params={"page": page}).json()["data"]
            if not recs:
                break
            n += len(recs)
            page += 1
    return time.perf_counter() - t0, n


def lockgate_run(url: str, tmp: Path, i: int) -> tuple[float, int]:
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
    }
    (root / "datasets" / "main.yaml").write_text(yaml.safe_dump({"datasets": [ds]}))
    t0 = time.perf_counter()
    result = lockgate.run(root)
    seconds = time.perf_counter() - t0
    assert result.ok, result.steps[0].error
    return seconds, result.steps[0].rows_out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    body = pages(args.records)
    with running() as server, tempfile.TemporaryDirectory() as tmp:
        server.route("/c", lambda r: (200, {}, body[int(r.query["page"]) - 1]))
        url = server.url + "/c"
        raw_httpx(url)  # warm-up (imports, connection)
        results: dict[str, list[float]] = {"raw_httpx": [], "lockgate": []}
        rows: dict[str, int] = {}
        for i in range(args.repeats):
            s, n = raw_httpx(url)
            results["raw_httpx"].append(s)
            rows["raw_httpx"] = n
            s, n = lockgate_run(url, Path(tmp), i)
            results["lockgate"].append(s)
            rows["lockgate"] = n
            server.log.clear()
        _ = Request  # the server's request type (kept for readers of this file)
    for name, secs in results.items():
        med = statistics.median(secs)
        print(
            json.dumps(
                {
                    "tool": name,
                    "records": rows[name],
                    "median_s": round(med, 3),
                    "records_per_s": round(rows[name] / med),
                    "runs_s": [round(x, 3) for x in secs],
                }
            )
        )
    ratio = statistics.median(results["raw_httpx"]) / statistics.median(results["lockgate"])
    print(json.dumps({"lockgate_vs_raw_httpx": round(ratio, 3)}))


if __name__ == "__main__":
    main()
