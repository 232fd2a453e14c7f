"""GTIDs next to the binlog position: the state's text forms (MariaDB, MySQL — the latter
untested against a server: only MariaDB is installed), its packing into application
transaction versions, and transactions skipped by GTID."""

from __future__ import annotations

import pytest

from lockgate.sources._binlog import BatchBuilder, TablePlan
from lockgate.sources._binlog_gtid import Gtids, pack, unpack

_UUID = "3e11fa47-71ca-11e1-9e33-c80aa9429562"


def test_pack_round_trips_any_state() -> None:
    for text in ("0-1-1", "0-11-12345678901234,7-2-3", f"{_UUID}:1-99,{_UUID[::-1]}:1-4"):
        chunks = pack(text)
        assert all(0 <= c < 2**56 for c in chunks)
        assert unpack(chunks) == text


def test_mariadb_and_mysql_states() -> None:
    g = Gtids.parse("0-1-5,1-2-3")
    g.add("0-12-6")  # a new primary writes the domain on
    g.add("1-2-2")  # older: no step back
    assert g.text() == "0-12-6,1-2-3"
    assert g.applied("0-1-6") and not g.applied("0-12-7") and not g.applied("2-1-1")
    m = Gtids.parse(f"{_UUID.upper()}:1-5:7-9")
    m.add(f"{_UUID}:10")
    assert m.text() == f"{_UUID}:1-10" and m.applied(f"{_UUID}:3")
    with pytest.raises(ValueError, match="not a GTID"):
        Gtids.parse("binlog.000001:4")


def test_transactions_at_or_before_the_gtid_are_skipped() -> None:
    plan = TablePlan("s", "t", ("id", "v"), ("int", "int"), ("id",))
    b = BatchBuilder(plan, applied=None, max_changes=100, gtids=Gtids.parse("0-1-5"))
    for seq, end in ((4, 100), (5, 200), (6, 300), (7, 400)):
        b.begin(0, group=True, gtid=f"0-1-{seq}")
        b.row_texts("c", [[str(seq), "x"]], 0)
        b.commit(end)
    out = b.finish()
    assert out.batch.skipped == {"already_applied": 2}
    assert out.cols[0] == ["6", "7"] and out.batch.end_lsn == 400
    assert out.read_to == 400 and out.gtids.text() == "0-1-7"


def test_connections_share_the_preferred_tls_context_only() -> None:
    """pymysql's default TLS ("preferred", verifying nothing) is built once per process,
    not per connection; explicit TLS settings still get their own context."""
    pytest.importorskip("pymysql")
    from lockgate.sources._binlog import connect

    a = connect(host="127.0.0.1", port=9, user="x", defer_connect=True)
    b = connect(host="127.0.0.1", port=9, user="y", defer_connect=True)
    assert a.ssl and not a._ssl_required  # still "preferred": TLS when the server has it
    assert a.ctx is b.ctx
    import ssl

    assert a.ctx.verify_mode == ssl.CERT_NONE  # as pymysql's own preferred context
    c = connect(host="127.0.0.1", port=9, user="z", ssl_verify_cert=True, defer_connect=True)
    assert c.ctx is not a.ctx and c.ctx.verify_mode == ssl.CERT_REQUIRED
