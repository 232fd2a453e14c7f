"""The vectorised parse: good messages parse together, each bad one is rejected alone."""

from __future__ import annotations

import pyarrow as pa

from lockgate.engine import engine_for
from lockgate.streams.parse import arrow_schema, parse_json_batch
from tests.streams.conftest import COLUMNS, event


def _schema() -> pa.Schema:
    with engine_for() as con:
        return arrow_schema(con, COLUMNS)


def test_schema_comes_from_the_engine() -> None:
    s = _schema()
    assert s.field("user_id").type == pa.int64()
    assert pa.types.is_timestamp(s.field("ts").type)


def test_bad_messages_are_rejected_with_reasons_the_rest_parse() -> None:
    payloads = [
        event(0),
        b"{not json",
        event(2),
        event(3, user_id="abc"),  # wrong type
        b"",
        b"[1, 2]",  # not an object
        b'{"event_id": "big", "pad": "' + b"x" * 2000 + b'"}',
        event(7),
        b'{"event_id": "multi",\n "user_id": 8}',  # newlines inside one message are fine
    ]
    parsed = parse_json_batch(payloads, _schema(), max_bytes=1000)
    rejected = {r.index: r.reason for r in parsed.rejected}
    assert sorted(rejected) == [1, 3, 4, 5, 6]
    assert rejected[6].startswith("too large")
    assert rejected[4] == "empty message"
    assert all(rejected[i].startswith("parse:") for i in (1, 3, 5))
    assert parsed.indexes == [0, 2, 7, 8]
    assert parsed.table.column("event_id").to_pylist() == ["e0", "e2", "e7", "multi"]
    assert parsed.table.num_rows + len(parsed.rejected) == len(payloads)


def test_all_good_parses_in_one_go() -> None:
    parsed = parse_json_batch([event(i) for i in range(1000)], _schema(), max_bytes=10_000)
    assert parsed.table.num_rows == 1000 and not parsed.rejected
    assert parsed.table.column_names == list(COLUMNS)


def test_many_bad_messages_each_rejected_exactly() -> None:
    payloads = []
    bad = set()
    for i in range(2000):
        if i % 7 == 3:
            payloads.append(b'{"event_id": "x", oops}')
            bad.add(i)
        elif i % 11 == 5:
            payloads.append(event(i, amount="not a number"))
            bad.add(i)
        elif i % 13 == 6:
            payloads.append(b"42")
            bad.add(i)
        else:
            payloads.append(event(i))
    parsed = parse_json_batch(payloads, _schema(), max_bytes=10_000)
    assert {r.index for r in parsed.rejected} == bad
    assert parsed.indexes == [i for i in range(2000) if i not in bad]
    assert parsed.table.column("event_id").to_pylist() == [f"e{i}" for i in parsed.indexes]
