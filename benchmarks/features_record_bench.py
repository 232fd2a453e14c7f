"""What recording a training set costs (#13): the canonical SHA-256 of the result
(:func:`lockgate.features.recorded.table_sha256`) and of the kept entity file, for a result
shaped like the pit benchmark's (1M rows: key, timestamp, label, N float features).

    .venv/bin/python benchmarks/features_record_bench.py --rows 1000000 --features 5
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from lockgate.features.recorded import file_sha256, table_sha256


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--features", type=int, default=5)
    args = ap.parse_args()
    rng = np.random.default_rng(1)
    n = args.rows
    ents = pa.table(
        {
            "customer_id": pa.array(rng.integers(0, 1_000_000, n)),
            "event_timestamp": pa.array(rng.integers(0, 10**15, n), pa.timestamp("us")),
            "label": pa.array(rng.integers(0, 2, n)),
        }
    )
    feats = {
        f"f{i}": pa.array(rng.random(n), mask=rng.random(n) < 0.1) for i in range(args.features)
    }
    result = ents.append_column("_", pa.nulls(n)).drop(["_"])
    for k, v in feats.items():
        result = result.append_column(k, v)
    path = Path(tempfile.mkdtemp()) / "entities.parquet"
    pq.write_table(ents, path)
    out: dict[str, float | int] = {"rows": n, "features": args.features}
    for name, fn in (
        ("table_sha256_result_s", lambda: table_sha256(result)),
        ("file_sha256_entities_s", lambda: file_sha256(path)),
    ):
        times = []
        for _ in range(3):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        out[name] = round(sorted(times)[1], 3)
    out["entities_file_mb"] = round(path.stat().st_size / 1e6, 1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
