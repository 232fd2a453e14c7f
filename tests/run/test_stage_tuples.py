"""The whole-batch and the partitioned stage tuples cannot drift apart unnoticed."""

from __future__ import annotations

from lockgate.runloop.step import PARTITION_COUNTERPARTS, PARTITION_STAGES, STAGES


def test_every_whole_batch_stage_runs_for_partitions_or_names_its_counterpart() -> None:
    missing = [
        s.__name__ for s in STAGES if s not in PARTITION_STAGES and s not in PARTITION_COUNTERPARTS
    ]
    assert not missing, f"stages without a partitioned counterpart: {missing}"


def test_counterparts_are_really_partition_stages_and_shared_stages_keep_their_order() -> None:
    for whole, part in PARTITION_COUNTERPARTS.items():
        assert whole in STAGES and whole not in PARTITION_STAGES, whole.__name__
        assert part is None or part in PARTITION_STAGES, whole.__name__
    shared = [s for s in STAGES if s in PARTITION_STAGES]
    assert shared == [s for s in PARTITION_STAGES if s in STAGES]
