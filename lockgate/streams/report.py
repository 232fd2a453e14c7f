"""What a stream's batches did: counts that reconcile (``read = published + late + dlq +
duplicates + already_committed + redelivered``), one committed batch, a whole consumption."""

from __future__ import annotations

from dataclasses import dataclass, field

from lockgate.quality.engine import CheckResult


@dataclass
class BatchCounts:
    """Where a batch's messages went: ``read = published + late + dlq + duplicates +
    already_committed + redelivered``; ``enrich_missed`` counts published events kept
    without a match."""

    read: int = 0
    published: int = 0
    late: int = 0
    dlq: int = 0
    duplicates: int = 0
    already_committed: int = 0
    #: delivered twice within one fetch (a rebalance re-sought the partition)
    redelivered: int = 0
    enrich_missed: int = 0

    def add(self, other: BatchCounts) -> None:
        for f in self.__dataclass_fields__:
            setattr(self, f, getattr(self, f) + getattr(other, f))

    @property
    def reconciles(self) -> bool:
        out = self.published + self.late + self.dlq + self.duplicates + self.already_committed
        return self.read == out + self.redelivered


@dataclass(frozen=True)
class BatchDone:
    """What one committed batch did (given to ``on_batch``: recording, metrics)."""

    counts: BatchCounts
    checks: list[CheckResult]
    seconds: float
    commit_seconds: float
    #: the broker position of the batch's last message
    offset: str
    #: messages not yet delivered, as the broker said last (None: unknown)
    lag: int | None


@dataclass
class StreamReport:
    name: str
    batches: int = 0
    seconds: float = 0.0
    counts: BatchCounts = field(default_factory=BatchCounts)
    batch_seconds: list[float] = field(default_factory=list)
    #: per batch: seconds waited for it to be fetched (0 when prefetched in time)
    fetch_seconds: list[float] = field(default_factory=list)
    #: per batch: seconds from its fetch's return to its commit (parse ahead, the wait for
    #: the batch before, processing): how long its events waited in this process
    latency_seconds: list[float] = field(default_factory=list)
    #: seconds spent per phase (parse, dedup, checks, commit…), summed over batches
    phases: dict[str, float] = field(default_factory=dict)
    #: the state-store runs that recorded this consumption
    runs: list[str] = field(default_factory=list)
    #: compactions between batches that failed (logged; the stream went on)
    compaction_errors: int = 0

    @property
    def events_per_second(self) -> float:
        return self.counts.read / self.seconds if self.seconds > 0 else 0.0
