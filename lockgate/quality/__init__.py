"""Audit: the check vocabulary, the fused scan that counts and marks failing rows, the gate."""

from typing import TYPE_CHECKING

from lockgate._lazy import exports, lazy_exports

# eager: the function ``gate`` must shadow its module ``lockgate.quality.gate`` (cheap to import)
from lockgate.quality.gate import GateDecision, gate

if TYPE_CHECKING:
    from lockgate.quality.checkfile import CheckFile, load_check_file
    from lockgate.quality.engine import AuditResult, CheckResult, audit
    from lockgate.quality.standalone import run_standalone
    from lockgate.quality.validate import parse_checks, validate_checks

# the check vocabulary (quality.checks) is imported by every project load; the engine that
# runs checks only when a check runs
__getattr__, __dir__ = lazy_exports(
    globals(),
    exports(
        **{
            "lockgate.quality.engine": ["AuditResult", "CheckResult", "audit"],
            "lockgate.quality.validate": ["parse_checks", "validate_checks"],
            "lockgate.quality.checkfile": ["CheckFile", "load_check_file"],
            "lockgate.quality.standalone": ["run_standalone"],
        }
    ),
)

__all__ = [
    "AuditResult",
    "CheckFile",
    "CheckResult",
    "GateDecision",
    "audit",
    "gate",
    "load_check_file",
    "parse_checks",
    "run_standalone",
    "validate_checks",
]
