"""``type: mysql_cdc`` end to end against a MariaDB of the tests' own writing a row-format
binlog: snapshot at the snapshot's binlog position, inserts/updates/deletes merged by key,
key changes, types (unsigned BIGINT, decimal, zero dates quarantined with the reason,
tinyint(1), json, enum/set, blobs, time), the position in the Delta commit, and clear errors
(no primary key, binlog settings, a purged binlog)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from deltalake import DeltaTable

import lockgate
from lockgate.runloop.follow import drain
from lockgate.sources._binlog import decode, encode, file_number
from tests.cdc.conftest import mysql_cdc_project

pytestmark = [pytest.mark.mysql, pytest.mark.slow]


@pytest.fixture(autouse=True)
def _env(my_db: tuple[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LG_CDC_MY_URL", my_db[0])


def _db(my_db: tuple[str, Any]) -> str:
    return my_db[0].rsplit("/", 1)[1]


def _sql(conn: Any, *statements: str) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    with conn.cursor() as cur:
        for s in statements:
            cur.execute(s)
            out = list(cur.fetchall())
    return out


def _table(root: Path, name: str) -> list[dict[str, Any]]:
    return DeltaTable(str(root / "warehouse" / name)).to_pyarrow_table().to_pylist()


def _position(root: Path, name: str) -> int | None:
    return DeltaTable(str(root / "warehouse" / name)).transaction_version("cdc:lg_" + name)


def _master(conn: Any) -> int:
    (row,) = _sql(conn, "SHOW MASTER STATUS")
    return encode(row[0], int(row[1]))


def _run(root: Path) -> list[Any]:
    results = drain(lambda refresh: lockgate.run(root, max_workers=1, full_refresh=refresh))
    for result in results:
        for step in result.steps:
            assert str(step.status) in ("success", "noop"), (step.dataset, step.error)
            assert step.rows_in == step.rows_out + step.rows_quarantined + step.rows_skipped
    return results


def test_snapshot_then_changes_merge_by_key(my_db: tuple[str, Any], tmp_path: Path) -> None:
    _, conn = my_db
    _sql(
        conn,
        "CREATE TABLE items (id int PRIMARY KEY, name varchar(20), qty int, "
        "price decimal(10,2), at datetime(3), raw varbinary(8))",
        "INSERT INTO items VALUES (1,'a',1,1.50,'2024-01-01 10:00:00.123',0x00ff),"
        "(2,'b',2,2.50,NULL,NULL),(3,'c',3,3.50,NULL,NULL)",
    )
    root = mysql_cdc_project(tmp_path / "p", _db(my_db), {"items": ["id"]})
    first = _run(root)[0].steps[0]
    assert first.rows_out == 3
    rows = {r["id"]: r for r in _table(root, "items")}
    assert rows[1]["raw"] == b"\x00\xff" and rows[1]["price"] == Decimal("1.50")
    assert str(rows[1]["at"]) == "2024-01-01 10:00:00.123000"
    assert {r["_lg_op"] for r in rows.values()} == {"r"}
    assert _position(root, "items") == _master(conn)

    _sql(
        conn,
        "INSERT INTO items VALUES (4,'d',4,4.00,NULL,0x01)",
        "UPDATE items SET qty = 40 WHERE id = 4",
        "UPDATE items SET id = 5 WHERE id = 4",  # a key change
        "DELETE FROM items WHERE id = 1",
        "UPDATE items SET name = 'B' WHERE id = 2",
    )
    second = _run(root)[0].steps[0]
    assert second.skip_reasons.get("superseded_in_batch") == 2  # the insert, the update of 4
    rows = {r["id"]: r for r in _table(root, "items")}
    assert set(rows) == {2, 3, 5}
    assert rows[5]["qty"] == 40 and rows[5]["raw"] == b"\x01" and rows[5]["_lg_op"] == "c"
    assert rows[2]["name"] == "B" and rows[2]["_lg_op"] == "u"
    assert _position(root, "items") == _master(conn)
    assert rows[2]["_lg_lsn"] == _position(root, "items")  # the transaction's end position
    again = _run(root)[0].steps[0]  # nothing new
    assert str(again.status) == "noop" or again.rows_out == 0


def test_types_and_zero_dates(my_db: tuple[str, Any], tmp_path: Path) -> None:
    _, conn = my_db
    _sql(
        conn,
        "SET SESSION sql_mode = ''",
        "CREATE TABLE ty (id bigint unsigned PRIMARY KEY, d decimal(30,10), flag tinyint(1), "
        "doc json, day date, ts timestamp NULL DEFAULT NULL, e enum('x','y'), s set('p','q','r'), "
        "f float, dbl double, tm time, bits bit(5), b blob, u int unsigned)",
        "INSERT INTO ty VALUES (18446744073709551615, 12345678901234567890.0123456789, 1, "
        "'{\"k\": [1, 2]}', '2024-02-29', '2024-01-01 00:00:01', 'y', 'r,p', 1.1, 0.1, "
        "'23:59:58', b'10101', 0xdeadbeef, 4294967295)",
        "INSERT INTO ty (id, day) VALUES (2, '0000-00-00')",  # a zero date: quarantined
    )
    root = mysql_cdc_project(tmp_path / "p", _db(my_db), {"ty": ["id"]})
    snap = _run(root)[0].steps[0]
    assert (snap.rows_out, snap.rows_quarantined) == (1, 1)
    _sql(
        conn,
        "SET SESSION sql_mode = ''",
        "INSERT INTO ty VALUES (18446744073709551614, -0.0000000001, 2, '[]', '1999-12-31', "
        "'2038-01-19 03:14:07', 'x', '', 3.25, -1e300, '00:00:00', b'0', '', 0)",
        "INSERT INTO ty (id, day) VALUES (3, '0000-00-00')",
        "INSERT INTO ty (id, ts) VALUES (4, '0000-00-00 00:00:00')",
        "INSERT INTO ty (id, tm) VALUES (5, '-838:59:59')",  # beyond DuckDB's TIME
    )
    step = _run(root)[0].steps[0]
    assert (step.rows_out, step.rows_quarantined) == (1, 3)
    rows = {r["id"]: r for r in _table(root, "ty")}
    big, other = rows[18446744073709551615], rows[18446744073709551614]
    assert big["d"] == Decimal("12345678901234567890.0123456789")
    assert other["d"] == Decimal("-0.0000000001")
    assert (big["flag"], other["flag"]) == (1, 2)  # tinyint(1) holds more than booleans
    assert json.loads(big["doc"]) == {"k": [1, 2]} and json.loads(other["doc"]) == []
    assert str(big["day"]) == "2024-02-29" and str(other["day"]) == "1999-12-31"
    assert str(big["ts"]) == "2024-01-01 00:00:01+00:00"
    assert str(other["ts"]) == "2038-01-19 03:14:07+00:00"
    assert (big["e"], big["s"], other["s"]) == ("y", "p,r", "")
    assert big["f"] == pytest.approx(1.1) and other["dbl"] == -1e300 and big["dbl"] == 0.1
    assert (str(big["tm"]), str(other["tm"])) == ("23:59:58", "00:00:00")
    assert (big["bits"], big["b"], big["u"]) == (21, b"\xde\xad\xbe\xef", 4294967295)
    assert other["b"] == b"" and other["u"] == 0
    q = _table(root, "ty__quarantine")
    reasons = {int(json.loads(r["_lg_raw_record"])["id"]): r["_lg_reason"] for r in q}
    assert sorted(reasons) == [2, 3, 4, 5]
    assert "column day (date): value '0000-00-00'" in reasons[2] and reasons[2] == reasons[3]
    assert "column ts (timestamp): value '0000-00-00 00:00:00+00'" in reasons[4]
    assert "column tm (time): value '-838:59:59'" in reasons[5]
    assert all(r["_lg_line"] == json.loads(r["_lg_raw_record"])["_lg_lsn"] for r in q)


def test_no_primary_key_is_a_clear_error(my_db: tuple[str, Any], tmp_path: Path) -> None:
    _, conn = my_db
    _sql(conn, "CREATE TABLE nokey (a int, b text)", "INSERT INTO nokey VALUES (1, 'x')")
    root = mysql_cdc_project(tmp_path / "p", _db(my_db), {"nokey": ["a"]})
    step = lockgate.run(root).steps[0]
    assert str(step.status) == "failed"
    assert "has no primary key" in (step.error or "") and "ADD PRIMARY KEY" in (step.error or "")
    assert not (root / "warehouse" / "nokey").exists()  # nothing was read or published


def test_keys_must_be_the_primary_key(my_db: tuple[str, Any], tmp_path: Path) -> None:
    _, conn = my_db
    _sql(conn, "CREATE TABLE k (id int PRIMARY KEY, code int UNIQUE)")
    root = mysql_cdc_project(tmp_path / "p", _db(my_db), {"k": ["code"]})
    step = lockgate.run(root).steps[0]
    assert str(step.status) == "failed" and "differ from the primary key" in (step.error or "")


def test_binlog_settings_are_checked(my_db: tuple[str, Any], tmp_path: Path) -> None:
    _, conn = my_db
    _sql(conn, "CREATE TABLE m (id int PRIMARY KEY)")
    root = mysql_cdc_project(tmp_path / "p", _db(my_db), {"m": ["id"]})
    _sql(conn, "SET GLOBAL binlog_row_metadata = 'MINIMAL'")
    try:
        step = lockgate.run(root).steps[0]
    finally:
        _sql(conn, "SET GLOBAL binlog_row_metadata = 'FULL'")
    assert str(step.status) == "failed"
    assert "binlog_row_metadata = FULL" in (step.error or "")
    _sql(conn, "SET GLOBAL log_bin_compress = ON")  # its events would be unreadable: refused
    try:
        step = lockgate.run(root).steps[0]
    finally:
        _sql(conn, "SET GLOBAL log_bin_compress = OFF")
    assert str(step.status) == "failed"
    assert "cannot read compressed binlog events (log_bin_compress = ON)" in (step.error or "")
    assert not (root / "warehouse" / "m").exists()


def test_purged_binlog_says_how_to_recover(my_db: tuple[str, Any], tmp_path: Path) -> None:
    _, conn = my_db
    _sql(conn, "CREATE TABLE g (id int PRIMARY KEY)", "INSERT INTO g VALUES (1)")
    root = mysql_cdc_project(tmp_path / "p", _db(my_db), {"g": ["id"]})
    _run(root)
    number, _ = decode(_position(root, "g") or 0)
    # the change after the table's GTID is in a file purged too: nothing can resume
    _sql(conn, "FLUSH BINARY LOGS", "INSERT INTO g VALUES (2)", "FLUSH BINARY LOGS")
    (current,) = _sql(conn, "SHOW MASTER STATUS")
    _purge_to(conn, current[0])
    assert file_number(current[0]) > number + 1
    step = lockgate.run(root).steps[0]
    assert str(step.status) == "failed"
    assert "purged" in (step.error or "") and "--full-refresh" in (step.hint or "")
    lockgate.run(root, full_refresh=True)
    assert sorted(r["id"] for r in _table(root, "g")) == [1, 2]


def _purge_to(conn: Any, name: str) -> None:
    """PURGE BINARY LOGS TO ``name``, until it took (a binlog reader of an earlier run may
    linger on the server a moment, holding its file)."""
    import time

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        _kill_dumps(conn)
        _sql(conn, f"PURGE BINARY LOGS TO '{name}'")
        if min(file_number(r[0]) for r in _sql(conn, "SHOW BINARY LOGS")) == file_number(name):
            return
        time.sleep(0.05)  # polling the server's state, not racing: the result is checked
    threads = _sql(conn, "SELECT id, command, state FROM information_schema.processlist")
    raise AssertionError(f"PURGE TO '{name}' left {_sql(conn, 'SHOW BINARY LOGS')}: {threads}")


def test_purged_position_file_resumes_by_gtid(my_db: tuple[str, Any], tmp_path: Path) -> None:
    """The file of the table's position is purged, but every change after the table's GTID
    is still in the log: the run resumes by GTID (no gap, nothing twice) and records a
    position in the file that is there."""
    _, conn = my_db
    _sql(conn, "CREATE TABLE h (id int PRIMARY KEY)", "INSERT INTO h VALUES (1)")
    root = mysql_cdc_project(tmp_path / "p", _db(my_db), {"h": ["id"]})
    _run(root)
    number, _ = decode(_position(root, "h") or 0)
    _sql(conn, "FLUSH BINARY LOGS", "INSERT INTO h VALUES (2)", "UPDATE h SET id = 3 WHERE id = 1")
    (current,) = _sql(conn, "SHOW MASTER STATUS")
    _purge_to(conn, current[0])
    assert number not in {file_number(r[0]) for r in _sql(conn, "SHOW BINARY LOGS")}
    step = _run(root)[0].steps[0]
    assert step.rows_in == 3 and not step.rows_skipped  # insert, and the key change (d + c)
    assert sorted(r["id"] for r in _table(root, "h")) == [2, 3]
    assert decode(_position(root, "h") or 0)[0] == file_number(current[0])


def _kill_dumps(conn: Any) -> None:
    dumps = _sql(conn, "SELECT id FROM information_schema.processlist WHERE command LIKE 'Binlog%'")
    for (thread,) in dumps:
        try:
            _sql(conn, f"KILL {int(thread)}")
        except Exception as e:  # it ended on its own meanwhile: "Unknown thread id"
            assert "1094" in str(e) or "Unknown thread" in str(e), e


def test_ddl_mid_stream_goes_through_the_schema_contract(
    my_db: tuple[str, Any], tmp_path: Path
) -> None:
    """Columns added and dropped between changes: each batch is read with the columns the
    log had then (not the catalog's, which is already newer); the contract sees the drift:
    ``freeze`` stops before the first changed batch (nothing skipped), ``evolve`` goes on."""
    _, conn = my_db
    _sql(
        conn,
        "CREATE TABLE dd (id int PRIMARY KEY, a varchar(10))",
        "INSERT INTO dd VALUES (1, 'p')",
    )
    root = mysql_cdc_project(tmp_path / "p", _db(my_db), {"dd": ["id"]})
    ds = root / "datasets" / "main.yaml"
    ds.write_text(ds.read_text().replace("  write:", "  schema_policy: freeze\n  write:", 1))
    _run(root)
    _sql(
        conn,
        "INSERT INTO dd VALUES (2, 'x')",
        "ALTER TABLE dd ADD COLUMN b int",
        "INSERT INTO dd VALUES (3, 'y', 5)",
        "UPDATE dd SET b = 6 WHERE id = 1",
        "ALTER TABLE dd DROP COLUMN a",
        "INSERT INTO dd VALUES (4, 7)",
    )
    first = lockgate.run(root, max_workers=1).steps[0]
    assert str(first.status) == "success" and first.more_available  # up to the ALTER
    frozen = lockgate.run(root, max_workers=1).steps[0]
    assert str(frozen.status) == "failed" and "added column 'b'" in (frozen.error or "")
    held = _position(root, "dd")
    assert sorted(r["id"] for r in _table(root, "dd")) == [1, 2]
    ds.write_text(ds.read_text().replace("schema_policy: freeze", "schema_policy: evolve"))
    _run(root)
    rows = {r["id"]: r for r in _table(root, "dd")}
    assert (held or 0) < (_position(root, "dd") or 0)
    # a and b as the source had them when each row last changed; 'a' is gone from the source
    assert {k: (v["b"]) for k, v in rows.items()} == {1: 6, 2: None, 3: 5, 4: 7}
    assert (rows[3]["a"], rows[4]["a"]) == ("y", None)
    assert _position(root, "dd") == _master(conn)


def test_idle_table_moves_past_other_tables_binlog(my_db: tuple[str, Any], tmp_path: Path) -> None:
    """No change of the table while other tables write the binlog: once heartbeat_bytes
    behind, an empty commit moves the table's position past it (later runs do not read it
    again); a change after that is still read."""
    _, conn = my_db
    _sql(
        conn,
        "CREATE TABLE quiet (id int PRIMARY KEY)",
        "CREATE TABLE busy (id int PRIMARY KEY, v text)",
        "INSERT INTO quiet VALUES (1)",
    )
    root = mysql_cdc_project(tmp_path / "p", _db(my_db), {"quiet": ["id"]}, heartbeat_bytes=8192)
    _run(root)
    start, version = (
        _position(root, "quiet"),
        DeltaTable(str(root / "warehouse" / "quiet")).version(),
    )
    _sql(conn, "INSERT INTO busy VALUES (1, 'x')")  # a few hundred bytes: under the threshold
    _run(root)
    assert DeltaTable(str(root / "warehouse" / "quiet")).version() == version
    assert _position(root, "quiet") == start
    for i in range(2, 40):
        _sql(conn, f"INSERT INTO busy VALUES ({i}, REPEAT('x', 500))")
    _run(root)
    assert _position(root, "quiet") == _master(conn)  # moved past all of it
    _sql(conn, "INSERT INTO quiet VALUES (2)")
    _run(root)
    assert sorted(r["id"] for r in _table(root, "quiet")) == [1, 2]
    assert _position(root, "quiet") == _master(conn)


def test_own_row_decoder_matches_the_library(
    my_db: tuple[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The row images decoded by ``_binlog_rows`` give exactly the texts the library's
    objects give, for random values of every type it handles (NULLs, negative decimals of
    several sizes, zero and fractional dates, UTF-8/latin1/binary strings), with updates
    (key changes too) and deletes."""
    import random

    from lockgate.sources._binlog import TablePlan, read

    url, conn = my_db
    db = _db(my_db)
    cols = {
        "id": "int", "ti": "tinyint", "tu": "tinyint unsigned", "sm": "smallint",
        "md": "mediumint", "mu": "mediumint unsigned", "bu": "bigint unsigned",
        "d1": "decimal(5,2)", "d2": "decimal(30,10)", "d3": "decimal(9,0)", "d4": "decimal(4,4)",
        "d5": "decimal(65,30)", "f": "float", "db": "double", "dt": "date", "t0": "datetime",
        "t3": "datetime(3)", "t6": "datetime(6)", "s0": "timestamp NULL", "s5": "timestamp(5) NULL",
        "vc": "varchar(300) CHARACTER SET utf8mb4", "la": "varchar(10) CHARACTER SET latin1",
        "ch": "char(3)", "vb": "varbinary(20)", "bl": "blob", "tx": "text CHARACTER SET utf8mb4",
        "iu": "int unsigned", "su": "smallint unsigned", "bi": "bigint", "gb": "varchar(8) "
        "CHARACTER SET gbk", "sj": "char(4) CHARACTER SET sjis", "d6": "decimal(18,9)",
    }  # fmt: skip
    _sql(
        conn,
        "SET SESSION sql_mode = ''",
        "CREATE TABLE r ("
        + ", ".join(f"`{k}` {v}" for k, v in cols.items())
        + ", PRIMARY KEY (id))",
    )
    (start,) = _sql(conn, "SHOW MASTER STATUS")
    rnd = random.Random(7)

    def value(name: str, typ: str) -> Any:
        if rnd.random() < 0.15:
            return None
        if typ.startswith("decimal"):
            p, s = (int(x) for x in typ[8:-1].split(","))
            digits = "".join(rnd.choice("0123456789") for _ in range(p))
            whole, frac = digits[: p - s] or "0", digits[p - s :]
            return ("-" if rnd.random() < 0.5 else "") + whole + ("." + frac if s else "")
        r = rnd
        pick = {
            "ti": lambda: r.randint(-128, 127),
            "tu": lambda: r.randint(0, 255),
            "sm": lambda: r.randint(-32768, 32767),
            "md": lambda: r.randint(-(2**23), 2**23 - 1),
            "mu": lambda: r.randint(0, 2**24 - 1),
            "bu": lambda: r.choice([0, 2**64 - 1, r.getrandbits(64)]),
            "f": lambda: r.uniform(-1e6, 1e6),
            "db": lambda: r.uniform(-1e300, 1e300),
            "dt": lambda: r.choice(["0000-00-00", "2024-02-29", "1000-01-01", "9999-12-31"]),
            "t0": lambda: r.choice(["0000-00-00 00:00:00", "2024-02-29 23:59:59"]),
            "t3": lambda: "2020-01-01 00:00:00." + str(r.randint(0, 999)).zfill(3),
            "t6": lambda: "1999-12-31 12:34:56." + str(r.randint(0, 999999)).zfill(6),
            "s0": lambda: r.choice(
                ["0000-00-00 00:00:00", "2038-01-19 03:14:07", "1970-01-01 00:00:01"]
            ),
            "s5": lambda: "2001-09-09 01:46:40." + str(r.randint(0, 99999)).zfill(5),
            "vc": lambda: "".join(r.choice("aé€😀'\\") for _ in range(r.randint(0, 120))),
            "la": lambda: r.choice(["", "naïve", "ÀÉ", "€uro"]),
            "ch": lambda: r.choice(["", "ab", "xyz"]),
            "vb": lambda: bytes(r.getrandbits(8) for _ in range(r.randint(0, 20))),
            "bl": lambda: bytes(r.getrandbits(8) for _ in range(r.randint(0, 300))),
            "tx": lambda: "t" * r.randint(0, 70000),
            "iu": lambda: r.choice([0, 2**32 - 1, r.getrandbits(32)]),
            "su": lambda: r.choice([0, 2**16 - 1, r.getrandbits(16)]),
            "bi": lambda: r.choice([-(2**63), 2**63 - 1, r.getrandbits(63) - 2**62]),
            "gb": lambda: r.choice(["", "abc", "中文", "a中b\\"]),
            "sj": lambda: r.choice(["", "ab", "日本", "ｱ"]),
        }
        return pick[name]()

    names = [k for k in cols if k != "id"]
    ids = list(range(1, 61))
    with conn.cursor() as cur:
        for i in ids:
            vals = [value(k, cols[k]) for k in names]
            cur.execute(f"INSERT INTO r VALUES (%s, {', '.join(['%s'] * len(names))})", [i, *vals])
        for i in ids[:30]:  # updates, some of the key
            k = rnd.choice(names)
            cur.execute(f"UPDATE r SET `{k}` = %s WHERE id = %s", (value(k, cols[k]), i))
        cur.execute("UPDATE r SET id = id + 1000 WHERE id <= 5")
        cur.execute("DELETE FROM r WHERE id BETWEEN 40 AND 45")
    (types,) = [tuple(r[1] for r in _sql(conn, "SHOW COLUMNS FROM r"))]
    plan = TablePlan(db, "r", tuple(cols), types, ("id",))
    settings = {
        "host": "127.0.0.1",
        "port": int(url.split(":")[2].split("/")[0]),
        "user": "root",
        "password": "",
    }
    kw = dict(
        log_file=start[0], log_pos=int(start[1]), applied=None, max_changes=10**9, server_id=99
    )
    import lockgate.sources._binlog as binlog

    decoded: list[int] = []
    real = binlog.payload

    def spy(ev: Any) -> bytes | None:
        data = real(ev)
        decoded.append(data is not None)
        return data

    monkeypatch.setattr(binlog, "payload", spy)
    ours = read(settings, plan, fast=True, **kw)  # type: ignore[arg-type]
    assert decoded and all(decoded)  # every rows event went through our decoder
    theirs = read(settings, plan, fast=False, **kw)  # type: ignore[arg-type]
    assert ours.batch.rows == theirs.batch.rows >= 60 + 20 + 10 + 6
    assert ours.batch.op == theirs.batch.op and ours.batch.lsn == theirs.batch.lsn
    assert ours.batch.arrays is not None and theirs.batch.arrays is not None
    for name, a, b in zip(cols, ours.batch.arrays, theirs.batch.arrays, strict=True):
        assert a.to_pylist() == b.to_pylist(), name


def test_cdc_status_shows_the_binlog(my_db: tuple[str, Any], tmp_path: Path) -> None:
    import json as _json

    from typer.testing import CliRunner

    from lockgate.cli.app import app

    _, conn = my_db
    _sql(conn, "CREATE TABLE st (id int PRIMARY KEY)", "INSERT INTO st VALUES (1)")
    root = mysql_cdc_project(tmp_path / "p", _db(my_db), {"st": ["id"]})
    _run(root)
    out = CliRunner().invoke(app, ["cdc", "status", "--json", "-p", str(root)])
    assert out.exit_code == 0, out.output
    (row,) = _json.loads(out.output)
    assert row["dataset"] == "st" and row["exists"] and row["slot"] == "lg_st"
    assert row["table_position"] == row["current_position"] == _master(conn)
    assert "mysql://" not in out.output  # no connection URL (secrets) in the status
    table = CliRunner().invoke(app, ["cdc", "status", "-p", str(root)], env={"COLUMNS": "200"})
    number, pos = decode(_master(conn))
    assert table.exit_code == 0 and f"{number:06d}:{pos}" in table.output, table.output


@pytest.mark.parametrize("prefix", ["s3cr3t-Pw-", "p@ss/w0rd-"])  # raw '@' and '/' in the URL
def test_password_never_appears_in_errors_or_state(
    my_db: tuple[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefix: str
) -> None:
    url, conn = my_db
    user = "lg_" + _db(my_db)[-6:]
    secret = prefix + _db(my_db)[-6:]
    _sql(
        conn,
        f"CREATE USER '{user}'@'%' IDENTIFIED BY '{secret}'",
        f"GRANT ALL ON *.* TO '{user}'@'%'",
        "CREATE TABLE pw (id int PRIMARY KEY)",
        "INSERT INTO pw VALUES (1)",
    )
    try:
        good = url.replace("root@", f"{user}:{secret}@")
        monkeypatch.setenv("LG_CDC_MY_URL", good)
        root = mysql_cdc_project(tmp_path / "p", _db(my_db), {"pw": ["id"], "gone": ["id"]})
        result = lockgate.run(root, max_workers=1)
        by_name = {s.dataset: s for s in result.steps}
        assert str(by_name["pw"].status) == "success"
        assert str(by_name["gone"].status) == "failed" and "not found" in (
            by_name["gone"].error or ""
        )
        monkeypatch.setenv("LG_CDC_MY_URL", good.replace(secret, secret + "x"))  # refused
        refused = lockgate.run(root, max_workers=1).steps
        assert all(str(s.status) == "failed" for s in refused)
        texts = [str(s.error) + str(s.hint) for s in [*result.steps, *refused]]
        for path in root.rglob("*"):
            if path.is_file():
                texts.append(path.read_bytes().decode("utf-8", "replace"))
        assert not any(secret in t for t in texts)
        assert not any(secret[6:] in t for t in texts)  # nor the part after a raw '@'
    finally:
        _sql(conn, f"DROP USER '{user}'@'%'")


def test_truncate_and_soft_deletes(my_db: tuple[str, Any], tmp_path: Path) -> None:
    _, conn = my_db
    _sql(conn, "CREATE TABLE t (id int PRIMARY KEY, v varchar(10))")
    _sql(conn, "INSERT INTO t VALUES " + ", ".join(f"({i}, 'v{i}')" for i in range(1, 11)))
    root = mysql_cdc_project(tmp_path / "p", _db(my_db), {"t": ["id"]}, deletes="soft")
    _run(root)
    _sql(conn, "DELETE FROM t WHERE id = 1", "UPDATE t SET v = 'x' WHERE id = 2")
    _run(root)
    rows = {r["id"]: r for r in _table(root, "t")}
    assert rows[1]["_lg_deleted"] is True and rows[1]["v"] == "v1" and rows[1]["_lg_op"] == "d"
    assert rows[2]["_lg_deleted"] is False and rows[2]["v"] == "x"
    _sql(conn, "UPDATE t SET v = 'gone' WHERE id = 3", "TRUNCATE TABLE t")
    _sql(conn, "INSERT INTO t VALUES (5, 'back')")
    steps = [r.steps[0] for r in _run(root)]
    assert sum(s.skip_reasons.get("truncated", 0) for s in steps) == 1  # the update before it
    rows = {r["id"]: r for r in _table(root, "t")}
    live = {k for k, r in rows.items() if not r["_lg_deleted"]}
    assert live == {5} and rows[5]["v"] == "back" and len(rows) == 10
    assert _position(root, "t") == _master(conn)


def test_savepoints_do_not_split_a_transaction(my_db: tuple[str, Any], tmp_path: Path) -> None:
    """SAVEPOINT / ROLLBACK TO are logged inside the transaction: the batch (one change
    each) must still end only at the transaction's end, never in its middle (resuming
    there would lose the rest of it)."""
    _, conn = my_db
    _sql(conn, "CREATE TABLE sp (id int PRIMARY KEY)")
    root = mysql_cdc_project(tmp_path / "p", _db(my_db), {"sp": ["id"]}, max_changes=1)
    _run(root)
    conn.begin()
    _sql(conn, "INSERT INTO sp VALUES (1)", "SAVEPOINT a", "INSERT INTO sp VALUES (2)")
    _sql(conn, "ROLLBACK TO SAVEPOINT a", "INSERT INTO sp VALUES (3)", "SAVEPOINT b")
    _sql(conn, "INSERT INTO sp VALUES (4)")
    conn.commit()
    _sql(conn, "INSERT INTO sp VALUES (5)")
    results = _run(root)
    assert sorted(r["id"] for r in _table(root, "sp")) == [1, 3, 4, 5]
    assert [r.steps[0].rows_out for r in results if r.steps[0].rows_out] == [3, 1]
    assert _position(root, "sp") == _master(conn)
