"""Pipeline CPU cost of one code tree's streams bench — for before/after comparisons on a
loaded machine, where wall time means little:

    .venv/bin/python benchmarks/streams_cpu_compare.py ROOT EVENTS [BATCH]

ROOT: a checkout (e.g. ``git archive <commit> | tar -x -C /tmp/before``), run with this venv.
CPU = this process, all threads (DuckDB, delta-rs, Arrow), from runner start to its end.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time


def main() -> None:
    root, n = sys.argv[1], int(sys.argv[2])
    batch = int(sys.argv[3]) if len(sys.argv) > 3 else 50_000
    sys.path.insert(0, root)
    os.environ.setdefault("LOCKGATE_MASK_KEY", "bench-key")
    found = importlib.util.spec_from_file_location("sb", f"{root}/benchmarks/streams_bench.py")
    assert found is not None and found.loader is not None
    sb = importlib.util.module_from_spec(found)
    found.loader.exec_module(sb)
    data = sb.payloads(n)
    s = sb.spec({"type": "redis", "stream": "x"}, batch)
    cpu, wall = time.process_time(), time.perf_counter()
    out = sb.run(s, sb.ListConsumer(data))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    r = out[0] if isinstance(out, tuple) else out
    print(
        f"{root}: {r.counts.read} events, wall {wall:.1f} s, CPU {cpu:.1f} s "
        f"= {r.counts.read / cpu:,.0f} events per CPU-second; reconciles {r.counts.reconciles}"
    )


if __name__ == "__main__":
    main()
