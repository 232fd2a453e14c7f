"""The gate: turn an audit into publish-all / publish-passing / block."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from lockgate.quality.checks import Severity

if TYPE_CHECKING:
    from lockgate.quality.engine import AuditResult

GateAction = Literal["publish_all", "publish_passing", "block"]


@dataclass(frozen=True)
class GateDecision:
    """What to publish.

    ``quarantine_bits``: mask bits whose failing rows are held back (publish_passing);
    ``quarantine_mask``: the same as one integer over all bits (bit ``i`` = check bit ``i``);
    ``blocking``: names of the checks that blocked; ``quarantined``: names of the checks
    whose failing rows are quarantined.
    """

    action: GateAction
    policy: str
    quarantine_bits: frozenset[int] = frozenset()
    blocking: list[str] = field(default_factory=list)
    quarantined: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    reason: str = ""

    @property
    def quarantine_mask(self) -> int:
        m = 0
        for b in self.quarantine_bits:
            m |= 1 << b
        return m


def gate(result: AuditResult, policy: str) -> GateDecision:
    """Apply a gate policy (``quarantine`` | ``block`` | ``warn``; a GatePolicy enum works).

    - ``quarantine``: rows failing an *error*-severity row-level check are quarantined
      (whether or not the count is within the threshold); an error-severity table-level
      check that fails (custom SQL: over its threshold) blocks the batch.
    - ``block``: any error-severity check that did not pass blocks; otherwise publish all.
    - ``warn``: publish everything; failures are reported.
    Warn-severity checks never block or quarantine.
    """
    p = str(getattr(policy, "value", policy))
    if p not in ("quarantine", "block", "warn"):
        raise ValueError(f"unknown gate policy {p!r}: use quarantine, block or warn")
    errors = [r for r in result.results if r.severity == Severity.ERROR]
    warnings = [r.name for r in result.results if not r.passed and r.severity != Severity.ERROR]
    if p == "warn":
        failed = [r.name for r in result.results if not r.passed]
        reason = f"warn policy: {len(failed)} failing check(s) reported" if failed else ""
        return GateDecision("publish_all", p, warnings=failed, reason=reason)
    if p == "block":  # any failing error check blocks
        blocking = [r.name for r in errors if not r.passed]
        what = "failing error checks"
    else:  # quarantine: only table-level failures block; failing rows are quarantined
        blocking = [r.name for r in errors if not r.row_level and not r.passed]
        what = "failing table-level error checks"
    if blocking:
        return GateDecision(
            "block",
            p,
            blocking=blocking,
            warnings=warnings,
            reason=f"{what}: " + ", ".join(_describe(result, blocking)),
        )
    if p == "block":
        return GateDecision("publish_all", p, warnings=warnings)
    q = [r for r in errors if r.row_level and r.failing_rows > 0 and r.bit is not None]
    if not q:
        return GateDecision("publish_all", p, warnings=warnings)
    bits = frozenset(r.bit for r in q if r.bit is not None)
    return GateDecision(
        "publish_passing",
        p,
        quarantine_bits=bits,
        quarantined=[r.name for r in q],
        warnings=warnings,
        reason="quarantining rows failing: " + ", ".join(_describe(result, [r.name for r in q])),
    )


def _describe(result: AuditResult, names: list[str]) -> list[str]:
    out = []
    for n in names:
        r = result.result(n)
        out.append(f"{n} ({r.message or f'{r.failing_rows} failing rows'})")
    return out
