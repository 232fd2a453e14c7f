"""Quality scores: a pass rate per dimension and an overall score, from check results.

Definitions (all scores are fractions in ``[0, 1]``; 1 is perfect):

- **check score**
  - row-level check (``row_level`` true: not_null, between, regex_match, ...):
    ``1 - failing_rows / total_rows``, the fraction of rows that pass it. A batch with
    no rows scores 1. The value is clamped to ``[0, 1]``.
  - table-level check (row_count, aggregate_between, freshness, reconcile, ...):
    ``1`` when it passed, ``0`` when it failed.
  The threshold does not change a row-level score: a check that fails 3 rows out of 1000
  scores 0.997 whether or not 3 rows were within its tolerance.
- **dimension score**: the unweighted mean of the scores of the checks in that
  dimension (completeness, uniqueness, validity, accuracy, consistency, timeliness).
  Custom SQL checks count in the dimension they declare.
- **overall**: the mean of the dimension scores *present*, each dimension weighted
  equally by default (so 30 not-null checks do not drown one freshness check), or by
  ``weights`` (dimension -> weight; dimensions missing from ``weights`` weigh 1, a weight
  of 0 leaves the dimension out of ``overall``).

Both error and warn severities count. Results with no checks give ``{}``: there is no
score without checks (``overall`` is absent, never 1.0 by default).

>>> from types import SimpleNamespace as R
>>> compute_scores([
...     R(dimension="completeness", passed=False, failing_rows=10, row_level=True),
...     R(dimension="timeliness", passed=True, failing_rows=0, row_level=False),
... ], total_rows=100)
{'completeness': 0.9, 'timeliness': 1.0, 'overall': 0.95}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

OVERALL = "overall"


class CheckResultLike(Protocol):
    """What scoring reads from a check result (``lockgate.quality.CheckResult`` has it)."""

    dimension: Any  # a Dimension (StrEnum) or str
    passed: bool
    failing_rows: int


def check_score(result: CheckResultLike, total_rows: int | None = None) -> float:
    """The score of one check result (see the module docstring)."""
    row_level = bool(getattr(result, "row_level", True))
    if not row_level:
        return 1.0 if result.passed else 0.0
    total = getattr(result, "total_rows", None)
    if total is None:
        total = total_rows
    if total is None:
        fraction = getattr(result, "fraction", None)
        if fraction is None:
            raise ValueError(
                "row-level check result has neither total_rows nor fraction: pass total_rows="
            )
        return _clamp(1.0 - float(fraction))
    if total <= 0:
        return 1.0
    return _clamp(1.0 - result.failing_rows / total)


def compute_scores(
    results: Sequence[CheckResultLike],
    *,
    total_rows: int | None = None,
    weights: Mapping[str, float] | None = None,
) -> dict[str, float]:
    """Pass rate per dimension plus ``overall`` (see the module docstring).

    ``total_rows`` is the batch size (``AuditResult.total_rows``); a result's own
    ``total_rows`` attribute, or failing it its ``fraction``, is used when given.
    Keys are dimension names in first-seen order, then ``overall``.
    """
    per_dim: dict[str, list[float]] = {}
    for r in results:
        dim = str(getattr(r.dimension, "value", r.dimension))
        per_dim.setdefault(dim, []).append(check_score(r, total_rows))
    if not per_dim:
        return {}
    scores = {d: sum(v) / len(v) for d, v in per_dim.items()}
    w = {d: float((weights or {}).get(d, 1.0)) for d in scores}
    if any(x < 0 for x in w.values()):
        raise ValueError(f"weights must be >= 0, got {dict(weights or {})}")
    total_w = sum(w.values())
    out = dict(scores)
    if total_w > 0:
        out[OVERALL] = sum(scores[d] * w[d] for d in scores) / total_w
    return out


def _clamp(x: float) -> float:
    return min(1.0, max(0.0, x))


__all__ = ["OVERALL", "CheckResultLike", "check_score", "compute_scores"]
