"""The fast tier's list of slow tests (tests/tier.py) and its use in conftest."""

from __future__ import annotations

from tests import tier
from tests.conftest import SLOW_TESTS


def test_slow_cases_make_their_whole_test_slow_and_fast_ones_are_left() -> None:
    report = "\n".join(
        [
            "============ slowest durations ============",
            "0.31s call     tests/a.py::test_big[case-1]",
            "0.01s call     tests/a.py::test_big[case-2]",
            "0.20s setup    tests/b.py::TestX::test_y",
            "0.10s call     tests/b.py::TestX::test_y",
            "0.05s call     tests/c.py::test_quick",
            "(12 durations < 0.005s hidden.)",
        ]
    )
    assert tier.slow_tests(report) == ["tests/a.py::test_big", "tests/b.py::TestX::test_y"]


def test_listed_tests_exist_as_written() -> None:
    # a listed id must name a test file that exists; a renamed file would silently
    # move its slow tests back into the fast tier
    from pathlib import Path

    root = Path(tier.__file__).parents[1]
    missing = (
        {t.split("::", 1)[0] for t in SLOW_TESTS}
        - {str(p.relative_to(root)) for p in root.glob("tests/**/*.py")}
        - {str(p.relative_to(root)) for p in root.glob("lockgate/**/*.py")}
    )
    assert not missing, missing
