"""Run a stream: pull micro-batches, parse, dedup, check, mask, commit exactly once, ack.

Per batch, in this order:

1. parse the messages together (:mod:`lockgate.streams.parse`; done ahead on the I/O
   thread while the batch before commits); bad ones → DLQ rows;
2. skip what the tables already hold (after a crash the broker redelivers what was not
   acknowledged): a message whose ``seq`` is at or below the sink's application-transaction
   version is counted ``already_committed``;
3. dedup on ``dedup.key`` within ``dedup.window`` (state rebuilt from the sink at start):
   events whose key was published within the window are duplicates;
4. the dataset checks (:func:`lockgate.quality.audit` + :func:`~lockgate.quality.gate` in
   ``quarantine`` mode): failing events → DLQ with the check names; of the events that
   pass, the first of each key in the batch (broker order) is published, the others are
   duplicates — only a published event claims its key (:mod:`lockgate.streams.dedup`);
5. mask PII, then commit: the events into the sink, ONE Delta commit whose application
   transaction version is the batch's last ``seq`` and whose ``batch_id`` is the broker
   offset. The DLQ rows are logged first and committed to ``<stream>__dlq`` every few
   batches, one commit for many (:mod:`lockgate.streams.dlq`: exactly-once under kill -9);
6. only then acknowledge the batch at the broker.

Every batch reconciles: ``read = published + dlq + duplicates + already_committed``.

**Fencing.** The stream's lease (one consumer per stream, in the state store) is checked
before each commit, but a consumer paused right after that check (GC, swap, SIGSTOP, a
suspended VM) past its lease resumes *in* its commit while another consumer owns the stream:
a check before a commit can never make the commit safe. So every table the stream writes
carries a fencing token, checked by the commit itself:

- at start, before it reads any position, the consumer claims an *epoch* = 1 + the highest
  token its tables hold: one empty commit per existing table carrying the application
  transaction ``("stream:<name>:fence", epoch)``, refused if the table's token is already
  ``>= epoch`` (:meth:`~lockgate.storage.base.TableStore.claim_fence`). The DLQ table is
  claimed first and created (empty) when missing, so every claim raises that one table's
  token: no two consumers ever hold the same epoch. Positions, DLQ log, dedup window and
  watermark are read after the claim: nothing an older consumer commits can land unseen;
- every commit of the stream (sink, DLQ, late table, window aggregates) carries the same
  ``(app_id, epoch)`` transaction and is refused (``CommitFenced``) unless the table's token
  *is* ``epoch`` (checked on the table as loaded for the commit; a table that did not exist
  is created exclusively). Check and commit are atomic through Delta's optimistic
  concurrency: a commit is written against the version it read, and delta-rs refuses a
  transaction when a commit that landed after that version updated one of its application
  ids ("concurrent transaction") — a newer consumer's claim landing between the check and
  the commit makes the commit fail too.

A fenced consumer raises :class:`~lockgate.storage.errors.CommitFenced` and stops (the
CLI exits 3): it acknowledges nothing (acknowledgements follow the commit), and the new
consumer re-reads what it had fetched from the table's position. DLQ log files are named
with their epoch: a consumer recovers only the files of the epoch that committed the sink's
last batch (that commit's ``lockgate.epoch``) and removes only files of epochs up to its
own, so a fenced consumer neither feeds its rows to nor removes the log of a newer one
(:mod:`lockgate.streams.dlq`).

Cost per batch: one token lookup in the loaded table and one more action in the commit.
"""

from __future__ import annotations

import datetime as dt
import gc
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace

import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp

from lockgate._duration import parse_duration
from lockgate.engine.base import Engine
from lockgate.masking import masked_query, refuse_newly_masked, register_masking, tokenizable
from lockgate.quality import audit, gate
from lockgate.quality.compile import FAILED_CHECKS_COLUMN
from lockgate.quality.engine import CheckResult
from lockgate.sql import col, table_ref
from lockgate.storage.base import CommitTag, TableStore, TableWrite
from lockgate.storage.crashpoints import crashpoint
from lockgate.storage.errors import CommitFenced
from lockgate.streams.config import StreamSpec
from lockgate.streams.dedup import DedupWindow
from lockgate.streams.dlq import DLQ_SCHEMA, DeferredDlq, log_folder
from lockgate.streams.enrich import MISS_PREFIX, Enricher
from lockgate.streams.eventtime import Watermark
from lockgate.streams.parse import Parsed, arrow_schema, parse_json_batch
from lockgate.streams.report import BatchCounts, BatchDone, StreamReport
from lockgate.streams.sources import Batch, StreamConsumer
from lockgate.streams.windows import WindowAggregator

#: columns lockgate adds to every stream sink row
OFFSET_COLUMN = "_lockgate_offset"
RECEIVED_COLUMN = "_lockgate_received_at"
#: the stream's dead-letter table: ``<stream>__dlq`` (raw bytes, offset, reason)
DLQ_SUFFIX = "__dlq"
#: how many times a claim of the fencing token is tried with a higher epoch
_CLAIM_TRIES = 3
_BATCH = "__lg_stream_batch"
#: the row's index in its broker batch (internal: DLQ rows are taken by it)
_ROW = "__lg_row"
#: the event is late (``event_time.late: <dataset>``: routed there after checks and masking)
_LATE = "__lg_late"
_TS = pa.timestamp("us", tz="UTC")


@dataclass
class _Dlq:
    """DLQ rows of one batch, as batch row indexes and reasons (built into a table once)."""

    rows: list[int] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)

    def add(self, row: int, reason: str) -> None:
        self.rows.append(row)
        self.reasons.append(reason)

    def extend(self, rows: list[int], reason: str) -> None:
        self.rows.extend(rows)
        self.reasons.extend([reason] * len(rows))

    def __len__(self) -> int:
        return len(self.rows)

    def table(
        self, batch: Batch, now: dt.datetime, done: dict[int, int]
    ) -> tuple[pa.Table, pa.Array | None]:
        """The rows not yet in the DLQ table (its positions: ``done``), and their partitions."""
        idx = pa.array(self.rows, pa.int64())
        parts = None if batch.partitions is None else batch.partitions.take(idx)
        fresh = after(batch.seqs.take(idx), parts, done)
        if fresh is not None:
            idx = idx.filter(fresh)
            parts = None if parts is None else parts.filter(fresh)
        rows = idx.to_pylist()
        reasons = (
            self.reasons if fresh is None else pa.array(self.reasons).filter(fresh).to_pylist()
        )
        arrays = [
            batch.offsets.take(idx),
            batch.seqs.take(idx),
            pa.array([batch.payloads[i] for i in rows], pa.binary()),
            pa.array(reasons, pa.string()),
            pa.array([now] * len(rows), _TS),
        ]
        return pa.Table.from_arrays(arrays, schema=DLQ_SCHEMA), parts


class StreamRunner:
    """Consume ``spec`` from ``consumer`` into ``store`` on engine ``con``."""

    def __init__(
        self, spec: StreamSpec, consumer: StreamConsumer, store: TableStore, con: Engine
    ) -> None:
        self.spec, self.consumer, self.store, self.con = spec, consumer, store, con
        store.keep_written_tables()  # the stream's lease: it alone writes its tables
        self.sink = spec.sink.dataset
        #: the fencing token every commit carries (see the module's docstring)
        self.fence_id = fence_id(spec.name)
        self.epoch = self._claim()
        self.fence = (self.fence_id, self.epoch)
        self.schema = arrow_schema(con, spec.columns)
        self.rules = {c: spec.mask_rule(c) for c in spec.mask}
        register_masking(con, spec.mask_key_env, self.rules)
        #: per table: partition → last committed seq (the table's positions)
        self.done = self._positions(self.sink)
        self.dlq_name = spec.name + DLQ_SUFFIX
        self.dlq_done = self._positions(self.dlq_name)
        #: per table: its own transaction version, a commit counter (partitioned sources)
        self._commits: dict[str, int] = {}
        sink = spec.sink
        self.dlq = DeferredDlq(
            store,
            self.dlq_name,
            log_folder(store, spec.name),
            every=sink.dlq_commit_every,
            max_bytes=sink.dlq_buffer_bytes,
            epoch=self.epoch,
        )
        # DLQ rows of batches the sink holds and the DLQ does not (killed in between), from
        # the log files of the consumer that committed the sink's last batch
        snap = self.store.snapshot(self.sink)
        committer = snap.last_commit.epoch if snap and snap.last_commit else None
        self.dlq.recover(self.dlq_done, self.done, self._dlq_tag, committer)
        self.dedup = self._rebuild_dedup()
        self.enricher = Enricher(spec.enrich, store, con) if spec.enrich else None
        et = spec.event_time
        snap = self.store.snapshot(self.sink)
        committed = snap.last_commit.watermark if snap and snap.last_commit else None
        self.watermark = Watermark(et, committed) if et is not None else None
        self.late_name = et.late if et is not None and et.late != "dlq" else None
        for t in filter(None, (self.sink, self.late_name)):  # rows written clear before?
            refuse_newly_masked(store, t, self.rules, f"stream '{spec.name}'")
        self.late_done = self._positions(self.late_name) if self.late_name else {}
        self.write = TableWrite("append", partition_by=spec.sink.partition_by, schema_mode="merge")
        self.windows = [WindowAggregator(a, et.column, spec.name) for a in spec.aggregates] if (
            et is not None
        ) else []  # fmt: skip
        for w in self.windows:
            w.rebuild(store, self.sink)
        self.phases: dict[str, float] = {}
        #: called right before each commit and each fetch: raises to stop first (a lost
        #: stream lease; cheap: the commit itself is fenced, see the module's docstring)
        self.guard: Callable[[], None] | None = None
        self.lag: int | None = None
        self._checks: list[CheckResult] = []
        self._bad = False  # the last batch had bad messages: parse expecting some
        self._bad_ahead = False  # the same, for the I/O thread's parse (read ahead)
        #: the masking query per batch column list (built once)
        self._mask_queries: dict[tuple[str, ...], exp.Select] = {}

    def _claim(self) -> int:
        """Claim a new epoch on every existing table of the stream (before reading any
        position); a concurrent claim (a paused consumer resuming its own start) → higher.

        The DLQ table is claimed first and created (empty) when missing: every claim then
        commits a token ``>`` the one before to that one table, so no two consumers ever
        hold the same epoch — a table a consumer finds missing and creates later carries
        an epoch only it holds."""
        from lockgate.optimize import stream_tables

        dlq = self.spec.name + DLQ_SUFFIX
        others = [t for t in stream_tables(self.spec) if t != dlq and self.store.exists(t)]
        for attempt in range(_CLAIM_TRIES):
            held = [self.store.txn_version(t, self.fence_id) for t in (dlq, *others)]
            epoch = 1 + max((v for v in held if v is not None), default=0)
            try:
                self.store.claim_fence(dlq, self.fence_id, epoch, create=DLQ_SCHEMA)
                for t in others:
                    self.store.claim_fence(t, self.fence_id, epoch)
            except CommitFenced:
                if attempt + 1 == _CLAIM_TRIES:
                    raise
                continue
            return epoch
        raise AssertionError("unreachable")  # pragma: no cover

    def _txn(self, table: str) -> int:
        snap = self.store.snapshot(table)
        return -1 if snap is None or snap.txn_version is None else snap.txn_version

    def _positions(self, table: str) -> dict[int, int]:
        """Partition → last seq ``table`` holds: its own transaction version for a
        one-partition source; one transaction per partition (version = next seq) else."""
        if not self.consumer.PARTITIONED:
            return {0: self._txn(table)}
        out: dict[int, int] = {}
        if not self.store.exists(table):
            return out
        for p in self.consumer.partitions():
            v = self.store.txn_version(table, self.consumer.position_id(p))
            if v is not None:
                out[p] = v - 1
        return out

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
            )
            window.rebuild(rows, RECEIVED_COLUMN)
        return window

    # -- the loop ------------------------------------------------------------------------

    def run(
        self,
        *,
        until_idle: bool = False,
        max_seconds: float | None = None,
        on_batch: Callable[[BatchDone], None] | None = None,
        stop: threading.Event | None = None,
    ) -> StreamReport:
        """Fetch → process → commit → acknowledge until idle / ``max_seconds`` / ``stop``.

        The broker is talked to from one I/O thread: the next batch is fetched — and parsed,
        on the thread's own engine cursor — while this one is processed, and the
        acknowledgement is sent after the commit (both safe for exactly-once: nothing is
        acknowledged before its commit, and what was fetched or parsed but not committed is
        delivered again after a crash, from the table's position). ``batch.prefetch: false``
        fetches and parses each batch in turn."""
        _freeze_startup_heap()
        report = StreamReport(self.spec.name)
        wait_s = parse_duration(self.spec.batch.max_latency).total_seconds()
        max_events, prefetch = self.spec.batch.max_events, self.spec.batch.prefetch
        t0 = time.perf_counter()
        self.consumer.seek(self.done)

        def ending() -> bool:
            return _over(t0, max_seconds) or (stop is not None and stop.is_set())

        lag: Future[int | None] | None = None
        lag_at = float("-inf")
        # the I/O thread parses what it fetched (Arrow's parser runs without the GIL) while
        # this thread commits the batch before: on its own engine cursor (json_valid)
        ahead = self.con.cursor() if prefetch and self.con.SUPPORTS_CONCURRENT_CURSORS else None

        def fetch() -> _Fetched:
            # a consumer that lost its lease reads nothing more: a Redis group's cursor and a
            # JetStream durable are shared, and what a stale consumer reads (and never
            # commits: it is fenced) the new one would never be delivered. Checked in the I/O
            # thread, right before the read (a prefetch submitted before a pause is sent after)
            if self.guard is not None:
                self.guard()
            batch = self.consumer.fetch(max_events, wait_s)
            fetched = time.perf_counter()
            if not prefetch or not len(batch):
                return batch, None, fetched
            return batch, self._parse_ahead(batch, ahead), fetched

        try:
            with ThreadPoolExecutor(1, thread_name_prefix="lg-stream-io") as io:
                nxt: Future[_Fetched] = io.submit(fetch)
                while True:
                    tw = time.perf_counter()
                    batch, parsed, fetched = nxt.result()
                    if not len(batch):
                        self.flush_dlq()  # idle: the DLQ rows need not wait for more batches
                        if until_idle or ending():
                            break
                        nxt = io.submit(fetch)
                        continue
                    if parsed is not None:
                        crashpoint(f"stream {self.spec.name}: read ahead, not processed")
                    last = ending()
                    if not last and prefetch:  # the next one is fetched while this one is
                        nxt = io.submit(fetch)  # processed
                    tb = time.perf_counter()
                    commit0 = self.phases.get("commit", 0.0)
                    counts = self.process(batch, parsed)
                    done = time.perf_counter()
                    took = done - tb
                    report.batch_seconds.append(took)
                    report.fetch_seconds.append(tb - tw)
                    report.latency_seconds.append(done - fetched)
                    if not last and not prefetch:
                        nxt = io.submit(fetch)
                    io.submit(self.consumer.ack, batch)
                    if lag is None and tb - lag_at >= 1.0:  # the broker, at most once a second
                        lag, lag_at = io.submit(self.consumer.lag), tb
                    report.batches += 1
                    report.counts.add(counts)
                    if lag is not None and lag.done():
                        self.lag = lag.result() if lag.exception() is None else None
                        lag = None
                    if on_batch is not None:
                        commit_s = self.phases.get("commit", 0.0) - commit0
                        checks = self._checks
                        on_batch(
                            BatchDone(counts, checks, took, commit_s, batch.last_offset, self.lag)
                        )
                    if last:
                        break
        finally:
            if ahead is not None:
                ahead.close()
        self.flush_dlq()
        report.seconds = time.perf_counter() - t0
        report.phases = dict(self.phases)
        return report

    def _parse_ahead(self, batch: Batch, con: Engine | None) -> Parsed:
        """The whole batch parsed on the I/O thread (no side effect: a kill -9 before its
        commit loses nothing — the table's position has it read again)."""
        t = time.perf_counter()
        parsed = parse_json_batch(
            batch.payloads,
            self.schema,
            self.spec.max_message_bytes,
            con,
            expect_bad=self._bad_ahead,
        )
        self._bad_ahead = bool(parsed.rejected)
        self.phases["parse (read ahead)"] = (
            self.phases.get("parse (read ahead)", 0.0) + time.perf_counter() - t
        )
        return parsed

    def process(self, batch: Batch, parsed: Parsed | None = None) -> BatchCounts:
        """One micro-batch, parsed (``parsed``: all of it, ahead), checked and committed (the
        caller acknowledges it)."""
        now = dt.datetime.now(dt.UTC)
        counts = BatchCounts(read=len(batch))
        dlq = _Dlq()
        fresh_idx: list[int] | None
        counts.read += batch.redelivered
        counts.redelivered = batch.redelivered
        fresh = after(batch.seqs, batch.partitions, self.done)  # None: all (the common case)
        fresh_idx = None if fresh is None else pc.indices_nonzero(fresh).to_pylist()
        rows: list[int] | None = None
        t = self._clock("start")
        if parsed is not None:  # read ahead, all of it: keep the fresh messages' rows
            if fresh is not None:
                parsed = _only(parsed, fresh)
        elif fresh_idx is None:
            parsed = self._parse(batch.payloads)
        else:
            parsed = self._parse([batch.payloads[i] for i in fresh_idx])
            rows = fresh_idx
        counts.already_committed = len(batch) - (
            len(batch) if fresh_idx is None else len(fresh_idx)
        )
        t = self._clock("parse", t)
        at = (lambda i: i) if rows is None else rows.__getitem__
        for r in parsed.rejected:
            dlq.add(at(r.index), r.reason)
        table = parsed.table
        idx = parsed.rows if rows is None else pa.array(rows, pa.int64()).take(parsed.rows)
        # a masked key is compared on its masked values (the sink's, as the window rebuilt
        # at start holds them): after the masking, in one pass
        masked_key = self.dedup is not None and bool(self.rules.keys() & set(self.dedup.key))
        if masked_key and table.num_rows:
            table, idx = self._untokenizable(table, idx, dlq)
        if self.dedup is not None and table.num_rows and not masked_key:
            keep = self.dedup.unseen(table, now.timestamp())
            if keep is not None:
                table, idx = table.filter(keep), idx.filter(keep)
                counts.duplicates = len(keep) - table.num_rows
        t = self._clock("dedup", t)
        table = table.append_column(OFFSET_COLUMN, batch.offsets.take(idx))
        table = table.append_column(_ROW, idx)
        table = table.append_column(RECEIVED_COLUMN, pa.repeat(pa.scalar(now, _TS), table.num_rows))
        table = self._late(table, dlq)
        table = self._enrich(table, dlq, counts)
        t = self._clock("late+enrich", t)
        good = self._check_and_mask(table, dlq)
        t = self._clock("checks+mask", t)
        late = pa.table({})
        if _LATE in good.column_names:
            flag = good.column(_LATE)
            late = good.filter(flag)
            good = good.filter(pc.invert(flag))
        if self.dedup is not None and good.num_rows:
            passed = good.num_rows
            good = self._first_published(good, now, in_window=masked_key)
            counts.duplicates += passed - good.num_rows
        good = good.drop_columns([c for c in (_LATE, _ROW) if c in good.column_names])
        counts.dlq = len(dlq)
        counts.published = good.num_rows
        counts.late = late.num_rows
        if late.num_rows:  # rows a crashed run already committed there are not written twice
            rows = late.column(_ROW)
            parts = None if batch.partitions is None else batch.partitions.take(rows)
            fresh_late = after(batch.seqs.take(rows), parts, self.late_done)
            late = late if fresh_late is None else late.filter(fresh_late)
            late = late.drop_columns([_LATE, _ROW])
        self._commit(batch, good, late, dlq, now)
        self._clock("commit", t)
        crashpoint(f"stream {self.spec.name}: committed, not acknowledged")
        return counts

    def _parse(self, payloads: Sequence[bytes]) -> Parsed:
        parsed = parse_json_batch(
            payloads, self.schema, self.spec.max_message_bytes, self.con, expect_bad=self._bad
        )
        self._bad = bool(parsed.rejected)
        return parsed

    def _untokenizable(
        self, table: pa.Table, idx: pa.Array, dlq: _Dlq
    ) -> tuple[pa.Table, pa.Array]:
        """Events whose ``tokenize``-masked dedup key FF1 cannot take (too short, other
        characters): their one-way token may equal another key's, so compared masked two
        distinct events would merge — they go to the DLQ instead."""
        assert self.dedup is not None
        for c in self.dedup.key:
            rule = self.rules.get(c)
            if rule is None or rule.method != "tokenize":
                continue
            ok = tokenizable(table.column(c), rule.alphabet)
            if pc.all(ok).as_py():
                continue
            reason = f"dedup: key {c} cannot be tokenized (FF1) and kept apart"
            dlq.extend(idx.filter(pc.invert(ok)).to_pylist(), reason)
            table, idx = table.filter(ok), idx.filter(ok)
        return table, idx

    def _first_published(self, good: pa.Table, now: dt.datetime, *, in_window: bool) -> pa.Table:
        """Of the events that passed, the first of each key in broker order (the others are
        duplicates); their keys enter the window. ``in_window``: also drop the keys the
        window holds (not looked up before the checks: a masked key)."""
        assert self.dedup is not None
        rows = good.column(_ROW)
        if len(rows) > 1 and not pc.all(pc.less(rows[:-1], rows[1:])).as_py():
            good = good.sort_by(_ROW)
        keep = self.dedup.first_seen(good, now.timestamp(), unseen=not in_window)
        return good if pc.all(keep).as_py() else good.filter(keep)

    def _clock(self, phase: str, since: float | None = None) -> float:
        now = time.perf_counter()
        if since is not None:
            self.phases[phase] = self.phases.get(phase, 0.0) + now - since
        return now

    def _late(self, table: pa.Table, dlq: _Dlq) -> pa.Table:
        """Flag late events (``late: <dataset>``) or send them to the DLQ."""
        if self.watermark is None or not table.num_rows:
            return table
        late = self.watermark.late(table)
        if self.late_name is not None:
            return table.append_column(_LATE, late)
        if pc.any(late).as_py():
            dlq.extend(table.column(_ROW).filter(late).to_pylist(), self.watermark.reason())
            table = table.filter(pc.invert(late))
        return table

    def _enrich(self, table: pa.Table, dlq: _Dlq, counts: BatchCounts) -> pa.Table:
        """Join the reference columns; events without a match kept or sent to the DLQ."""
        if self.enricher is None or not table.num_rows:
            return table
        self.enricher.refresh(self.spec.name)
        self.con.register_arrow(_BATCH, table)
        try:
            out = self.con.arrow(self.enricher.query(_BATCH, table.column_names))
        finally:
            self.con.unregister(_BATCH)
        for i, e in enumerate(self.spec.enrich):
            miss = out.column(MISS_PREFIX + str(i))
            out = out.drop_columns([MISS_PREFIX + str(i)])
            if not pc.any(miss).as_py():
                continue
            if e.missing == "dlq":
                rows = out.column(_ROW).filter(miss).to_pylist()
                dlq.extend(rows, f"enrich: no match in {e.dataset} on {', '.join(e.keys)}")
                out = out.filter(pc.invert(miss))
            else:
                counts.enrich_missed += int(pc.sum(miss).as_py() or 0)
        return out

    def _check_and_mask(self, table: pa.Table, dlq: _Dlq) -> pa.Table:
        columns = table.column_names
        self._checks = []
        if not self.rules and not (self.spec.checks and table.num_rows):
            return table
        self.con.register_arrow(_BATCH, table)
        created: list[str] = []
        try:
            source: exp.Select = _select_all(columns)
            source_all = True  # no row failed: the source is the whole batch
            if self.spec.checks and table.num_rows:
                # optimistic: one counting pass; rows are marked only when some fail
                result = audit(
                    self.con, _BATCH, self.spec.checks, mark=False, sample_size=0, dataset=self.sink
                )
                decision = gate(result, "quarantine")
                if decision.action == "publish_passing":
                    result = audit(
                        self.con, _BATCH, self.spec.checks, mark=True, sample_size=0,
                        dataset=self.sink,
                    )  # fmt: skip
                    created = result.created_tables
                    decision = gate(result, "quarantine")
                self._checks = list(result.results)
                if decision.action == "block":
                    dlq.extend(table.column(_ROW).to_pylist(), "blocked: " + decision.reason)
                    return table.schema.empty_table()
                if decision.action == "publish_passing":
                    failing = self.con.arrow(result.failing_rows_query([_ROW], decision))
                    for row, names in zip(
                        failing.column(_ROW).to_pylist(),
                        failing.column(FAILED_CHECKS_COLUMN).to_pylist(),
                        strict=True,
                    ):
                        dlq.add(row, "checks: " + ", ".join(names or []))
                    source = result.passing_rows_query(columns, decision)
                    source_all = False
            if not self.rules:
                return self.con.arrow(source)
            if source_all:  # every row passed: only the masked columns go through the engine
                return self._masked(table)
            return self.con.arrow(masked_query(source, columns, self.rules))
        finally:
            self.con.drop(*created)
            self.con.unregister(_BATCH)

    def _masked(self, table: pa.Table) -> pa.Table:
        """``table`` (registered as the batch) with its masked columns replaced by their
        masked values: the other columns never make the round trip through the engine."""
        names = tuple(table.column_names)
        q = self._mask_queries.get(names)
        if q is None:
            lower = {r.lower() for r in self.rules}
            masked = [c for c in names if c.lower() in lower]
            q = masked_query(_select_all([*masked, _ROW]), [*masked, _ROW], self.rules)
            self._mask_queries[names] = q
        out = self.con.arrow(q)
        if not out.column(_ROW).equals(table.column(_ROW)):  # the engine may reorder rows
            out = out.sort_by(_ROW)
        for c in out.column_names[:-1]:
            table = table.set_column(table.schema.get_field_index(c), c, out.column(c))
        return table

    def _commit(
        self, batch: Batch, good: pa.Table, late: pa.Table, dlq: _Dlq, now: dt.datetime
    ) -> None:
        """Late events, then the sink: each one commit tagged with the batch's last position
        (a table already at or past it is not written again). The DLQ rows are logged before
        the sink commit and committed every few batches (:mod:`lockgate.streams.dlq`)."""
        if self.guard is not None:
            self.guard()
        tops = batch_tops(batch)
        if len(dlq):
            fresh_dlq, parts = dlq.table(batch, now, self.dlq_done)
            if fresh_dlq.num_rows and not self.dlq.stage(fresh_dlq, parts, self.dlq_name):
                # too many to defer: the buffer and these rows now, before the sink (old order)
                covered = dict(self.done)
                _advance(covered, tops)
                self.dlq.commit_now(fresh_dlq, self._dlq_tag(covered, batch.last_offset))
                _advance(self.dlq_done, covered)
        if late.num_rows and self.late_name is not None:
            tag = replace(self._tag(self.late_name, batch, tops), masked=tuple(self.rules))
            self.store.publish(self.late_name, late.to_reader(), write=self.write, tag=tag)
            _advance(self.late_done, tops)
        # the sink commits its position even without rows: a restart (or a rebalance) then
        # seeks past batches that went wholly to the DLQ or the late table, instead of reading
        # (and counting) them again
        if good.num_rows or _moves(self.done, tops):
            if not good.num_rows:  # may create the table: Delta knows no "Etc/UTC" (DuckDB's)
                good = _utc(good)
            tag = replace(self._tag(self.sink, batch, tops), masked=tuple(self.rules))
            if not good.num_rows and not self.consumer.PARTITIONED:  # makes the empty batch commit
                tag = replace(tag, positions=((f"stream:{self.spec.name}", batch.last_seq),))
            if self.watermark is not None:
                tag = replace(tag, watermark=self.watermark.advanced(good, now))
            self.store.publish(self.sink, good.to_reader(), write=self.write, tag=tag)
            _advance(self.done, tops)
            self._close_windows(good)
        if self.dlq.committed(batch.last_offset):
            self.flush_dlq()

    def flush_dlq(self) -> None:
        """Commit the buffered DLQ rows (idle, stopping, or due), at the sink's position."""
        if not len(self.dlq):
            return
        if self.guard is not None:
            self.guard()
        if self.dlq.flush(self._dlq_tag, self.done):
            _advance(self.dlq_done, self.done)

    def _dlq_tag(self, tops: dict[int, int], last_offset: str) -> CommitTag:
        """The DLQ commit's tag: the positions ``tops`` it covers (see :meth:`_tag`)."""
        run_id = f"stream:{self.spec.name}"
        if not self.consumer.PARTITIONED:
            seq = max(tops.values(), default=-1)
            return CommitTag(run_id=run_id, run_seq=seq, batch_id=last_offset, fence=self.fence)
        return self._partitioned_tag(self.dlq_name, tops, last_offset)

    def _close_windows(self, published: pa.Table) -> None:
        """Window aggregates: the sink's new events in, the windows the watermark closed
        out (each aggregate table one commit; its position = the newest closed end)."""
        if self.watermark is None:
            return
        for w in self.windows:
            w.add(published)
            closed = w.closed(self.watermark.value)
            if closed is not None:
                w.commit(self.store, closed[1], closed[0], self.fence)

    def _tag(self, table: str, batch: Batch, tops: dict[int, int]) -> CommitTag:
        """One-partition source: the table's transaction version is the batch's last seq.
        Partitioned: a commit counter, plus one position per partition (= next seq)."""
        run_id = f"stream:{self.spec.name}"
        if not self.consumer.PARTITIONED:
            return CommitTag(run_id, batch.last_seq, batch.last_offset, fence=self.fence)
        return self._partitioned_tag(table, tops, batch.last_offset)

    def _partitioned_tag(self, table: str, tops: dict[int, int], last_offset: str) -> CommitTag:
        seq = self._commits.get(table)
        seq = (self._txn(table) if seq is None else seq) + 1
        self._commits[table] = seq
        positions = tuple((self.consumer.position_id(p), s + 1) for p, s in sorted(tops.items()))
        return CommitTag(
            f"stream:{self.spec.name}", seq, last_offset, positions=positions, fence=self.fence
        )


def fence_id(stream: str) -> str:
    """The application-transaction id of stream ``stream``'s fencing token.

    >>> fence_id("events")
    'stream:events:fence'
    """
    return f"stream:{stream}:fence"


_Fetched = tuple[Batch, "Parsed | None", float]

_heap_frozen = threading.Event()


def _freeze_startup_heap() -> None:
    """Once per process, before the first batch: collect, then move every object alive
    (the modules, the project, the engine: ~120k objects) out of the cyclic collector's
    reach (:func:`gc.freeze`). Each full collection walked them again: those pauses were
    the slowest batches (p99 123-125 → 85-91 ms at 10k-event batches, load 2.6). What
    becomes garbage later is collected as ever."""
    if not _heap_frozen.is_set():
        _heap_frozen.set()
        gc.collect()
        gc.freeze()


def _only(parsed: Parsed, fresh: pa.BooleanArray) -> Parsed:
    """``parsed`` (of a whole batch) without the messages that are not ``fresh``."""
    keep = fresh.take(parsed.rows)
    rejected = [r for r in parsed.rejected if fresh[r.index].as_py()]
    return Parsed(parsed.table.filter(keep), parsed.rows.filter(keep), rejected)


def after(
    seqs: pa.Array, partitions: pa.Array | None, done: dict[int, int]
) -> pa.BooleanArray | None:
    """Per message: is it after its partition's committed seq in ``done`` (None: all are).

    >>> after(pa.array([3, 4, 5]), None, {0: 3}).to_pylist()
    [False, True, True]
    >>> after(pa.array([7, 1, 8]), pa.array([0, 1, 0], pa.int32()), {0: 7}).to_pylist()
    [False, True, True]
    """
    if not len(seqs):
        return None
    if partitions is None:
        floor: pa.Array | pa.Scalar = pa.scalar(done.get(0, -1), pa.int64())
    else:
        top = int(pc.max(partitions).as_py())
        lookup = [-1] * (top + 1)
        for p, s in done.items():
            if p <= top:
                lookup[p] = s
        floor = pa.array(lookup, pa.int64()).take(partitions)
    mask = pc.greater(seqs, floor)
    return None if pc.all(mask).as_py() else mask


def batch_tops(batch: Batch) -> dict[int, int]:
    """Partition → the batch's last seq in it."""
    if not len(batch):
        return {}
    if batch.partitions is None:
        return {0: batch.last_seq}
    t = pa.table({"p": batch.partitions, "s": batch.seqs}).group_by("p").aggregate([("s", "max")])
    return dict(zip(t.column("p").to_pylist(), t.column("s_max").to_pylist(), strict=True))


def _advance(done: dict[int, int], tops: dict[int, int]) -> None:
    for p, s in tops.items():
        done[p] = max(done.get(p, -1), s)


def _moves(done: dict[int, int], tops: dict[int, int]) -> bool:
    return any(s > done.get(p, -1) for p, s in tops.items())


def _over(t0: float, max_seconds: float | None) -> bool:
    return max_seconds is not None and time.perf_counter() - t0 >= max_seconds


def _utc(table: pa.Table) -> pa.Table:
    """``table`` with every zoned timestamp column in "UTC" (the same instants)."""
    fields = [
        f.with_type(pa.timestamp(f.type.unit, "UTC"))
        if pa.types.is_timestamp(f.type) and f.type.tz not in (None, "UTC")
        else f
        for f in table.schema
    ]
    schema = pa.schema(fields, metadata=table.schema.metadata)
    return table if schema == table.schema else table.cast(schema)


def _select_all(columns: list[str]) -> exp.Select:
    return exp.select(*[col(c) for c in columns]).from_(table_ref(_BATCH))
