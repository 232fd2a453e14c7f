"""Where one stream batch's time goes, by stage: CPU (this process, all threads) and wall,
per batch, for the pipeline from an in-memory source (``streams_bench.py``'s data and spec).

    .venv/bin/python benchmarks/streams_profile.py --events 300000 --batch 10000

Stages are the runner's functions, timed where they are called (inclusive; ``commit``
holds ``dlq log`` and ``sink publish``). With read ahead (the default) the parse runs on the
I/O thread during the batch before, so the process CPU of a stage includes some of it:
``--no-prefetch`` gives stage CPU that adds up. ``batch`` is the whole of ``process()``; ``rest``
is what no stage holds (Arrow column appends, filters, counting).
"""

from __future__ import annotations

import argparse
import functools
import gc
import os
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
import streams_bench as sb

from lockgate.storage.delta import DeltaStore
from lockgate.streams import dlq as dlq_mod
from lockgate.streams import runner as runner_mod
from lockgate.streams.dedup import DedupWindow

CPU: dict[str, list[float]] = defaultdict(list)
WALL: dict[str, list[float]] = defaultdict(list)
#: garbage collections: (generation, seconds, batch number it fell in)
GC: list[tuple[int, float, int]] = []
_gc_start = [0.0]


def _gc(phase: str, info: dict[str, int]) -> None:
    if phase == "start":
        _gc_start[0] = time.perf_counter()
    else:
        GC.append((info["generation"], time.perf_counter() - _gc_start[0], len(WALL["batch"])))


def timed(stage: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        c, w = time.process_time(), time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            CPU[stage].append(time.process_time() - c)
            WALL[stage].append(time.perf_counter() - w)

    return wrapper


def instrument() -> None:
    R = runner_mod.StreamRunner
    runner_mod.parse_json_batch = timed("parse", runner_mod.parse_json_batch)  # type: ignore[assignment]
    R.process = timed("batch", R.process)  # type: ignore[method-assign]
    R._check_and_mask = timed("checks+mask", R._check_and_mask)  # type: ignore[method-assign]
    R._enrich = timed("enrich", R._enrich)  # type: ignore[method-assign]
    R._commit = timed("commit", R._commit)  # type: ignore[method-assign]
    R.flush_dlq = timed("dlq commit", R.flush_dlq)  # type: ignore[method-assign]
    runner_mod.audit = timed("  audit", runner_mod.audit)  # type: ignore[assignment]
    DedupWindow.unseen = timed("dedup", DedupWindow.unseen)  # type: ignore[method-assign]
    DedupWindow.first_seen = timed("dedup", DedupWindow.first_seen)  # type: ignore[method-assign]
    dlq_mod.DeferredDlq.stage = timed("  dlq log", dlq_mod.DeferredDlq.stage)  # type: ignore[method-assign]
    orig = DeltaStore.publish

    def publish(self: DeltaStore, name: str, *a: Any, **k: Any) -> Any:
        stage = "  dlq publish" if name.endswith("__dlq") else "  sink publish"
        return timed(stage, orig)(self, name, *a, **k)

    DeltaStore.publish = publish  # type: ignore[method-assign]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=300_000)
    ap.add_argument("--batch", type=int, default=10_000)
    ap.add_argument("--enrich", action="store_true", help="with the bench's enrich reference")
    ap.add_argument(
        "--no-prefetch",
        action="store_true",
        help="parse in the runner's thread (stage CPU then adds up: no I/O thread at work)",
    )
    a = ap.parse_args()
    sb.PREFETCH = not a.no_prefetch
    os.environ.setdefault("LOCKGATE_MASK_KEY", "bench-key")
    instrument()
    gc.callbacks.append(_gc)
    data = sb.payloads(a.events)
    s = sb.spec({"type": "redis", "stream": "x"}, a.batch, enrich=a.enrich)
    report, cpu = sb.run(s, sb.ListConsumer(data))
    n = report.batches
    print(
        f"{report.counts.read} events, batch {a.batch}: {n} batches, CPU {cpu:.2f} s "
        f"({report.counts.read / cpu:,.0f} events per CPU-second), wall {report.seconds:.2f} s; "
        f"reconciles {report.counts.reconciles}"
    )
    order = ["batch", "parse", "dedup", "enrich", "checks+mask", "  audit", "commit",
             "  dlq log", "  sink publish", "dlq commit", "  dlq publish"]  # fmt: skip
    print(f"{'stage':<16}{'calls':>6}{'CPU ms/batch':>14}{'wall ms/batch':>15}{'p99 wall ms':>13}")
    for k in order:
        if k not in CPU:
            continue
        lat = sorted(WALL[k])
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
        print(
            f"{k:<16}{len(CPU[k]):>6}{sum(CPU[k]) / n * 1000:>14.2f}"
            f"{sum(WALL[k]) / n * 1000:>15.2f}{p99 * 1000:>13.1f}"
        )
    inner = ("parse", "dedup", "enrich", "checks+mask", "commit")
    rest_c = (sum(CPU["batch"]) - sum(sum(CPU[k]) for k in inner)) / n * 1000
    rest_w = (sum(WALL["batch"]) - sum(sum(WALL[k]) for k in inner)) / n * 1000
    print(f"{'rest':<16}{'':>6}{rest_c:>14.2f}{rest_w:>15.2f}")
    for g in (0, 1, 2):
        pauses = [t for gen, t, _ in GC if gen == g]
        if pauses:
            print(
                f"gc gen{g}: {len(pauses)} collections, {sum(pauses) * 1000:.1f} ms in all, "
                f"longest {max(pauses) * 1000:.1f} ms"
            )
    per = ["parse", "checks+mask", "commit", "  sink publish"]
    slow = sorted(range(n), key=WALL["batch"].__getitem__)[-5:][::-1]
    print("slowest batches (wall ms):")
    for i in slow:
        parts = ", ".join(f"{k.strip()} {WALL[k][i] * 1000:.0f}" for k in per if len(WALL[k]) == n)
        gcs = sum(t for _, t, b in GC if b == i) * 1000
        print(f"  #{i + 1}: {WALL['batch'][i] * 1000:.0f} ({parts}, gc {gcs:.0f})")
    print("batch wall p50 / p99 ms:", f"{statistics.median(WALL['batch']) * 1000:.0f} /",
          f"{sorted(WALL['batch'])[int(len(WALL['batch']) * 0.99)] * 1000:.0f}")  # fmt: skip


if __name__ == "__main__":
    main()
