"""Hypothesis budgets: full in CI (``make test``), a fifth in the fast tier (``make test-fast``,
which sets ``LOCKGATE_FAST=1``) so local loops stay under a minute."""

from __future__ import annotations

import os

FAST = os.environ.get("LOCKGATE_FAST") == "1"


def examples(n: int) -> int:
    """The number of hypothesis examples for a property whose CI budget is ``n``."""
    return max(5, n // 5) if FAST else n
