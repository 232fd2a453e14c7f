"""'Did you mean …?' suggestions for unknown names."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    """Return a hint like ``did you mean 'orders'?`` or ``None``.

    >>> did_you_mean("ordres", ["orders", "customers"])
    "did you mean 'orders'?"
    """
    matches = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f"did you mean '{matches[0]}'?" if matches else None
