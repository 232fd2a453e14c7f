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


def test_braced_but_bad_messages_still_go_through_the_exact_passes() -> None:
    """The cheap "{…}" pass only rejects what is surely not an object; messages that look
    like one but are not (two objects, an extra brace, bad UTF-8, wrong types) are found by
    the engine's json_valid pass and the row scan — with and without the engine, and with
    the fast path skipped (the previous batch had bad messages)."""
    payloads = [
        event(0),
        b'{"event_id": "a"} {"event_id": "b"}',  # two objects in one message
        b'{"event_id": "c"}}',  # a brace too many
        b' \t{"event_id": "spaced"}\r\n ',  # JSON whitespace around: fine
        b'\xff{"event_id": "d"}',  # not UTF-8
        event(5, user_id="abc"),  # braced, valid JSON, wrong type
        b"{oops",
        event(7),
    ]
    for con_on in (True, False):
        for expect_bad in (False, True):
            with engine_for() as con:
                parsed = parse_json_batch(
                    payloads,
                    _schema(),
                    max_bytes=10_000,
                    con=con if con_on else None,
                    expect_bad=expect_bad,
                )
            assert {r.index for r in parsed.rejected} == {1, 2, 4, 5, 6}, (con_on, expect_bad)
            assert parsed.table.column("event_id").to_pylist() == ["e0", "spaced", "e7"]
            assert parsed.indexes == [0, 3, 7]
