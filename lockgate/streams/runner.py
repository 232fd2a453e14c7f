"""Run a stream: pull micro-batches, parse, dedup, check, mask, commit exactly once, ack.

Per batch, in this order:

1. parse the messages together (:mod:`lockgate.streams.parse`); bad ones → DLQ rows;
2. skip what the tables already hold (after a crash the broker redelivers what was not
   acknowledged): a message whose ``seq`` is at or below the sink's application-transaction
   version is counted ``already_committed``;
3. dedup on ``dedup.key`` within ``dedup.window`` (state rebuilt from the sink at start);
4. the dataset checks (:func:`lockgate.quality.audit` + :func:`~lockgate.quality.gate` in
   ``quarantine`` mode): failing events → DLQ with the check names;
5. mask PII, then commit: the DLQ rows into ``<stream>__dlq``, then the events into the
   sink, each ONE Delta commit whose application transaction version is the batch's last
   ``seq`` and whose ``batch_id`` is the broker offset;
6. only then acknowledge the batch at the broker.

Every batch reconciles: ``read = published + dlq + duplicates + already_committed``.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp

from lockgate._duration import parse_duration
from lockgate.engine.base import Engine
from lockgate.quality import audit, gate
from lockgate.quality.compile import FAILED_CHECKS_COLUMN
from lockgate.sql import col, table_ref
from lockgate.storage.base import CommitTag, TableStore, TableWrite
from lockgate.storage.crashpoints import crashpoint
from lockgate.streams.config import StreamSpec
from lockgate.streams.dedup import DedupWindow
from lockgate.streams.mask import masked_query, register_key
from lockgate.streams.parse import arrow_schema, parse_json_batch
from lockgate.streams.sources import Message, StreamConsumer

#: columns lockgate adds to every stream sink row
OFFSET_COLUMN = "_lockgate_offset"
RECEIVED_COLUMN = "_lockgate_received_at"
#: the stream's dead-letter table: ``<stream>__dlq`` (raw bytes, offset, reason)
DLQ_SUFFIX = "__dlq"
_DLQ_WRITE = TableWrite("append", schema_mode="merge")
_BATCH = "__lg_stream_batch"
_TS = pa.timestamp("us", tz="UTC")
DLQ_SCHEMA = pa.schema(
    [
        ("offset", pa.string()),
        ("seq", pa.int64()),
        ("payload", pa.binary()),
        ("reason", pa.string()),
        ("received_at", _TS),
    ]
)


@dataclass
class BatchCounts:
    read: int = 0
    published: int = 0
    dlq: int = 0
    duplicates: int = 0
    already_committed: int = 0

    def add(self, other: BatchCounts) -> None:
        for f in ("read", "published", "dlq", "duplicates", "already_committed"):
            setattr(self, f, getattr(self, f) + getattr(other, f))

    @property
    def reconciles(self) -> bool:
        return self.read == self.published + self.dlq + self.duplicates + self.already_committed


@dataclass
class StreamReport:
    name: str
    batches: int = 0
    seconds: float = 0.0
    counts: BatchCounts = field(default_factory=BatchCounts)
    batch_seconds: list[float] = field(default_factory=list)

    @property
    def events_per_second(self) -> float:
        return self.counts.read / self.seconds if self.seconds > 0 else 0.0


@dataclass
class _Dlq:
    offsets: list[str] = field(default_factory=list)
    seqs: list[int] = field(default_factory=list)
    payloads: list[bytes] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)

    def add(self, m: Message, reason: str) -> None:
        self.offsets.append(m.offset)
        self.seqs.append(m.seq)
        self.payloads.append(m.payload)
        self.reasons.append(reason)

    def table(self, now: dt.datetime) -> pa.Table:
        n = len(self.offsets)
        arrays = [self.offsets, self.seqs, self.payloads, self.reasons, [now] * n]
        return pa.table(arrays, schema=DLQ_SCHEMA)


class StreamRunner:
    """Consume ``spec`` from ``consumer`` into ``store`` on engine ``con``."""

    def __init__(
        self, spec: StreamSpec, consumer: StreamConsumer, store: TableStore, con: Engine
    ) -> None:
        self.spec, self.consumer, self.store, self.con = spec, consumer, store, con
        self.sink = spec.sink.dataset
        self.schema = arrow_schema(con, spec.columns)
        self.rules = {c: spec.mask_rule(c) for c in spec.mask}
        if any(r.method == "hash" for r in self.rules.values()):
            register_key(con, spec.mask_key_env)
        self.done = self._txn(self.sink)
        self.dlq_name = spec.name + DLQ_SUFFIX
        self.dlq_done = self._txn(self.dlq_name)
        self.dedup = self._rebuild_dedup()
        self.write = TableWrite("append", partition_by=spec.sink.partition_by, schema_mode="merge")

    def _txn(self, table: str) -> int:
        snap = self.store.snapshot(table)
        return -1 if snap is None or snap.txn_version is None else snap.txn_version

    def _rebuild_dedup(self) -> DedupWindow | None:
        d = self.spec.dedup
        if d is None:
            return None
        window = DedupWindow(d.key, d.window_delta.total_seconds())
        if self.store.exists(self.sink):
            since = dt.datetime.now(dt.UTC) - d.window_delta
            rows = self.store.read(
                self.sink,
                columns=[*d.key, RECEIVED_COLUMN],
                filter=pc.field(RECEIVED_COLUMN) >= pa.scalar(since, _TS),
            ).sort_by(RECEIVED_COLUMN)
            times = [t.timestamp() for t in rows.column(RECEIVED_COLUMN).to_pylist()]
            for k, t in zip(window.keys(rows), times, strict=True):
                window.remember([k], t)
        return window

    # -- the loop ------------------------------------------------------------------------

    def run(
        self,
        *,
        until_idle: bool = False,
        max_seconds: float | None = None,
        on_batch: Callable[[BatchCounts], None] | None = None,
    ) -> StreamReport:
        report = StreamReport(self.spec.name)
        wait_s = parse_duration(self.spec.batch.max_latency).total_seconds()
        t0 = time.perf_counter()
        while max_seconds is None or time.perf_counter() - t0 < max_seconds:
            msgs = self.consumer.fetch(self.spec.batch.max_events, wait_s)
            if not msgs:
                if until_idle:
                    break
                continue
            tb = time.perf_counter()
            counts = self.process(msgs)
            report.batch_seconds.append(time.perf_counter() - tb)
            report.batches += 1
            report.counts.add(counts)
            if on_batch is not None:
                on_batch(counts)
        report.seconds = time.perf_counter() - t0
        return report

    def process(self, msgs: Sequence[Message]) -> BatchCounts:
        """One micro-batch, committed then acknowledged."""
        now = dt.datetime.now(dt.UTC)
        counts = BatchCounts(read=len(msgs))
        dlq = _Dlq()
        fresh = [m for m in msgs if m.seq > self.done]
        counts.already_committed = len(msgs) - len(fresh)
        parsed = parse_json_batch(
            [m.payload for m in fresh], self.schema, self.spec.max_message_bytes
        )
        for r in parsed.rejected:
            dlq.add(fresh[r.index], r.reason)
        table, rows = parsed.table, [fresh[i] for i in parsed.indexes]
        if self.dedup is not None and table.num_rows:
            keep = self.dedup.first_seen(table, now.timestamp())
            counts.duplicates = keep.count(False)
            table = table.filter(pa.array(keep))
            rows = [m for m, k in zip(rows, keep, strict=True) if k]
        table = table.append_column(OFFSET_COLUMN, pa.array([m.offset for m in rows]))
        table = table.append_column(RECEIVED_COLUMN, pa.array([now] * len(rows), _TS))
        good = self._check_and_mask(table, {m.offset: m for m in rows}, dlq)
        counts.dlq = len(dlq.offsets)
        counts.published = good.num_rows
        self._commit(msgs, good, dlq, now)
        crashpoint(f"stream {self.spec.name}: committed, not acknowledged")
        self.consumer.ack(msgs)
        return counts

    def _check_and_mask(
        self, table: pa.Table, by_offset: dict[str, Message], dlq: _Dlq
    ) -> pa.Table:
        columns = table.column_names
        if not self.rules and not (self.spec.checks and table.num_rows):
            return table
        self.con.register_arrow(_BATCH, table)
        created: list[str] = []
        try:
            source: exp.Select = _select_all(columns)
            if self.spec.checks and table.num_rows:
                result = audit(
                    self.con, _BATCH, self.spec.checks, mark=True, sample_size=0, dataset=self.sink
                )
                created = result.created_tables
                decision = gate(result, "quarantine")
                if decision.action == "block":
                    for m in by_offset.values():
                        dlq.add(m, "blocked: " + decision.reason)
                    return table.schema.empty_table()
                if decision.action == "publish_passing":
                    failing = self.con.arrow(result.failing_rows_query([OFFSET_COLUMN], decision))
                    for off, names in zip(
                        failing.column(OFFSET_COLUMN).to_pylist(),
                        failing.column(FAILED_CHECKS_COLUMN).to_pylist(),
                        strict=True,
                    ):
                        dlq.add(by_offset[off], "checks: " + ", ".join(names or []))
                    source = result.passing_rows_query(columns, decision)
            if not self.rules:
                return self.con.arrow(source)
            return self.con.arrow(masked_query(source, columns, self.rules))
        finally:
            self.con.drop(*created)
            self.con.unregister(_BATCH)

    def _commit(self, msgs: Sequence[Message], good: pa.Table, dlq: _Dlq, now: dt.datetime) -> None:
        last = max(msgs, key=lambda m: m.seq)
        tag = CommitTag(run_id=f"stream:{self.spec.name}", run_seq=last.seq, batch_id=last.offset)
        fresh_dlq = dlq.table(now).filter(pc.field("seq") > self.dlq_done)
        if fresh_dlq.num_rows:
            self.store.publish(self.dlq_name, fresh_dlq.to_reader(), write=_DLQ_WRITE, tag=tag)
            self.dlq_done = last.seq
        if good.num_rows:
            self.store.publish(self.sink, good.to_reader(), write=self.write, tag=tag)
            self.done = last.seq


def _select_all(columns: Sequence[str]) -> exp.Select:
    return exp.select(*[col(c) for c in columns]).from_(table_ref(_BATCH))
