"""Attacks on the deferred DLQ (:mod:`lockgate.streams.dlq`) with what the other tests do
not use: damaged / stray log files, settings changed between restarts, a log folder that
cannot be written, a kill after the DLQ commit before the log is removed, a second consumer.
Invariant each time: the DLQ holds every invalid event exactly once, never silently less."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from lockgate.engine import engine_for
from lockgate.errors import LockgateError, LockHeld
from lockgate.project.loader import load_project
from lockgate.state import StateStore
from lockgate.storage import store_for
from lockgate.storage.base import TableStore
from lockgate.streams.config import StreamSpec
from lockgate.streams.dlq import DeferredDlq, log_folder
from lockgate.streams.runner import StreamRunner
from lockgate.streams.service import run_stream, stream_lock_name
from lockgate.streams.sources import Batch
from tests.streams.conftest import (
    COLUMNS,
    dlq_rows,
    event,
    publish_redis,
    stream_def,
    write_project,
)
from tests.streams.test_partitioned import BATCHES, PartitionedConsumer
from tests.streams.test_redelivery import SeqConsumer

DLQ_OFFSETS = ["1:1", "1:2", "2:1"]  # BATCHES' invalid events


def _spec(**over: Any) -> StreamSpec:
    d: dict[str, Any] = {
        "name": "events",
        "source": {"type": "redis", "stream": "unused"},
        "columns": COLUMNS,
        "dedup": {"key": ["event_id"]},
        "checks": [{"type": "between", "column": "amount", "min": 0}],
        "sink": {"dataset": "events", "dlq_commit_every": 5},
    }
    d.update(over)
    return StreamSpec.model_validate(d)


def _run(store: TableStore, spec: StreamSpec, batches: Any = BATCHES) -> Any:
    with engine_for() as con:
        return StreamRunner(spec, PartitionedConsumer(batches), store, con).run(until_idle=True)


def _killed_before_dlq_commit(store: TableStore, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A run whose DLQ commits all fail (as a kill -9 there): the sink holds the three
    batches, the DLQ rows are only in the log. Returns the log folder."""
    real = store.publish

    def failing(name: str, *a: Any, **k: Any) -> Any:
        if name == "events__dlq":
            raise RuntimeError("killed before the DLQ commit")
        return real(name, *a, **k)

    monkeypatch.setattr(store, "publish", failing)
    with pytest.raises(RuntimeError, match="killed before the DLQ commit"):
        _run(store, _spec())
    monkeypatch.setattr(store, "publish", real)
    folder = log_folder(store, "events")
    assert folder is not None and len(list(folder.glob("*.arrow"))) == 2
    assert not dlq_rows(store)
    return folder


def _dlq_offsets(store: TableStore) -> list[str]:
    return sorted(store.read("events__dlq").column("offset").to_pylist())


def test_a_truncated_log_file_the_dlq_needs_is_a_clear_error_not_a_loss(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = store_for("delta", tmp_path / "wh")
    folder = _killed_before_dlq_commit(store, monkeypatch)
    first = sorted(folder.glob("*.arrow"))[0]
    first.write_bytes(first.read_bytes()[:40])  # truncated
    for _ in range(2):  # refused each time: the file is kept for a human to look at
        with pytest.raises(LockgateError, match="DLQ log file") as e:
            _run(store, _spec())
        assert first.name in str(e.value)
        assert first.exists() and not dlq_rows(store)


def test_a_damaged_log_file_the_dlq_does_not_need_is_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed after the DLQ commit, before the log is removed, and the file then damaged:
    nothing in it is needed (the DLQ is at the sink's position), so start goes on."""
    store = store_for("delta", tmp_path / "wh")
    folder = _killed_before_dlq_commit(store, monkeypatch)
    _run(store, _spec())  # recovers: the DLQ now at the sink's position
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "00000000-00000000000000000002-000000.arrow").write_bytes(b"ARROW1\x00\x00junk")
    assert _run(store, _spec()).counts.read == 0
    assert _dlq_offsets(store) == DLQ_OFFSETS and not list(folder.iterdir())


def test_a_stray_tmp_file_is_dropped_and_the_logged_rows_recovered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ``.tmp`` is a log file never renamed into place: its batch's sink commit did not
    happen (the batch is read again), so it is removed; the real files are recovered."""
    store = store_for("delta", tmp_path / "wh")
    folder = _killed_before_dlq_commit(store, monkeypatch)
    (folder / "00000009-00000000000000000009-000000.tmp").write_bytes(b"half")
    c = _run(store, _spec()).counts
    assert c.read == 0 and _dlq_offsets(store) == DLQ_OFFSETS and not list(folder.iterdir())


@pytest.mark.parametrize("every", [1, 2, 50])
def test_changing_dlq_commit_every_with_rows_in_the_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, every: int
) -> None:
    store = store_for("delta", tmp_path / "wh")
    _killed_before_dlq_commit(store, monkeypatch)
    more = [[(1, 3, b"{bad"), (0, 3, event(9))]]
    sink = {"dataset": "events", "dlq_commit_every": every}
    for _ in range(2):  # then a restart, changing nothing
        _run(store, _spec(sink=sink, checks=[]), BATCHES + more)  # checks changed too
    assert _dlq_offsets(store) == sorted([*DLQ_OFFSETS, "1:3"])
    ids = sorted(store.read("events").column("event_id").to_pylist())
    assert ids == ["e0", "e1", "e2", "e3", "e4", "e9"]


def test_killed_after_the_deferred_dlq_commit_before_the_log_is_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The DLQ commit lands, the log files stay (killed before their removal); two
    restarts changing nothing: each DLQ row once."""
    store = store_for("delta", tmp_path / "wh")
    real_clear = DeferredDlq._clear
    calls = {"n": 0}

    def killed(self: DeferredDlq) -> None:
        calls["n"] += 1
        raise RuntimeError("killed before the log is removed")

    monkeypatch.setattr(DeferredDlq, "_clear", killed)
    with pytest.raises(RuntimeError, match="killed before the log is removed"):
        _run(store, _spec())
    monkeypatch.setattr(DeferredDlq, "_clear", real_clear)
    folder = log_folder(store, "events")
    assert calls["n"] == 1 and folder is not None and list(folder.glob("*.arrow"))
    assert _dlq_offsets(store) == DLQ_OFFSETS
    for _ in range(2):
        assert _run(store, _spec()).counts.read == 0
        assert _dlq_offsets(store) == DLQ_OFFSETS
    assert not list(folder.iterdir())


def test_a_log_folder_that_cannot_be_written_commits_the_dlq_rows_at_once(
    tmp_path: Path,
) -> None:
    """The log cannot be written (here a file where its folder should be; a read-only
    path alike): the DLQ rows are committed before the sink commit instead (the old
    order), not lost and not a stream stuck on every batch."""
    store = store_for("delta", tmp_path / "wh")
    folder = log_folder(store, "events")
    assert folder is not None
    folder.parent.mkdir(parents=True)
    folder.write_text("not a folder")
    c = _run(store, _spec()).counts
    assert c.reconciles and (c.read, c.published, c.dlq) == (9, 5, 3)
    assert _dlq_offsets(store) == DLQ_OFFSETS
    assert _run(store, _spec()).counts.read == 0 and _dlq_offsets(store) == DLQ_OFFSETS


def test_a_log_left_by_a_reset_stream_is_not_committed(tmp_path: Path) -> None:
    """Tables dropped (a full-refresh-like reset) with a log file still there: its rows are
    of positions no table holds — not committed; the stream read again from the start."""
    wh = tmp_path / "wh"
    store = store_for("delta", wh)
    _run(store, _spec())
    folder = log_folder(store, "events")
    assert folder is not None
    logged = folder / "00000000-00000000000000000002-000000.arrow"
    table = pa.table(
        {
            "offset": ["1:7"],
            "seq": pa.array([7], pa.int64()),
            "payload": [b"stale"],
            "reason": ["parse"],
            "received_at": pa.array([0], pa.timestamp("us", tz="UTC")),
            "__lg_partition": pa.array([1], pa.int32()),
        }
    )
    with pa.OSFile(str(logged), "wb") as f, pa.ipc.new_file(f, table.schema) as w:
        w.write_table(table)
    for t in ("events", "events__dlq"):
        shutil.rmtree(wh / t)
    store = store_for("delta", wh)
    c = _run(store, _spec()).counts
    assert c.reconciles and (c.read, c.published, c.dlq) == (9, 5, 3)
    assert _dlq_offsets(store) == DLQ_OFFSETS  # no "1:7"


def test_a_partition_with_only_invalid_events_moves_and_is_dlq_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = store_for("delta", tmp_path / "wh")
    batches = [
        [(0, 0, event(0)), (1, 0, b"{bad"), (0, 1, event(1))],
        [(1, 1, event(5, amount=-1.0)), (0, 2, event(2))],
        [(1, 2, b"[]")],
    ]
    c = _run(store, _spec(), batches).counts
    assert c.reconciles and (c.read, c.published, c.dlq) == (6, 3, 3)
    assert store.txn_version("events", "stream:events:fake:1") == 3
    assert _run(store, _spec(), batches).counts.read == 0
    assert _dlq_offsets(store) == ["1:0", "1:1", "1:2"]


def test_a_dedup_window_over_a_restart_where_the_first_copy_went_to_the_dlq(
    tmp_path: Path,
) -> None:
    store = store_for("delta", tmp_path / "wh")
    _run(store, _spec(), [[(0, 0, event(1, amount=-1.0)), (0, 1, event(2))]])
    c = _run(store, _spec(), [[(0, 2, event(1)), (0, 3, event(2))]]).counts
    assert (c.read, c.published, c.duplicates) == (2, 1, 1)  # e1 valid first here; e2 dup
    assert sorted(store.read("events").column("event_id").to_pylist()) == ["e1", "e2"]
    assert _dlq_offsets(store) == ["0:0"]


def test_a_tokenized_dedup_key_over_a_restart(tmp_path: Path) -> None:
    """``tokenize`` (FF1) on the dedup key: the sink holds tokens; the window rebuilt from
    it at start still catches a copy, and no clear key is in the sink."""
    store = store_for("delta", tmp_path / "wh")
    spec = _spec(mask={"event_id": {"method": "tokenize"}})

    def ev(i: int) -> bytes:
        return event(i, event_id=f"4000-0000-0000-{i:04d}")

    first = _run(store, spec, [[(0, 0, ev(1)), (0, 1, ev(1)), (0, 2, ev(2))]]).counts
    assert (first.published, first.duplicates) == (2, 1)
    again = _run(store, spec, [[(0, 3, ev(2)), (0, 4, ev(3)), (0, 5, ev(3))]]).counts
    assert (again.published, again.duplicates) == (1, 2)
    ids = store.read("events").column("event_id").to_pylist()
    assert len(set(ids)) == 3 and not any(i.startswith("4000-0000-0000-") for i in ids)


class _BadSeqConsumer(SeqConsumer):
    """:class:`SeqConsumer` whose seqs in ``bad`` carry an unparsable payload."""

    def __init__(self, batches: Any, bad: set[int]) -> None:
        super().__init__(batches)
        self.bad = bad

    def fetch(self, max_events: int, wait_seconds: float) -> Batch:
        b = super().fetch(max_events, wait_seconds)
        seqs = b.seqs.to_pylist()
        payloads = [b"{bad" if s in self.bad else p for s, p in zip(seqs, b.payloads, strict=True)]
        return Batch(payloads, b.offsets, b.seqs) if len(b) else b


def test_a_redelivered_message_whose_dlq_row_is_only_in_the_log(tmp_path: Path) -> None:
    """JetStream redelivers (after ``ack_wait``) a batch whose invalid message is logged,
    not yet committed to the DLQ: it is already committed (the sink's position), not
    logged again — the DLQ holds it once."""
    store = store_for("delta", tmp_path / "wh")
    spec = _spec(dedup=None)
    consumer = _BadSeqConsumer([[1, 2, 3], [4, 5, 2, 3], [6]], bad={2})
    with engine_for() as con:
        runner = StreamRunner(spec, consumer, store, con)
        c = runner.run(until_idle=True).counts
        assert runner.dlq.commits == 1  # one deferred commit, at idle
    assert c.reconciles and (c.read, c.published, c.dlq, c.already_committed) == (8, 5, 1, 2)
    assert store.read("events__dlq").column("seq").to_pylist() == [2]


def test_a_second_consumer_refused_by_the_lease_leaves_the_log_alone(
    tmp_path: Path, redis_stream: str
) -> None:
    """While a consumer runs (holds the lease) with DLQ rows in its log, a second
    ``stream run`` is refused before it recovers (commits, removes) that log."""
    publish_redis(redis_stream, [event(0), b"{bad"])
    d = stream_def({"type": "redis", "stream": redis_stream}, sink={"dataset": "events"})
    project = load_project(write_project(tmp_path, [d]))
    store = store_for("delta", project.warehouse_path)
    folder = log_folder(store, "events")
    assert folder is not None
    folder.mkdir(parents=True)
    owned = folder / "00000000-00000000000000000001-000000.arrow"
    owned.write_bytes(b"the running consumer's")
    with (
        StateStore.open(project.state_url) as state,
        state.lock(stream_lock_name("streams_test", "events")),
        pytest.raises(LockHeld),
    ):
        run_stream(project, "events", until_idle=True)
    assert owned.read_bytes() == b"the running consumer's"
    owned.unlink()
    assert run_stream(project, "events", until_idle=True).counts.dlq == 1


def test_an_epoch_number_event_time_goes_to_the_dlq_with_its_reason(tmp_path: Path) -> None:
    """Documented: event times are ISO-8601 text; an epoch number (or its text) is a parse
    error, in the DLQ with the reason, never a wrong time in the sink."""
    store = store_for("delta", tmp_path / "wh")
    spec = _spec(event_time={"column": "ts", "allowed_lateness": "1m"})
    batch = [(0, 0, event(1)), (0, 1, event(2, ts=1767225600)), (0, 2, event(3, ts="1767225600"))]
    c = _run(store, spec, [batch]).counts
    assert c.reconciles and (c.published, c.dlq) == (1, 2)
    reasons = store.read("events__dlq").column("reason").to_pylist()
    assert all(r.startswith("parse: ") and ("ts" in r or "timestamp" in r) for r in reasons)
    assert store.read("events").column("event_id").to_pylist() == ["e1"]


def test_a_first_batch_all_invalid_killed_before_the_dlq_commit_then_restarts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The very first batch is wholly invalid (the sink is created empty, at its position),
    the DLQ commit never lands; restarts commit the logged rows once and read on."""
    store = store_for("delta", tmp_path / "wh")
    real = store.publish

    def failing(name: str, *a: Any, **k: Any) -> Any:
        if name == "events__dlq":
            raise RuntimeError("killed before the DLQ commit")
        return real(name, *a, **k)

    spec = _spec(dedup=None)
    monkeypatch.setattr(store, "publish", failing)
    with pytest.raises(RuntimeError, match="killed"), engine_for() as con:
        StreamRunner(spec, _BadSeqConsumer([[1, 2]], {1, 2}), store, con).run(until_idle=True)
    monkeypatch.setattr(store, "publish", real)
    assert store.read("events").num_rows == 0 and not dlq_rows(store)
    with engine_for() as con:
        for _ in range(2):  # the broker redelivers the batch (never acknowledged), and a new one
            r = StreamRunner(spec, _BadSeqConsumer([[1, 2], [3]], {1, 2}), store, con)
            assert r.dlq_done == {0: 2}  # recovered at start (the first time)
            counts = r.run(until_idle=True).counts
            assert counts.reconciles and counts.dlq == 0
    assert sorted(store.read("events__dlq").column("seq").to_pylist()) == [1, 2]
    assert store.read("events").column("event_id").to_pylist() == ["e3"]


def test_a_stray_folder_in_the_log_folder_does_not_stop_the_stream(tmp_path: Path) -> None:
    store = store_for("delta", tmp_path / "wh")
    folder = log_folder(store, "events")
    assert folder is not None
    (folder / "lost+found").mkdir(parents=True)
    for _ in range(2):
        assert _run(store, _spec()).counts.reconciles
    assert _dlq_offsets(store) == DLQ_OFFSETS


def test_a_tokenized_dedup_key_too_short_for_ff1_is_not_merged_with_another(
    tmp_path: Path,
) -> None:
    """``tokenize`` replaces a value FF1 cannot take (too few alphabet characters, others
    than separators) one way by as many pseudo-random digits: ``e1``…``e40`` have 100
    possible tokens, so distinct keys collide and, compared masked, distinct events were
    dropped as duplicates. Such a key cannot be deduplicated masked: the event goes to the
    DLQ with the reason, never silently merged."""
    store = store_for("delta", tmp_path / "wh")
    spec = _spec(mask={"event_id": {"method": "tokenize"}})
    batch = [(0, i, event(i)) for i in range(40)]
    batch.append((0, 40, event(7, event_id="4000-0000-0000-0007")))  # tokenizable: published
    c = _run(store, spec, [batch]).counts
    assert c.reconciles and c.duplicates == 0
    assert (c.published, c.dlq) == (1, 40)
    reasons = set(store.read("events__dlq").column("reason").to_pylist())
    assert reasons == {"dedup: key event_id cannot be tokenized (FF1) and kept apart"}
