#!/usr/bin/env python3
"""Peer-harness runner (Part 1, data quality) for lockgate.

Translates the tool-neutral ``bench/quality/suite.yaml`` into a lockgate check file (a temp
file), then runs exactly what ``lockgate check orders.parquet --checks FILE --ref
customers=…`` runs (:func:`lockgate.quality.run_standalone`) in-process. Timed region: from
loading the check file and reading the inputs to having every failing count. By default the
runner measures ``lockgate check --samples 0`` (counts only, the harness contract);
``LG_SAMPLES=5`` measures the CLI default, which also fetches 5 failing rows per check.
Prints the one JSON line the harness expects.

Bench location: $BENCH_DIR, else ../shared/bench relative to the project root.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
BENCH = Path(os.environ.get("BENCH_DIR", ROOT.parent / "shared" / "bench"))
#: failing-row samples per check: 0 = counts only, i.e. ``lockgate check --samples 0``
#: (the harness times "input to failing counts"); LG_SAMPLES=5 measures the default CLI
SAMPLES = int(os.environ.get("LG_SAMPLES", "0"))


def translate(suite: dict) -> tuple[list[dict], dict[str, str]]:
    """suite.yaml checks → lockgate check definitions (+ the references they need)."""
    out: list[dict] = []
    refs: dict[str, str] = {}
    for c in suite["checks"]:
        t, n = c["type"], c["name"]
        if t == "row_count_between":
            out.append({"name": n, "type": "row_count", "min": c["min"], "max": c["max"]})
        elif t == "freshness":
            out.append(
                {
                    "name": n,
                    "type": "freshness",
                    "column": c["column"],
                    "max_age": f"{c['max_age_hours']}h",
                }
            )
        elif t in ("not_null", "unique"):
            out.append({"name": n, "type": t, "column": c["column"]})
        elif t == "accepted_values":
            out.append({"name": n, "type": t, "column": c["column"], "values": c["values"]})
        elif t == "between":
            out.append(
                {"name": n, "type": t, "column": c["column"], "min": c["min"], "max": c["max"]}
            )
        elif t == "regex_match":
            out.append({"name": n, "type": t, "column": c["column"], "pattern": c["pattern"]})
        elif t == "relationship":
            refs[c["to_dataset"]] = suite["datasets"][c["to_dataset"]]
            out.append(
                {
                    "name": n,
                    "type": t,
                    "column": c["column"],
                    "to": c["to_dataset"],
                    "to_column": c["to_column"],
                }
            )
        elif t == "column_pair_ge":
            out.append(
                {
                    "name": n,
                    "type": "column_pair",
                    "column_a": c["column_a"],
                    "op": ">=",
                    "column_b": c["column_b"],
                }
            )
        else:
            raise SystemExit(f"unknown suite check type {t!r}")
    return out, refs


def main() -> None:
    sys.path.insert(0, str(BENCH / "common"))
    from suite import load_suite  # type: ignore[import-not-found]

    import lockgate
    from lockgate.quality import load_check_file, run_standalone

    suite = load_suite()
    checks, refs = translate(suite)
    target = suite["datasets"]["orders"]
    now = datetime.fromisoformat(suite["now"])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "checks.yaml"
        path.write_text(yaml.safe_dump({"references": refs, "checks": checks}, sort_keys=False))
        t0 = time.perf_counter()
        result = run_standalone(target, load_check_file(path), now=now, sample_size=SAMPLES)
        seconds = time.perf_counter() - t0
    failing = {r.name: int(r.failing_rows) for r in result.results}
    print(
        json.dumps(
            {
                "tool": "lockgate",
                "seconds": round(seconds, 4),
                "failing": failing,
                "version": getattr(lockgate, "__version__", "0.1.0"),
                "notes": "lockgate check (run_standalone, count mode): one DuckDB statement "
                "(fused aggregate + unique hash aggregate + relationship mark join); "
                f"samples per check: {SAMPLES}",
            }
        )
    )


if __name__ == "__main__":
    main()
