from __future__ import annotations

from dataclasses import dataclass

import pytest

from lockgate.quality.checks import Dimension
from lockgate.quality.scores import check_score, compute_scores


@dataclass
class R:
    dimension: Dimension | str
    passed: bool
    failing_rows: int = 0
    row_level: bool = True
    fraction: float | None = None


def test_row_level_score_is_the_passing_fraction_regardless_of_threshold() -> None:
    assert check_score(R("validity", passed=True, failing_rows=3), 1000) == pytest.approx(0.997)
    assert check_score(R("validity", passed=False, failing_rows=3), 1000) == pytest.approx(0.997)
    assert check_score(R("validity", passed=False, failing_rows=1000), 1000) == 0.0


def test_table_level_score_is_one_or_zero() -> None:
    assert check_score(R("timeliness", passed=True, failing_rows=0, row_level=False), 10) == 1.0
    assert check_score(R("timeliness", passed=False, failing_rows=0, row_level=False), 10) == 0.0


def test_empty_batch_and_fraction_fallback_and_clamping() -> None:
    assert check_score(R("completeness", passed=True), 0) == 1.0
    assert check_score(R("completeness", passed=False, fraction=0.25)) == 0.75
    # a unique check can count more failing rows than there are (several keys): clamp
    assert check_score(R("uniqueness", passed=False, failing_rows=12), 10) == 0.0
    with pytest.raises(ValueError, match="total_rows"):
        check_score(R("completeness", passed=True))


def test_dimension_is_the_mean_of_its_checks_and_overall_the_mean_of_dimensions() -> None:
    results = [
        R(Dimension.COMPLETENESS, passed=True, failing_rows=0),
        R(Dimension.COMPLETENESS, passed=False, failing_rows=50),
        R(Dimension.COMPLETENESS, passed=True, failing_rows=10),
        R(Dimension.TIMELINESS, passed=False, row_level=False),
    ]
    scores = compute_scores(results, total_rows=100)
    assert list(scores) == ["completeness", "timeliness", "overall"]
    assert scores["completeness"] == pytest.approx((1.0 + 0.5 + 0.9) / 3)
    assert scores["timeliness"] == 0.0
    assert scores["overall"] == pytest.approx(0.8 / 2)


def test_weights() -> None:
    results = [R("validity", passed=True), R("accuracy", passed=False, failing_rows=10)]
    scores = compute_scores(results, total_rows=10, weights={"validity": 3})
    assert scores["overall"] == pytest.approx(0.75)
    only_validity = compute_scores(results, total_rows=10, weights={"accuracy": 0})
    assert only_validity["overall"] == 1.0 and only_validity["accuracy"] == 0.0
    assert "overall" not in compute_scores(
        results, total_rows=10, weights={"validity": 0, "accuracy": 0}
    )
    with pytest.raises(ValueError):
        compute_scores(results, total_rows=10, weights={"validity": -1})


def test_no_results_no_score() -> None:
    assert compute_scores([], total_rows=10) == {}


def test_scores_from_a_real_audit_result() -> None:
    import duckdb

    from lockgate.quality import audit, parse_checks

    con = duckdb.connect()
    con.execute("CREATE TABLE t AS SELECT range AS id, NULL::INTEGER AS x FROM range(10)")
    checks, problems = parse_checks(
        [
            {"type": "not_null", "column": "x"},  # 10 failing of 10
            {"type": "not_null", "column": "id"},  # clean
            {"type": "row_count", "min": 100},  # table-level, fails
        ]
    )
    assert problems == []
    result = audit(con, "t", [c for c in checks if c is not None])
    scores = compute_scores(result.results, total_rows=result.total_rows)
    assert scores == {
        "completeness": pytest.approx((0.0 + 1.0 + 0.0) / 3),
        "overall": pytest.approx(1 / 3),
    }
