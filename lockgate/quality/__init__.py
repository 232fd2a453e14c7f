"""Audit: the check vocabulary, the fused scan that counts and marks failing rows, the gate."""

from lockgate.quality.engine import AuditResult, CheckResult, audit
from lockgate.quality.gate import GateDecision, gate
from lockgate.quality.validate import parse_checks, validate_checks

__all__ = [
    "AuditResult",
    "CheckResult",
    "GateDecision",
    "audit",
    "gate",
    "parse_checks",
    "validate_checks",
]
from lockgate.quality.checkfile import CheckFile, load_check_file
from lockgate.quality.standalone import run_standalone

__all__ += ["CheckFile", "load_check_file", "run_standalone"]
