"""Merge keys must not be NULL: the checks that guarantee it (implicit or declared)."""

from __future__ import annotations

from lockgate.project.models import DatasetSpec, WriteMode
from lockgate.quality.checks import NotNull


def implicit_checks(spec: DatasetSpec) -> list[NotNull]:
    """Merge keys must not be NULL: a NULL key can never be upserted, so such rows are
    quarantined rather than inserted again on every run (or collapsed into one by the
    per-key de-duplication)."""
    if spec.write.mode != WriteMode.MERGE:
        return []
    declared = {c.column for c in _declared_key_checks(spec)}
    return [
        NotNull(type="not_null", column=k, name=f"{k}_merge_key_not_null")
        for k in spec.write.keys
        if k not in declared
    ]


def _declared_key_checks(spec: DatasetSpec) -> list[NotNull]:
    """Declared not_null checks that quarantine every NULL of a merge key (error severity,
    no threshold, no filter): they stand in for the implicit ones."""
    return [
        c
        for c in spec.checks
        if isinstance(c, NotNull)
        and c.column in spec.write.keys
        and str(c.severity) == "error"
        and c.threshold == 0
        and c.where is None
    ]


def key_checks(spec: DatasetSpec) -> set[str]:
    """Names of the checks that catch NULL merge keys (quarantined even under ``warn``)."""
    if spec.write.mode != WriteMode.MERGE:
        return set()
    names = {c.check_name for c in _declared_key_checks(spec)}
    return names | {c.check_name for c in implicit_checks(spec)}
