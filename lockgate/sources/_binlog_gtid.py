"""GTIDs of a MariaDB/MySQL binary log: what ``mysql_cdc`` records next to its binlog position
so a run can resume on another server (a failover to a replica, a renamed binlog) where that
server's files and byte positions mean nothing.

- MariaDB: ``domain-server-seq`` per transaction; the state is the last GTID per domain
  (``0-1-42,1-7-3``), the form ``@slave_connect_state`` takes (the library sends it with
  ``is_mariadb=True, auto_position=…``; the server streams what follows each domain's GTID).
- MySQL: ``uuid:n``; the state is ``uuid:1-n`` per source uuid (a GTID set, the form
  ``COM_BINLOG_DUMP_GTID`` takes). Holes in a set are not kept (a stream read in order has
  none). Untested here: only MariaDB is installed.

The state goes into the Delta commit as application transactions (versions are integers):
the text in chunks of 7 bytes, see :func:`pack` / :func:`unpack`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_CHUNK = 7  # bytes per application-transaction version (< 2**56: non-negative int64)
_MARIADB = re.compile(r"^(\d+)-(\d+)-(\d+)$")
_MYSQL = re.compile(r"^([0-9a-fA-F-]{32,36})((?::\d+(?:-\d+)?)+)$")


def pack(text: str) -> list[int]:
    """A text as non-negative integers of 7 bytes each (the chunks, in order).

    >>> unpack(pack("0-1-12345,1-2-3"))
    '0-1-12345,1-2-3'
    >>> pack("")
    []
    """
    raw = text.encode()
    return [int.from_bytes(raw[i : i + _CHUNK], "big") for i in range(0, len(raw), _CHUNK)]


def unpack(chunks: list[int]) -> str:
    """The text :func:`pack` split (a chunk's leading zero bytes are not text: none are)."""
    out = bytearray()
    for i, c in enumerate(chunks):
        width = _CHUNK if i < len(chunks) - 1 else max(1, (c.bit_length() + 7) // 8)
        out += c.to_bytes(width, "big")
    return out.decode()


@dataclass
class Gtids:
    """The last GTID applied per MariaDB domain / per MySQL source uuid."""

    #: MariaDB: domain → (server id, seq); MySQL: uuid → (0, n)
    last: dict[str, tuple[int, int]] = field(default_factory=dict)
    mysql: bool = False

    @classmethod
    def parse(cls, text: str | None) -> Gtids:
        """A state (``0-1-5,1-2-3`` or ``uuid:1-5,uuid2:1-9``); empty for None or ``""``.

        >>> Gtids.parse("0-1-5,1-2-3").text()
        '0-1-5,1-2-3'
        >>> Gtids.parse("3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5:7-9").text()
        '3e11fa47-71ca-11e1-9e33-c80aa9429562:1-9'
        """
        out = cls()
        for item in (text or "").replace("\n", "").split(","):
            if item.strip():
                out.add(item.strip())
        return out

    def add(self, gtid: str) -> None:
        """Record ``gtid`` (one transaction's, or one item of a state) as applied."""
        key, server, seq = _split(gtid)
        if server < 0:
            self.mysql = True
            server = 0
        old = self.last.get(key)
        if old is None or seq >= old[1]:
            self.last[key] = (server, seq)

    def applied(self, gtid: str) -> bool:
        """``gtid`` is at or before the state of its domain (uuid): already applied.

        >>> Gtids.parse("0-1-5").applied("0-2-5"), Gtids.parse("0-1-5").applied("0-2-6")
        (True, False)
        >>> Gtids.parse("0-1-5").applied("1-1-1")
        False
        """
        key, _, seq = _split(gtid)
        old = self.last.get(key)
        return old is not None and seq <= old[1]

    def text(self) -> str:
        """The state as the server takes it to resume (``auto_position``)."""
        if self.mysql:
            return ",".join(f"{k}:1-{n}" for k, (_, n) in sorted(self.last.items()))
        return ",".join(f"{d}-{s}-{n}" for d, (s, n) in sorted(self.last.items(), key=_dom))

    def copy(self) -> Gtids:
        return Gtids(dict(self.last), self.mysql)

    def __bool__(self) -> bool:
        return bool(self.last)


def _dom(item: tuple[str, tuple[int, int]]) -> int:
    return int(item[0])


def _split(gtid: str) -> tuple[str, int, int]:
    """(domain or uuid, server id (-1: MySQL), seq) of one GTID or state item."""
    m = _MARIADB.match(gtid)
    if m:
        return m.group(1), int(m.group(2)), int(m.group(3))
    m = _MYSQL.match(gtid)
    if m:
        ends = [int(p.split("-")[-1]) for p in m.group(2).strip(":").split(":")]
        return m.group(1).lower(), -1, max(ends)
    raise ValueError(f"not a GTID: {gtid!r}")
