"""Training/serving skew: does the online store serve what a training set would have seen?

- :func:`serving_skew` samples entity keys of each feature view (a seeded reservoir sample of
  the dataset's distinct non-NULL keys), asks the online store for their vectors and the
  offline point-in-time join for the same keys at the same time ``now``, and counts the
  values that differ per feature (a stale or half-written online store shows up here).
- :func:`psi` is the population stability index between two samples of one feature: bins
  are the deciles of the expected sample (categories for non-numeric values; NULL is a bin
  of its own); ``sum((a - e) * ln(a / e))`` over bins, proportions floored at 1e-4. Rule of
  thumb: < 0.1 stable, 0.1-0.25 drifting, > 0.25 shifted. :func:`serving_skew` computes it
  between a training set's column and the served values of the sample when given one.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
from sqlglot import exp

from lockgate.features.definitions import resolve_features
from lockgate.features.online import OnlineStore, get_online_features, open_store, utc
from lockgate.sql import table_ref

if TYPE_CHECKING:
    from lockgate.project import Project

_EPS = 1e-4


@dataclass
class FeatureSkew:
    view: str
    feature: str
    compared: int
    mismatched: int
    psi: float | None = None
    examples: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class SkewReport:
    at: datetime
    features: list[FeatureSkew]

    @property
    def mismatched(self) -> int:
        return sum(f.mismatched for f in self.features)

    def as_dict(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "mismatched": self.mismatched,
            "features": [asdict(f) for f in self.features],
        }


def psi(expected: Sequence[object], actual: Sequence[object], bins: int = 10) -> float:
    """Population stability index of ``actual`` against ``expected`` (see the module docs).

    >>> round(psi([1, 2, 3, 4] * 25, [1, 2, 3, 4] * 25), 6)
    0.0
    >>> psi([1.0] * 50 + [2.0] * 50, [2.0] * 100) > 0.25
    True
    """
    e_bins, a_bins = _binned(expected, actual, bins)
    total = 0.0
    for key in set(e_bins) | set(a_bins):
        e = max(e_bins.get(key, 0) / max(len(expected), 1), _EPS)
        a = max(a_bins.get(key, 0) / max(len(actual), 1), _EPS)
        total += (a - e) * math.log(a / e)
    return total


def _numeric(values: Sequence[object]) -> bool:
    return all(
        v is None or (isinstance(v, int | float) and not isinstance(v, bool)) for v in values
    )


def _binned(
    expected: Sequence[object], actual: Sequence[object], bins: int
) -> tuple[dict[object, int], dict[object, int]]:
    if _numeric(expected) and _numeric(actual):
        known = np.array([v for v in expected if v is not None and v == v], dtype=float)
        edges = (
            np.unique(np.quantile(known, np.linspace(0, 1, bins + 1)[1:-1]))
            if known.size
            else np.array([])
        )

        def key(v: object) -> object:
            if v is None:
                return "NULL"
            if v != v:
                return "NaN"
            return int(np.searchsorted(edges, float(v), side="right"))  # type: ignore[arg-type, call-overload]  # v is a number here

    else:

        def key(v: object) -> object:
            return "NULL" if v is None else str(v)

    return _count(map(key, expected)), _count(map(key, actual))


def _count(keys: Any) -> dict[object, int]:
    out: dict[object, int] = {}
    for k in keys:
        out[k] = out.get(k, 0) + 1
    return out


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


def serving_skew(
    project: Project,
    features: str | Sequence[str],
    *,
    sample: int = 1000,
    store: OnlineStore | None = None,
    now: datetime | None = None,
    training: pa.Table | None = None,
    seed: int = 0,
) -> SkewReport:
    """Compare the online store with the offline answer at ``now`` for a sample of keys of
    each view (see the module docs); with ``training``, the PSI of each feature column it has
    against the served values."""
    from lockgate.engine.base import engine_for
    from lockgate.features.offline import training_set
    from lockgate.storage import DeltaStore

    own = store is None
    store = store or open_store(project)
    at = utc(now) if now is not None else datetime.now(UTC)
    delta = DeltaStore(project.warehouse_path)
    report = SkewReport(at, [])
    try:
        for view, feats in resolve_features(project.features, features):
            with engine_for(
                project.config.engine,
                work_dir=project.work_dir / "work",
                run_id=f"skew-{uuid.uuid4().hex}",
            ) as ses:
                ses.register_arrow("__lg_skew", delta.arrow_dataset(view.dataset))
                keys = [exp.column(k, quoted=True) for k in view.entities]
                inner = (
                    exp.select(*keys)
                    .from_(table_ref("__lg_skew"))
                    .where(
                        exp.and_(
                            *[
                                exp.Not(this=exp.Is(this=k.copy(), expression=exp.Null()))
                                for k in keys
                            ]
                        )
                    )
                    .distinct()
                )
                sql = (
                    f"SELECT * FROM ({ses.sql(inner)}) "
                    f"USING SAMPLE reservoir({int(sample)} ROWS) REPEATABLE ({int(seed)})"
                )
                picked = ses.execute(sql).fetchall()
            columns = {k: [row[i] for row in picked] for i, k in enumerate(view.entities)}
            refs = [f"{view.name}:{f}" for f in feats]
            online = get_online_features(project, refs, columns, store=store, now=at)
            labels = pa.table(
                {
                    **columns,
                    "__lg_now": pa.array(
                        [at.replace(tzinfo=None)] * len(picked), pa.timestamp("us")
                    ),
                }
            )
            offline = training_set(
                project,
                refs,
                labels,
                timestamp_column="__lg_now",
                record=False,
                full_feature_names=True,
            )
            served = online["results"][len(view.entities) :]  # type: ignore[index]
            for f, col in zip(feats, served, strict=True):
                want = offline.column(f"{view.name}__{f}").to_pylist()
                got = col["values"]
                bad = [i for i, (a, b) in enumerate(zip(got, want, strict=True)) if not _same(a, b)]
                skew = FeatureSkew(view.name, f, len(got), len(bad))
                skew.examples = [
                    {
                        **{k: columns[k][i] for k in view.entities},
                        "online": got[i],
                        "offline": want[i],
                    }
                    for i in bad[:5]
                ]
                if training is not None:
                    name = next(
                        (c for c in (f"{view.name}__{f}", f) if c in training.column_names), None
                    )
                    if name is not None:
                        skew.psi = round(psi(training.column(name).to_pylist(), got), 6)
                report.features.append(skew)
    finally:
        if own:
            store.close()
    return report
