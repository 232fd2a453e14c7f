"""Every ``mask:`` method on a real Redis stream: the sink holds no clear value, the
tokenized column turns back with the key, and counts reconcile."""

from __future__ import annotations

from pathlib import Path

import pytest

from lockgate.errors import ConfigError
from lockgate.masking import detokenize
from lockgate.project.loader import load_project
from lockgate.storage import store_for
from lockgate.streams.service import run_stream
from tests.streams.conftest import MASK_KEY, event, publish_redis, stream_def, write_project


def test_hash_tokenize_redact_partial_in_one_stream(tmp_path: Path, redis_stream: str) -> None:
    cards = [f"4000-0000-0000-{i:04d}" for i in range(20)]
    payloads = [
        event(i, event_id=cards[i], email=f"u{i}@example.com phone 555-{i:04d}") for i in range(20)
    ]
    publish_redis(redis_stream, payloads)
    mask = {
        "event_id": {"method": "tokenize"},
        "email": {"method": "redact", "pattern": r"\d{3}-\d{4}", "replace": "#"},
        "user_id_text": "partial",
    }
    columns = {"event_id": "VARCHAR", "email": "VARCHAR", "amount": "DOUBLE", "ts": "TIMESTAMP"}
    root = write_project(
        tmp_path,
        [stream_def({"type": "redis", "stream": redis_stream}, columns=columns, mask=mask)],
    )
    with pytest.raises(ConfigError, match="user_id_text"):  # masked but not declared
        load_project(root)
    del mask["user_id_text"]
    root = write_project(
        tmp_path,
        [stream_def({"type": "redis", "stream": redis_stream}, columns=columns, mask=mask)],
    )
    c = run_stream(load_project(root), "events", until_idle=True).counts
    assert c.reconciles and c.published == 20
    rows = store_for("delta", root / "warehouse").read("events").to_pylist()
    tokens = sorted(r["event_id"] for r in rows)
    assert sorted(detokenize(t, MASK_KEY) for t in tokens) == cards
    assert not set(tokens) & set(cards)
    assert all(r["email"].endswith(" phone #") and "555-" not in r["email"] for r in rows)
    blob = b"".join(f.read_bytes() for f in (root / "warehouse" / "events").rglob("*.parquet"))
    assert b"4000-0000-0000" not in blob and b"555-00" not in blob


def test_a_column_masked_after_the_sink_holds_it_clear_is_refused(
    tmp_path: Path, redis_stream: str
) -> None:
    """``mask:`` added to a stream whose sink already holds the column in the clear: going on
    would put hashes beside the clear values. The consumer refuses before reading anything
    (the events stay in the broker); a new sink takes them masked. Keeping the same mask, or
    masking fewer columns, goes on as ever."""
    import redis

    publish_redis(redis_stream, [event(i) for i in range(5)])
    source = {"type": "redis", "stream": redis_stream}
    root = write_project(tmp_path, [stream_def(source, mask={})])
    assert run_stream(load_project(root), "events", until_idle=True).counts.published == 5
    publish_redis(redis_stream, [event(i) for i in range(5, 9)])
    root = write_project(tmp_path, [stream_def(source, mask={"email": "hash"})])
    with pytest.raises(ConfigError, match="'email' written unmasked into table 'events'"):
        run_stream(load_project(root), "events", until_idle=True)
    client = redis.Redis()
    try:  # nothing was read: the group still has the 4 new events to deliver
        assert client.xinfo_groups(redis_stream)[0]["lag"] == 4
    finally:
        client.close()
    store = store_for("delta", root / "warehouse")
    assert store.read("events").num_rows == 5
    root = write_project(
        tmp_path, [stream_def(source, mask={"email": "hash"}, sink={"dataset": "events_masked"})]
    )
    c = run_stream(load_project(root), "events", until_idle=True).counts
    assert c.reconciles and c.published == 9  # the new sink starts from the stream's start
    assert not any("@" in e for e in store.read("events_masked").column("email").to_pylist())
    # the masked sink, restarted with the same mask (or more columns unmasked): goes on
    publish_redis(redis_stream, [event(i) for i in range(9, 11)])
    assert run_stream(load_project(root), "events", until_idle=True).counts.published == 2
