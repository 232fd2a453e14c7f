"""The pgoutput decoder against real server output (a logical-replication cluster of the
tests' own), and against malformed bytes."""

from __future__ import annotations

import struct
import uuid
from typing import Any

import pytest

from lockgate.sources._cdc_batch import collect
from lockgate.sources._pgoutput import (
    UNCHANGED,
    Begin,
    Commit,
    DecodeError,
    Delete,
    Ignored,
    Insert,
    Relation,
    Truncate,
    Update,
    decode,
    lsn_int,
    lsn_text,
    read_tuple,
)


def _peek(src: Any, slot: str, pub: str) -> list[bytes]:
    rows = src.execute(
        "SELECT data FROM pg_logical_slot_peek_binary_changes(%s, NULL, NULL, "
        "'proto_version', '1', 'publication_names', %s)",
        (slot, pub),
        binary=True,
    ).fetchall()
    return [bytes(r[0]) for r in rows]


@pytest.mark.postgres
@pytest.mark.slow
def test_every_message_kind_from_a_real_server(src: Any) -> None:
    slot = "dec_" + uuid.uuid4().hex[:8]
    src.execute("CREATE TABLE pt (id int PRIMARY KEY, name text, doc text, n numeric(6,2))")
    src.execute("CREATE TABLE full_t (a int, b text)")
    src.execute("ALTER TABLE full_t REPLICA IDENTITY FULL")
    src.execute("CREATE PUBLICATION dec_pub FOR TABLE pt, full_t")
    src.execute("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (slot,))
    big = src.execute(
        "SELECT string_agg(md5(random()::text), '') FROM generate_series(1, 100)"
    ).fetchone()[0]
    with src.transaction():
        src.execute("INSERT INTO pt VALUES (1, 'a', %s, 1.50), (2, NULL, NULL, NULL)", (big,))
        src.execute("INSERT INTO full_t VALUES (7, 'x')")
    src.execute("UPDATE pt SET name = 'b' WHERE id = 1")  # doc: unchanged TOAST
    src.execute("UPDATE pt SET id = 3 WHERE id = 2")  # key change: old key sent
    src.execute("DELETE FROM pt WHERE id = 3")
    src.execute("UPDATE full_t SET b = 'y'")  # FULL: whole old row
    src.execute("DELETE FROM full_t")
    src.execute("TRUNCATE pt")
    msgs = [decode(m) for m in _peek(src, slot, "dec_pub")]

    begins = [m for m in msgs if isinstance(m, Begin)]
    commits = [m for m in msgs if isinstance(m, Commit)]
    assert len(begins) == len(commits) == 7
    assert all(b.final_lsn == c.commit_lsn for b, c in zip(begins, commits, strict=True))
    assert all(c.end_lsn > c.commit_lsn for c in commits)
    assert [c.end_lsn for c in commits] == sorted(c.end_lsn for c in commits)
    rels = {m.name: m for m in msgs if isinstance(m, Relation)}
    assert rels["pt"].columns == ("id", "name", "doc", "n") and rels["pt"].key == (
        True,
        False,
        False,
        False,
    )
    assert rels["pt"].replica_identity == "d" and rels["full_t"].replica_identity == "f"
    assert rels["pt"].namespace == "public"
    inserts = [m for m in msgs if isinstance(m, Insert)]
    assert inserts[0].new == [b"1", b"a", big.encode(), b"1.50"]
    assert inserts[1].new == [b"2", None, None, None]
    updates = [m for m in msgs if isinstance(m, Update)]
    assert updates[0].old_kind == "" and updates[0].new[2] == UNCHANGED
    assert updates[1].old_kind == "K" and updates[1].old is not None
    assert updates[1].old[0] == b"2" and updates[1].new[0] == b"3"
    assert updates[2].old_kind == "O" and updates[2].old == [b"7", b"x"]
    deletes = [m for m in msgs if isinstance(m, Delete)]
    assert deletes[0].old_kind == "K" and deletes[0].old[0] == b"3"
    assert deletes[1].old_kind == "O" and deletes[1].old == [b"7", b"y"]
    (trunc,) = [m for m in msgs if isinstance(m, Truncate)]
    assert trunc.oids == (rels["pt"].oid,)

    # the batch view of the same messages: events, positions, TOAST filled in batch
    raw = _peek(src, slot, "dec_pub")
    batch = collect(raw, rels["pt"], ["id"], applied_lsn=None)
    assert batch.op == ["c", "c", "u", "d", "c", "d"]  # key change → delete + insert
    assert batch.values[2][2] == big.encode()  # 'u' took the insert's value
    assert batch.truncate_seq == 6 and batch.cut
    assert batch.end_lsn == commits[-1].end_lsn
    # after a crash: transactions the table holds are skipped by their end LSN
    again = collect(raw, rels["pt"], ["id"], applied_lsn=commits[2].end_lsn)
    assert again.skipped["already_applied"] == 5 and again.op == ["d"]
    src.execute("SELECT pg_drop_replication_slot(%s)", (slot,))


def test_lsn_round_trip() -> None:
    for text in ("0/0", "0/153B4C8", "16/B374D848", "FFFFFFFF/FFFFFFFF"):
        assert lsn_text(lsn_int(text)) == text


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty message"),
        (b"Z\x00", "unknown pgoutput message type 'Z'"),
        (b"I\x00\x00\x00\x01X\x00\x00", "insert: expected 'N'"),
        (b"D\x00\x00\x00\x01N\x00\x00", "delete: expected 'K' or 'O'"),
        (b"I\x00\x00\x00\x01N\x00\x01q", "unknown tuple value kind 'q'"),
    ],
)
def test_malformed_messages_are_decode_errors(data: bytes, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        decode(data)


def test_truncated_tuple_is_an_error_not_garbage() -> None:
    data = b"I" + struct.pack(">I", 1) + b"N" + struct.pack(">h", 1) + b"t" + struct.pack(">i", 9)
    with pytest.raises(DecodeError, match="runs past the end"):
        read_tuple(data, 6)


def test_ignored_messages() -> None:
    assert decode(b"Y\x00") == Ignored("Y")


@pytest.mark.postgres
@pytest.mark.slow
def test_vectorised_decoder_equals_the_exact_one(src: Any) -> None:
    from lockgate.sources._cdc_fast import collect_fast

    slot = "vec_" + uuid.uuid4().hex[:8]
    src.execute("CREATE TABLE v (id bigint PRIMARY KEY, c int, s text, n numeric(8,2))")
    src.execute("CREATE PUBLICATION vec_pub FOR TABLE v")
    src.execute("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (slot,))
    src.execute("INSERT INTO v SELECT g, g % 10, 'é' || g, g * 0.5 FROM generate_series(1, 3000) g")
    src.execute("UPDATE v SET s = NULL, c = c + 1 WHERE id % 3 = 0")
    src.execute("UPDATE v SET s = '' WHERE id % 5 = 0")
    src.execute("DELETE FROM v WHERE id % 7 = 0")
    raw = _peek(src, slot, "vec_pub")
    rel = next(m for m in map(decode, raw) if isinstance(m, Relation))
    for applied in (None, lsn_int("0/0"), None):
        exact = collect(raw, rel, ["id"], applied_lsn=applied)
        fast = collect_fast(raw, rel, ["id"], applied_lsn=applied)
        assert fast is not None
        assert [exact.column(i).to_pylist() for i in range(4)] == [
            fast.column(i).to_pylist() for i in range(4)
        ]
        assert list(exact.op) == list(fast.op) and list(exact.lsn) == list(fast.lsn)
        assert list(exact.commit_us) == list(fast.commit_us)
        assert (exact.end_lsn, exact.transactions, exact.skipped) == (
            fast.end_lsn,
            fast.transactions,
            fast.skipped,
        )
    second = sorted(set(exact.lsn))[1]
    assert (
        collect_fast(raw, rel, ["id"], applied_lsn=second).skipped
        == collect(  # type: ignore[union-attr]
            raw, rel, ["id"], applied_lsn=second
        ).skipped
    )
    # what only the exact decoder reads: a key change, an unchanged TOASTed value, truncate
    src.execute("UPDATE v SET id = -1 WHERE id = 1")
    assert collect_fast(_peek(src, slot, "vec_pub"), rel, ["id"], applied_lsn=None) is None
    src.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
