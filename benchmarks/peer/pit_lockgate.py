#!/usr/bin/env python3
"""Peer-harness runner (Part 2, point-in-time join) for lockgate's feature store.

Usage: pit_lockgate.py [delta|files] [auto|range|timeline]

- ``delta`` (default; the product path): a lockgate project (kept in
  ``$PIT_DATA/lockgate_project``, built once outside the timed region by ``lockgate run``)
  publishes ``features.parquet`` as the Delta dataset ``pit_features`` and declares the
  feature view ``pit`` (entity ``customer_id``, ``event_ts``, created = event time, TTL 30d);
  timed: :func:`lockgate.features.training_set` (project, "pit", entities.parquet) — reading
  the entity file and the Delta table at its pinned version, the join, the result in memory.
- ``files``: the same join (:func:`lockgate.features.point_in_time`) straight over
  the two Parquet files (no Delta log, no project).

Writes the result outside the timer and prints the harness's JSON line.
Bench location: $BENCH_DIR, else the working directory when it is a bench folder (the
harness runs runners there), else ../shared/bench relative to the project root.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_CWD_IS_BENCH = (Path.cwd() / "pit" / "runners" / "_common.py").is_file()  # the harness's cwd
BENCH = Path(
    os.environ.get("BENCH_DIR")
    or (Path.cwd() if _CWD_IS_BENCH else ROOT.parent / "shared" / "bench")
)
sys.path.insert(0, str(BENCH / "pit" / "runners"))

from _common import ENTITIES, FEATURES, emit  # type: ignore[import-not-found]  # noqa: E402

MODE = sys.argv[1] if len(sys.argv) > 1 else "delta"  # delta | files
STRATEGY = sys.argv[2] if len(sys.argv) > 2 else "auto"
VIEW = """\
feature_views:
  - name: pit
    dataset: pit_features
    entities: [customer_id]
    event_timestamp: event_ts
    created_timestamp: event_ts
    ttl: 30d
    features: [f1, f2, f3, f4, f5]
"""


def project() -> Path:
    """The project publishing features.parquet (built once; the data are regenerated only
    with REGEN=1, which should remove it)."""
    root = Path(os.environ.get("PIT_DATA", Path(FEATURES).parent)) / "lockgate_project"
    if (root / "warehouse" / "pit_features" / "_delta_log").is_dir():
        return root
    (root / "datasets").mkdir(parents=True, exist_ok=True)
    (root / "lockgate.yaml").write_text("name: pit_bench\n")
    (root / "datasets" / "pit.yaml").write_text(
        textwrap.dedent(
            f"""\
            datasets:
              - name: pit_features
                source: {{type: file, path: {FEATURES}}}
            """
        )
        + VIEW
    )
    subprocess.run([sys.executable, "-m", "lockgate", "run", "-p", str(root)], check=True)
    return root


def main() -> None:
    import lockgate
    from lockgate.features import point_in_time, training_set

    strategy = STRATEGY
    if MODE == "delta":
        from lockgate.project import load_project

        proj = load_project(project())  # the definitions, as Feast's runner applies its repo
        t0 = time.perf_counter()
        table = training_set(proj, "pit", Path(ENTITIES), strategy=strategy)  # type: ignore[arg-type]
        seconds = time.perf_counter() - t0
    else:
        import tempfile

        import pyarrow.dataset as pads
        import yaml

        from lockgate.engine.session import Session
        from lockgate.features.definitions import FeatureViewSpec
        from lockgate.features.offline import ViewSource

        spec = FeatureViewSpec.model_validate(yaml.safe_load(VIEW)["feature_views"][0])
        with Session(Path(tempfile.mkdtemp()), "pit") as ses:
            t0 = time.perf_counter()
            ents = Path(ENTITIES)
            src = ViewSource(spec, spec.feature_names, pads.dataset(FEATURES))
            table = point_in_time(ses, ents, [src], strategy=strategy)  # type: ignore[arg-type]
            seconds = time.perf_counter() - t0
    meta = table.schema.metadata or {}
    emit(
        f"lockgate_{MODE}_{STRATEGY}",
        seconds,
        table,
        version=lockgate.__version__,
        notes=meta.get(b"lockgate.feature_versions", b"").decode(),
    )


if __name__ == "__main__":
    main()
