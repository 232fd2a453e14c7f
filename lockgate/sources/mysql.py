"""``type: mysql`` — a MySQL/MariaDB table (or query), read through a named connection.

``source: {type: mysql, connection: shop, table: shop.orders}`` with
``connections: {shop: {type: mysql, url: "mysql://user:${PW}@host:3306/shop"}}``. Same
fields as ``postgres`` (``query:``, ``columns:``, ``settle:``; ``incremental:`` on the dataset).

Rows stream as Arrow batches through connectorx (``arrow_stream``), else through PyMySQL's
unbuffered cursor. Types come from ``SHOW COLUMNS`` (the catalog), never from the driver:
signed integers, floats and strings stream natively; everything else travels as MySQL's
text and is cast in the engine: ``decimal(p,s)`` exactly, unsigned integers as unsigned
(``bigint unsigned`` → UBIGINT), ``tinyint(1)`` stays TINYINT (it holds 2…127 too), ``bit(1)``
BOOLEAN and ``bit(n)`` UBIGINT, ``year`` SMALLINT, ``datetime`` TIMESTAMP, ``timestamp``
TIMESTAMPTZ (the session runs in UTC), binary types via hex. A zero date
(``0000-00-00``), a ``time`` beyond 24 h or a decimal with more than 38 digits cannot be
represented: the row goes to the rejects with the column and the value.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any, ClassVar, Literal
from urllib.parse import quote, urlsplit

from pydantic import Field, JsonValue
from sqlglot import exp

from lockgate.errors import ConfigError, InputError, LockgateError, Problem, TransientError
from lockgate.redact import redact, remember
from lockgate.sources._db import (
    CAST,
    DECIMAL,
    HEX,
    NATIVE,
    Column,
    DbSourceConfig,
    cursor_read,
    cursor_select,
    fingerprint_select,
    finish,
    future_cursor,
    held_back_select,
    held_back_warning,
    load_stream,
    optional_module,
    parse_query,
    quote_userinfo,
    select_columns,
    start_staging,
    text_rows_reader,
)
from lockgate.sources._pg_partition import PartitionSpec
from lockgate.sources.base import (
    ResumeToken,
    Source,
    SourceConfig,
    StagedSource,
    register_source,
    staged_table,
)
from lockgate.sql import ident

if TYPE_CHECKING:
    from lockgate.engine.session import Session

log = logging.getLogger(__name__)


class MySqlSourceSpec(DbSourceConfig):
    """A MySQL/MariaDB table (or query) read through a named connection."""

    type: Literal["mysql"] = "mysql"
    partition: PartitionSpec | None = Field(
        default=None,
        description="read in parallel ranges of an integer column, all of one consistent "
        "moment (a brief read lock while the connections start): {column: id, partitions: 4}",
    )


_SIGNED = {
    "tinyint": "TINYINT",
    "smallint": "SMALLINT",
    "mediumint": "INTEGER",
    "int": "INTEGER",
    "integer": "INTEGER",
    "bigint": "BIGINT",
}
_UNSIGNED = {
    "tinyint": "UTINYINT",
    "smallint": "USMALLINT",
    "mediumint": "UINTEGER",
    "int": "UINTEGER",
    "integer": "UINTEGER",
    "bigint": "UBIGINT",
}
_STRINGS = ("char", "varchar", "tinytext", "text", "mediumtext", "longtext", "enum", "set")
_BINARY = ("binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob")
_TEMPORAL = {"date": "DATE", "datetime": "TIMESTAMP", "time": "TIME", "json": "JSON"}
_SESSION = "SET time_zone = '+00:00'"


def mysql_column(name: str, typ: str) -> Column:
    """The read plan of one column from its ``SHOW COLUMNS`` type."""
    t = typ.lower()
    base = re.split(r"[ (]", t, maxsplit=1)[0]
    col = exp.column(ident(name))
    text = exp.cast(col, "CHAR")
    if base in _SIGNED:
        if "unsigned" in t:
            return Column(name, text, _UNSIGNED[base], CAST, typ)
        return Column(name, col, _SIGNED[base], NATIVE, typ)
    if base in ("float", "double", "real"):
        return Column(name, col, "DOUBLE", NATIVE, typ)
    if base in _STRINGS:
        return Column(name, col, "VARCHAR", NATIVE, typ)
    if base in ("decimal", "numeric"):
        m = re.search(r"\((\d+)(?:,(\d+))?\)", t)
        p, s = (int(m.group(1)), int(m.group(2) or 0)) if m else (10, 0)
        how = CAST if p <= 38 else DECIMAL  # decimal(p<=38, s) fits exactly
        return Column(name, text, f"DECIMAL({min(p, 38)},{min(s, 38)})", how, typ)
    if base == "bit":
        number = exp.cast(exp.Add(this=col, expression=exp.Literal.number(0)), "CHAR")
        return Column(name, number, "BOOLEAN" if t == "bit(1)" else "UBIGINT", CAST, typ)
    if base == "year":
        return Column(name, text, "SMALLINT", CAST, typ)
    if base == "timestamp":  # stored in UTC; the session reads it in UTC
        utc = exp.func("concat", text, exp.Literal.string("+00"))
        return Column(name, utc, "TIMESTAMPTZ", CAST, typ)
    if base in _TEMPORAL:
        return Column(name, text, _TEMPORAL[base], CAST, typ)
    if base in _BINARY:
        return Column(name, exp.func("hex", col), "BLOB", HEX, typ)
    return Column(name, text, "VARCHAR", NATIVE, typ)  # geometry, …: their text


@register_source
class MySqlSource(Source):
    """Streams a MySQL/MariaDB table into staging, typed from the catalog."""

    TYPE: ClassVar[str] = "mysql"
    CONFIG: ClassVar[type[SourceConfig]] = MySqlSourceSpec
    SUPPORTS_INCREMENTAL: ClassVar[bool] = True
    SUPPORTS_REJECTS: ClassVar[bool] = True
    SUPPORTS_FINGERPRINT: ClassVar[bool] = True
    SUPPORTS_PARALLEL: ClassVar[bool] = True

    def fingerprint(self) -> JsonValue:
        """As PostgreSQL's: the newest settled cursor value and the rows at (or within the
        lookback before) it, one query; None for a full read (every run reads)."""
        config = self.config
        assert isinstance(config, MySqlSourceSpec)
        if config.table is not None:
            db, _, name = config.table.rpartition(".")
            relation: exp.Expr = exp.table_(ident(name), db=ident(db) if db else None)
        else:
            assert config.query is not None
            relation = parse_query(config.query, "mysql").subquery("q")
        now = exp.Anonymous(this="UTC_TIMESTAMP")
        query = fingerprint_select(
            self.request, relation, now=now, text_type="CHAR", clock=now.copy()
        )
        if query is None:
            return None
        inc = self.request.incremental
        assert inc is not None
        # the cursor's collation: the resume point is the largest value read byte-wise;
        # under a case-insensitive one ('a' = 'A' < 'aa' < 'B') the newest value the server
        # sees says nothing of a row 'aa' added below it but above the resume point
        top = exp.select(exp.func("max", exp.column(ident(inc.cursor)))).from_(relation.copy())
        query = query.select(exp.Anonymous(this="COLLATION", expressions=[top.subquery()]))
        try:
            with _pymysql_connect(self._url()) as conn, conn.cursor() as cur:
                cur.execute(query.sql("mysql"))
                row = cur.fetchone()
        except Exception as e:  # the read reports the problem (with its own message)
            log.info("dataset %s: no fingerprint: %s", self.dataset, redact(str(e)))
            return None
        newest, count, clock, collation = row if row is not None else (None, 0, None, None)
        if future_cursor(newest, clock):  # later rows with current cursors are below it
            return None
        if collation is not None and not (collation == "binary" or collation.endswith("_bin")):
            return None  # read on every run (a text cursor under a linguistic collation)
        return {"type": "mysql", "newest": newest, "rows_at_newest": int(count or 0)}

    def stage(self, session: Session, table: str, *, resume: ResumeToken = None) -> StagedSource:
        config = self.config
        assert isinstance(config, MySqlSourceSpec)
        start_staging(session, self.request, config, table)
        url = self._url()
        warnings: list[str] = []
        try:
            rejected, last = self._read(session, table, url, resume, warnings)
        except LockgateError:
            raise
        except Exception as e:  # driver errors: connectorx raises RuntimeError
            raise _translate(e, config.table or "query") from None
        out = staged_table(
            session.con, table, rejected, resume={"cursor": last} if last is not None else resume
        )
        out.warnings.extend(warnings)
        return out

    def _url(self) -> str:
        conn = self.request.connection
        if conn is None:
            raise ConfigError([Problem(f"dataset '{self.dataset}': source needs 'connection:'")])
        fields = conn.resolve()
        url = str(fields.get("url") or "")
        if not url:
            user = quote(str(fields.get("user", "root")))
            pw = fields.get("password")
            auth = user + (":" + quote(str(pw), safe="") if pw else "")
            host, port = fields.get("host", "127.0.0.1"), fields.get("port", 3306)
            url = f"mysql://{auth}@{host}:{port}/{fields.get('database', '')}"
        remember(url)
        # connectorx parses the URL itself: a raw password with @ / ? # would be misread
        url = quote_userinfo(url)
        remember(url)
        return url

    def _read(
        self, session: Session, table: str, url: str, resume: ResumeToken, warnings: list[str]
    ) -> tuple[int, str | None]:
        config = self.config
        assert isinstance(config, MySqlSourceSpec)
        relation, columns = _plan(url, config)
        cx = optional_module("connectorx")
        if cx is None:
            columns = [_as_text(c) for c in columns]
        now = exp.Anonymous(this="UTC_TIMESTAMP")
        query, cursor = cursor_read(
            self.request, relation, columns, resume, now=now, dialect="mysql"
        )
        held = held_back_select(self.request, relation, columns, now=now)
        if held is not None and self.request.incremental is not None:
            with _pymysql_connect(url) as conn, conn.cursor() as cur:
                cur.execute(held.sql("mysql"))
                row = cur.fetchone()
            note = held_back_warning(self.request.incremental.cursor, *(row or (0, None)))
            if note is not None:
                warnings.append(note)
        reader = None
        if config.partition is not None:
            reader = self._read_partitioned(url, relation, columns, resume, cx, warnings)
        if reader is not None:
            raw = load_stream(session, table, reader)
        elif cx is not None:
            reader = cx.read_sql(
                url,
                query,
                return_type="arrow_stream",
                batch_size=config.batch_rows,
                pre_execution_query=[_SESSION],
            )
            raw = load_stream(session, table, reader)
        else:
            raw = _read_pymysql(session, table, url, query, config.batch_rows)
        origin = f"mysql:{config.table or 'query'}"
        rejected, last = finish(session, raw, table, columns, cursor=cursor, origin=origin)
        if last is not None and cursor is not None and cursor.type == "TIMESTAMPTZ":
            last = re.sub(r"[+-]\d\d(:\d\d)?$", "", last)  # MySQL literals carry no offset
        return rejected, last

    def _read_partitioned(
        self,
        url: str,
        relation: exp.Expr,
        columns: list[Column],
        resume: ResumeToken,
        cx: Any,
        warnings: list[str],
    ) -> Any:
        """The ranges of ``partition:`` on one consistent view
        (:mod:`lockgate.sources._mysql_partition`), or None: read on one connection (the
        reason is in ``warnings``)."""
        config = self.config
        assert isinstance(config, MySqlSourceSpec) and config.partition is not None
        from lockgate.sources._mysql_partition import NoSharedView, read_shared_view

        if cx is None:
            warnings.append("partition: needs connectorx; read on one connection")
            return None

        def build(now: exp.Expr) -> exp.Select:
            return cursor_select(self.request, relation, columns, resume, now=now, dialect="mysql")[
                0
            ]

        try:
            return read_shared_view(
                lambda: _pymysql_connect(url),
                url,
                build,
                config.table,
                config.partition,
                session_sql=_SESSION,
                batch_rows=config.batch_rows,
            )
        except NoSharedView as e:
            warnings.append(f"partition: {e}; read on one connection (one snapshot)")
            log.warning("dataset %s: partition: %s; read on one connection", self.dataset, e)
            return None


def url_settings(url: str) -> dict[str, Any]:
    """host, port, user, password and database of a ``mysql://`` URL. A password typed
    with a raw ``@`` or ``/`` (``root:p@ss/w0rd@db``) is read whole: the user information
    ends at the last ``@`` before the query, as :mod:`lockgate.redact` hides it."""
    from urllib.parse import unquote

    scheme, sep, rest = url.partition("://")
    # the LAST '@' anywhere: a raw password may hold '?' or '#' too (p@ss?w#d@db)
    at = rest.rfind("@")
    userinfo, hostpart = (rest[:at], rest[at + 1 :]) if at != -1 else ("", rest)
    u = urlsplit(f"{scheme}{sep}{hostpart}")
    user, colon, password = userinfo.partition(":")
    try:
        port = u.port
    except ValueError:  # its message quotes the text after the ':' (a password, misread)
        raise ConfigError(
            [
                Problem(
                    "a mysql connection URL cannot be parsed (its port is not a number)",
                    hint="mysql://user:password@host:3306/database",
                )
            ]
        ) from None
    return {
        "host": u.hostname or "127.0.0.1",
        "port": port or 3306,
        "user": unquote(user or "root"),
        "password": unquote(password) if colon else "",
        "database": unquote(u.path.lstrip("/")) or None,
    }


def _pymysql_connect(url: str) -> Any:
    import pymysql

    return pymysql.connect(**url_settings(url), init_command=_SESSION)


def _plan(url: str, config: MySqlSourceSpec) -> tuple[exp.Expr, list[Column]]:
    import pymysql

    with _pymysql_connect(url) as conn, conn.cursor() as cur:
        if config.table is not None:
            db, _, name = config.table.rpartition(".")
            relation: exp.Expr = exp.table_(ident(name), db=ident(db) if db else None)
            target = relation.sql("mysql")
        else:
            assert config.query is not None
            query = parse_query(config.query, "mysql")
            relation, target = query.subquery("q"), "lg_source_query"
            shape = exp.select("*").from_(relation.copy()).limit(0)
            cur.execute("CREATE TEMPORARY TABLE lg_source_query AS " + shape.sql("mysql"))
        try:
            cur.execute("SHOW COLUMNS FROM " + target)
        except pymysql.err.ProgrammingError as e:
            if e.args and e.args[0] == 1146:
                raise InputError(f"MySQL table {config.table} not found") from None
            raise
        rows = cur.fetchall()
    return relation, select_columns([mysql_column(r[0], r[1]) for r in rows], config.columns)


def _as_text(c: Column) -> Column:
    if c.how != NATIVE:
        return c
    return Column(c.name, exp.cast(c.remote, "CHAR"), c.type, CAST, c.source_type)


def _read_pymysql(session: Session, table: str, url: str, query: str, batch: int) -> str:
    import pymysql.cursors

    with _pymysql_connect(url) as conn, conn.cursor(pymysql.cursors.SSCursor) as cur:
        cur.execute(query)
        names = [d[0] for d in cur.description or []]
        return load_stream(session, table, text_rows_reader(names, cur.fetchmany, batch))


_LOST = (
    "lost connection",
    "gone away",
    "can't connect",
    "connection refused",
    "timed out",
    "connection was killed",  # MariaDB 1927: KILL from another session
    "io error",  # connectorx: the socket closed under the stream ("bytes remaining…")
    "broken pipe",
    "connection reset",
)


def _translate(e: BaseException, label: str) -> LockgateError:
    """A driver error as a lockgate error: a lost connection is transient (retried). The
    error the server sent can hide behind what closing the dead cursor raised (pymysql's
    unbuffered cursor: ``'NoneType' object has no attribute 'read'``): the whole chain
    counts, and the message names the first error."""
    chain: list[BaseException] = []
    cur: BaseException | None = e
    while cur is not None and cur not in chain and len(chain) < 8:
        chain.append(cur)
        cur = cur.__cause__ or cur.__context__
    lost_one = next((x for x in chain if any(w in str(x).lower() for w in _LOST)), None)
    shown = lost_one or e
    text = redact(
        str(shown).strip().splitlines()[0] if str(shown).strip() else type(shown).__name__
    )
    msg = f"cannot read MySQL {label}: {text}"
    return TransientError(msg) if lost_one is not None else InputError(msg)
