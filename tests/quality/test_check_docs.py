"""docs/checks.md: generated from the check models, one runnable example per check type."""

from __future__ import annotations

from pathlib import Path

import pytest

import lockgate
from lockgate.quality import docs
from lockgate.quality.checks import CHECK_TYPES
from lockgate.quality.examples import EXAMPLE_NOW, EXAMPLES, example_project, run_example
from lockgate.quality.scores import compute_scores

DOC = Path(__file__).resolve().parents[2] / "docs" / "checks.md"


def test_every_check_type_has_a_documented_example() -> None:
    assert sorted(EXAMPLES) == sorted(CHECK_TYPES), "add an example to lockgate/quality/examples.py"
    text = DOC.read_text()
    for t in CHECK_TYPES:
        assert f'<a id="{t}"></a>' in text and f"### `{t}`" in text
        assert f"  - type: {t}\n" in text, f"no example of {t} in docs/checks.md"


def test_docs_checks_md_is_up_to_date() -> None:
    assert DOC.read_text() == docs.render(), f"regenerate: {docs.COMMAND}"


@pytest.mark.parametrize("check_type", sorted(EXAMPLES))
def test_example_gives_its_documented_result(check_type: str) -> None:
    ex = EXAMPLES[check_type]
    r = run_example(ex)
    assert (r.failing_rows, r.passed) == (ex.failing_rows, ex.passed)
    assert r.type == check_type


def test_every_example_validates_and_runs_in_a_project(tmp_path: Path) -> None:
    """Each example, attached to a dataset of its table, passes `lockgate validate` and a
    real run gives the documented outcome."""
    from lockgate.runloop.runner import run

    example_project(tmp_path)
    project = lockgate.load_project(tmp_path)
    result = run(project, now=EXAMPLE_NOW)
    steps = {s.dataset: s for s in result.steps}
    for t, ex in EXAMPLES.items():
        step = steps[f"ex_{t}"]
        assert step.status == "success", (t, step)
        (check,) = step.checks
        if ex.history:  # a fresh project has no earlier values: the anomaly check learns
            assert check["passed"] and check["message"].startswith("learning"), (t, check)
            continue
        assert (check["failing_rows"], check["passed"]) == (ex.failing_rows, ex.passed), t


def test_quality_score_section_matches_compute_scores() -> None:
    text = DOC.read_text()
    assert '<a id="quality-score"></a>' in text and "## Quality score" in text
    from types import SimpleNamespace as R

    scores = compute_scores(
        [
            R(dimension="completeness", passed=False, failing_rows=10, row_level=True),
            R(dimension="completeness", passed=True, failing_rows=0, row_level=True),
            R(dimension="validity", passed=False, failing_rows=30, row_level=True),
            R(dimension="timeliness", passed=False, failing_rows=1, row_level=False),
        ],
        total_rows=1000,
    )
    assert f"**{scores['overall']:.3f}**" in text
