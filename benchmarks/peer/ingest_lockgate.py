#!/usr/bin/env python3
"""Peer-harness runner (Part 3, ingestion PostgreSQL) for lockgate.

Ingests table ``orders`` of ``$BENCH_PG_URI`` into a *published Delta table* through the
whole run loop — stage (ADBC Arrow stream, catalog types), audit of 2 checks (not_null
order_id, row_count ≥ 1), gate, atomic Delta commit, state store record — in a fresh
project. ``python3 ingest_lockgate.py [PARTITIONS]``: with PARTITIONS, ``partition:
{column: order_id, partitions: N}`` (parallel ranges on one snapshot).

Timed region: ``lockgate.run`` (query → rows committed on local disk). The output is the
warehouse folder (``<out>/warehouse/orders/*.parquet``, what ``ingest/report.py`` checks).
Prints the one JSON line the harness expects.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import yaml

PG_URI = os.environ.get("BENCH_PG_URI", "postgresql://bench:bench@127.0.0.1:54329/bench")


def main() -> None:
    parts = int(sys.argv[1]) if len(sys.argv) > 1 else None
    tool = "lockgate" + (f"_p{parts}" if parts else "")
    out = Path(os.environ.get("LG_BENCH_OUT") or tempfile.gettempdir()) / f"lg_ingest_{tool}"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    source: dict[str, object] = {"type": "postgres", "connection": "bench", "table": "orders"}
    if parts:
        source["partition"] = {"column": "order_id", "partitions": parts}
    cfg = {"name": "ingest_bench", "connections": {"bench": {"type": "postgres", "url": PG_URI}}}
    (out / "lockgate.yaml").write_text(yaml.safe_dump(cfg))
    (out / "datasets").mkdir()
    ds = {
        "name": "orders",
        "source": source,
        "checks": [
            {"type": "not_null", "column": "order_id"},
            {"type": "row_count", "min": 1},
        ],
    }
    (out / "datasets" / "main.yaml").write_text(yaml.safe_dump({"datasets": [ds]}))

    # imports outside the timed region, as the harness's other runners do (its contract
    # times "query -> rows on disk"); the whole process's wall and CPU time include them
    import adbc_driver_postgresql  # noqa: F401
    import deltalake  # noqa: F401
    import duckdb  # noqa: F401
    import psycopg  # noqa: F401
    import pyarrow  # noqa: F401

    import lockgate
    import lockgate.runloop.runner

    t0 = time.perf_counter()
    result = lockgate.run(out)
    seconds = time.perf_counter() - t0
    step = result.steps[0]
    if not result.ok:
        print(f"lockgate run failed: {step.error}", file=sys.stderr)
        sys.exit(1)
    print(
        json.dumps(
            {
                "tool": tool,
                "seconds": round(seconds, 4),
                "rows": step.rows_out,
                "rows_per_s": round(step.rows_out / seconds),
                "output": str(out / "warehouse"),
                "version": lockgate.__version__ if hasattr(lockgate, "__version__") else "0.1.0",
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
