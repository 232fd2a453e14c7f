"""Anomaly detection against labelled synthetic histories (issue #11).

    .venv/bin/python benchmarks/anomaly_bench.py [--series 400] [--seed 7]

Daily series of 120 values (half weekly seasonal, 2-8 % noise) with one injected spike, drop
or slow drift each, or none; the robust detector (median/MAD, weekday seasonality, drift test)
and the plain z-score (mean/stddev of the last 28 values, |z| > 3: Elementary's test) run
online over the same series. Results go to benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from lockgate.anomaly import detect, zscore
from lockgate.anomaly.synthetic import KINDS, evaluate, make_series


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--series", type=int, default=400)
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    series = [make_series(rng, KINDS[i % len(KINDS)]) for i in range(a.series)]
    methods = {
        "robust": lambda h, p: detect(h, p).anomalous,
        "zscore": lambda h, p: zscore(h, p),
    }
    for name, fn in methods.items():
        t = time.perf_counter()
        total = evaluate(series, fn)
        secs = time.perf_counter() - t
        print(f"{name:7s} all    " + _fmt(total) + f" ({secs:.1f}s)")
        for kind in KINDS:
            print(
                f"{name:7s} {kind:6s} " + _fmt(evaluate([s for s in series if s.kind == kind], fn))
            )


def _fmt(r: dict[str, float]) -> str:
    return (
        f"precision={r['precision']:.3f} incident_precision={r['incident_precision']:.3f} "
        f"recall={r['recall']:.3f} alerts={r['alerts']:.0f} incidents={r['incidents']:.0f} "
        f"events={r['events']:.0f}"
    )


if __name__ == "__main__":
    main()
