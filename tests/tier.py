"""Rebuild ``tests/slow_tests.txt``, the tests ``make test-fast`` leaves out.

    make slow-list      # runs the fast tier with --durations=0 and rewrites the list

A test function is listed when one of its cases (parametrisations) took longer than
:data:`THRESHOLD_S` (call + setup + teardown) in the measuring run; ``tests/conftest.py``
marks listed tests ``slow``. The list is data, not judgement: rebuild it when the fast tier
creeps over a minute. Tests already marked ``slow`` in code never reach the measuring run.
"""

from __future__ import annotations

import re
import sys
from collections import defaultdict
from pathlib import Path

#: a case slower than this (seconds, measured on a 2-core machine) makes its test slow
THRESHOLD_S = 0.25
LIST = Path(__file__).with_name("slow_tests.txt")
_LINE = re.compile(r"^(\d+(?:\.\d+)?)s (?:call|setup|teardown)\s+(\S+)")


def base(nodeid: str) -> str:
    """``tests/a.py::test_x[case]`` → ``tests/a.py::test_x``."""
    return nodeid.split("[", 1)[0]


def slow_tests(durations_report: str) -> list[str]:
    per_case: dict[str, float] = defaultdict(float)
    for line in durations_report.splitlines():
        m = _LINE.match(line.strip())
        if m:
            per_case[m.group(2)] += float(m.group(1))
    return sorted({base(case) for case, s in per_case.items() if s > THRESHOLD_S})


def main() -> None:
    old = set(LIST.read_text().split()) if LIST.exists() else set()
    new = slow_tests(sys.stdin.read())
    kept = sorted(old | set(new))  # a test once slow stays listed until removed by hand
    LIST.write_text("".join(f"{t}\n" for t in kept))
    print(f"{len(new)} slow now, {len(kept)} listed in {LIST}")


if __name__ == "__main__":
    main()
