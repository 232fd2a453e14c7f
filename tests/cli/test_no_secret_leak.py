"""No command prints, logs, writes or stores a password it was given.

Every CLI command runs (in a subprocess, with ``--debug`` logs where it adds output) with
PostgreSQL URLs that carry a known password — as ``user:pw@``, as ``?password=`` and
percent-encoded — as check/profile/suggest targets and as the project's state URL; then
stdout, stderr, every file under the test folder (HTML/JSON/YAML reports, the warehouse,
logs) and every row of the state store are searched for the password.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest

from tests.cli.helpers import GOOD_PY, ORDERS, datasets, subprocess_cli
from tests.run.helpers import make_project

PW = "Pw7f3kQzLEAKME"
# a password that needs percent-encoding: a driver may echo the decoded form
PW2 = "s3c/r3t@Zq9#x"
SECRETS = (PW, PW2, quote(PW2, safe=""))


@pytest.fixture
def pg_db(pg_url: str) -> Iterator[tuple[str, str]]:
    """(host part, database name) of a fresh database holding table shop.orders."""
    plain = pg_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA shop")
        conn.execute("CREATE TABLE shop.orders (id int, amount numeric(10,2), note text)")
        conn.execute("INSERT INTO shop.orders VALUES (1, 5, 'a'), (2, -3, NULL), (3, 7, 'c')")
    rest = plain.removeprefix("postgresql://postgres@")
    host, _, db = rest.partition("/")
    yield host, db


def _leaks(text: str) -> list[str]:
    return [s for s in SECRETS if s in text]


class Outputs:
    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd
        self.seen: list[tuple[str, str]] = []
        self.codes: dict[str, int] = {}

    def run(self, *args: str, columns: str = "200") -> tuple[int, str, str]:
        r = subprocess_cli(*args, cwd=self.cwd, columns=columns)
        name = " ".join(args)
        self.seen += [(f"stdout of `{name}`", r.stdout), (f"stderr of `{name}`", r.stderr)]
        self.codes[name] = r.returncode
        return r.returncode, r.stdout, r.stderr


@pytest.mark.postgres
@pytest.mark.slow
def test_no_command_shows_writes_or_stores_a_password(
    tmp_path: Path, pg_db: tuple[str, str]
) -> None:
    host, db = pg_db
    url = f"postgresql://postgres:{PW}@{host}/{db}"
    url2 = f"postgresql://postgres:{quote(PW2, safe='')}@{host}/{db}"
    url_qs = f"postgresql://postgres@{host}/{db}?password={PW}"
    work = tmp_path / "work"
    work.mkdir()
    checks = work / "checks.yaml"
    checks.write_text(
        "checks:\n  - type: between\n    column: amount\n    min: 0\n    max: 100\n"
        "  - type: not_null\n    column: note\n    severity: warn\n"
    )
    out = Outputs(work)

    # --- check / profile / suggest on PostgreSQL targets
    for target in (url, url2, url_qs.replace("?", "?table=shop.orders&", 1)):
        t = target if "table=" in target else f"{target}?table=shop.orders"
        code, stdout, _ = out.run("--debug", "check", t, "-c", str(checks))
        assert code == 1 and "amount_between" in stdout  # it really ran
        out.run("check", t, "-c", str(checks), "--json")
        out.run("check", t, "-c", str(checks), columns="60")
        out.run("check", str(work / "nope.csv"), "-c", str(checks), "--ref", f"r={t}")
    code, _, _ = out.run(
        "--debug",
        "profile",
        f"{url}?table=shop.orders",
        "--html",
        str(work / "p.html"),
        "-o",
        str(work / "p.json"),
    )
    assert code == 0 and (work / "p.html").exists()
    out.run("profile", f"{url2}?table=shop.orders", "--json")
    out.run("profile", f"{url}?table=shop.orders", columns="60")
    out.run("suggest", f"{url}?table=shop.orders")
    out.run("suggest", f"{url2}?table=shop.orders", "-o", str(work / "s.yaml"))
    # error paths: no table, unknown table, unreachable server, wrong database, other schemes
    out.run("check", url, "-c", str(checks))
    out.run("profile", url2)
    out.run("check", f"{url}?table=shop.nope", "-c", str(checks))
    out.run("check", f"postgresql://postgres:{PW}@127.0.0.1:1/{db}?table=a.b", "-c", str(checks))
    out.run("check", f"postgresql://postgres:{PW}@{host}/nodb_{db}?table=a.b", "-c", str(checks))
    out.run("suggest", f"postgresql://postgres@127.0.0.1:1/x?table=a.b&password={PW}")
    for scheme in ("mysql", "redis", "https", "postgresql+psycopg"):
        out.run("--debug", "check", f"{scheme}://root:{PW}@127.0.0.1:1/x", "-c", str(checks))
        out.run("profile", f"{scheme}://root:{PW}@127.0.0.1:1/x")

    # --- a project whose state store URL carries the password
    root = make_project(
        tmp_path / "proj",
        datasets(),
        files={"data/orders.csv": ORDERS, "datasets/transforms.py": GOOD_PY},
        config={"state": url2},
    )
    p = str(root)
    out.run("validate", "-p", p)
    code, _, _ = out.run("--debug", "run", "-p", p)
    assert code == 0, out.seen[-1]
    out.run("run", "-p", p, "--json")
    out.run("run", "-p", p, "--dry-run")
    code, stdout, _ = out.run("runs", "-p", p, "--json")
    assert code == 0
    run_id = stdout.split('"run_id": "', 1)[1][:8]
    for args in (
        ("runs", "-p", p),
        ("runs", run_id, "-p", p),
        ("runs", run_id, "-p", p, "--json"),
        ("runs", "nosuchrun", "-p", p),
        ("show", "orders", "-p", p),
        ("show", "orders", "-p", p, "--json"),
        ("show", "nosuch", "-p", p),
        ("quarantine", "orders", "-p", p),
        ("quarantine", "orders", "-p", p, "--json"),
        ("quality", "orders", "-p", p),
        ("quality", "orders", "-p", p, "--json"),
        ("profile", "orders", "-p", p, "--json"),
        ("suggest", "orders", "-p", p),
        ("schema", "orders", "-p", p),
    ):
        out.run(*args)
    # a failing step (bad SQL) and an unreachable state store are stored/shown too
    (root / "datasets" / "bad.yaml").write_text(
        "datasets:\n  - name: bad\n    transform:\n      sql: select nope from orders\n"
    )
    out.run("--debug", "run", "-p", p)
    (root / "lockgate.yaml").write_text(
        (root / "lockgate.yaml").read_text().replace(host, "127.0.0.1:1")
    )
    code, _, _ = out.run("--debug", "run", "-p", p)
    assert code != 0
    out.run("runs", "-p", p)
    (root / "lockgate.yaml").write_text(
        (root / "lockgate.yaml")
        .read_text()
        .replace(f"127.0.0.1:1/{db}", f"{host}/{db}")
        .replace(quote(PW2, safe=""), quote(PW2, safe="") + "&x=" + PW)
    )
    out.run("validate", "-p", p)

    leaks = [where for where, text in out.seen if _leaks(text)]
    for path in tmp_path.rglob("*"):
        if path.is_file() and path.name not in ("lockgate.yaml",):
            data = path.read_bytes().decode("utf-8", "replace")
            if _leaks(data):
                leaks.append(str(path.relative_to(tmp_path)))
    leaks += _state_store_leaks(host, db)
    assert not leaks, "password found in:\n" + "\n".join(leaks)


def _state_store_leaks(host: str, db: str) -> list[str]:
    found = []
    with psycopg.connect(f"postgresql://postgres@{host}/{db}") as conn:
        tables = conn.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_schema NOT IN ('pg_catalog', 'information_schema') "
            "AND table_type = 'BASE TABLE'"
        ).fetchall()
        assert any(t == "lockgate_runs" for _, t in tables)  # the state store is really there
        for schema, table in tables:
            rows = conn.execute(
                psycopg.sql.SQL("SELECT t::text FROM {}.{} AS t").format(
                    psycopg.sql.Identifier(schema), psycopg.sql.Identifier(table)
                )
            ).fetchall()
            for (text,) in rows:
                if _leaks(text):
                    found.append(f"state store row of {schema}.{table}: {text[:200]}")
    return found


def test_redaction_token_shapes() -> None:
    from lockgate.redact import redact

    for text in (
        f"postgresql://u:{PW}@h/db",
        f"postgresql+psycopg://u:{PW}@h:5432/db?sslmode=require",
        f"mysql://root:{PW}@127.0.0.1/x",
        f"redis://:{PW}@cache:6379/0",
        f"https://bot:{PW}@example.com/path?q=1",
        f"postgresql://u@h/db?sslmode=require&password={PW}&table=t",
        f"host=h user=u password={PW} dbname=d",
        f"host=h password='{PW} x' dbname=d",
        f'{{"password": "{PW}", "user": "u"}}',
        f"password: '{PW}'",
        f"Authorization: Bearer {PW}",
        f"s3://bucket/key?X-Amz-Signature={PW}",
        f"api_key={PW}",
        f"url='postgresql://u:{PW}@h/db'",
        f'<a href="https://u:{PW}@h/">',
        f"postgresql://u:{PW2}@h/db",
    ):
        assert not _leaks(redact(text)), (text, redact(text))
    # nothing else changes
    for text in (
        "postgresql://u@h/db?table=shop.orders",
        "line 3: expected 2 columns, found 3",
        "check amount_between passed=True",
        "keyboard=qwerty tokens in column 'passed'",
    ):
        assert redact(text) == text
    assert redact(f"connect to postgresql://me:{PW}@h/db failed") == (
        "connect to postgresql://me:***@h/db failed"
    )


def test_log_records_are_redacted() -> None:
    import logging

    from lockgate.redact import RedactingFilter

    rec = logging.LogRecord(
        "x", logging.ERROR, __file__, 1, "cannot open %s", (f"mysql://a:{PW}@h/d",), None
    )
    try:
        raise RuntimeError(f"driver said password={PW}")
    except RuntimeError:
        import sys

        rec.exc_info = sys.exc_info()
    assert RedactingFilter().filter(rec)
    text = logging.Formatter().format(rec)
    assert not _leaks(text) and "mysql://a:***@h/d" in text and "password=***" in text


def test_errors_never_carry_a_password() -> None:
    from lockgate.errors import InputError

    e = InputError(f"cannot read postgresql://u:{PW}@h/db", hint=f"try ?password={PW}")
    assert not _leaks(str(e)) and not _leaks(e.message) and not _leaks(e.hint or "")


def test_remembered_passwords_do_not_rewrite_stored_names() -> None:
    from lockgate.redact import redact, redact_any

    assert redact("postgresql://u:weekly_pw@h/db") == "postgresql://u:***@h/db"
    assert redact("then weekly_pw again") == "then *** again"  # shown text: hidden
    # what the state store keeps stays exact (a dataset named like the password)
    assert redact_any("weekly_pw_orders") == "weekly_pw_orders"
    assert redact_any(f"mysql://a:{PW}@h/x") == "mysql://a:***@h/x"
    # user == password (postgres:postgres) is masked in place but not remembered
    assert redact("postgresql://postgres:postgres@h/db") == "postgresql://postgres:***@h/db"
    assert redact("table postgres.public") == "table postgres.public"


def test_unexpected_error_and_its_traceback_are_redacted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.cli.helpers import cli

    def boom(*_: object, **__: object) -> None:
        raise RuntimeError(f"driver failed for postgresql://u:{PW}@h/db password={PW}")

    monkeypatch.setattr("lockgate.quality.standalone.run_standalone", boom)
    (tmp_path / "c.yaml").write_text("checks: []\n")
    for debug in ([], ["--debug"]):
        r = cli(*debug, "check", "x.csv", "-c", str(tmp_path / "c.yaml"))
        assert r.exit_code == 1
        assert "RuntimeError" in r.stderr and not _leaks(r.output + r.stderr)
        if debug:
            assert "Traceback" in r.stderr


def test_state_store_writes_are_redacted_but_cursors_stay_exact(tmp_path: Path) -> None:
    import sqlite3

    from lockgate.state import StateStore

    store = StateStore.open(f"sqlite:///{tmp_path / 'state.db'}")
    run = store.start_run("p", args={"target": f"mysql://root:{PW}@h/x"})
    store.finish_run(run.run_id, "failed", error=f"cannot reach postgresql://u:{PW}@h/db")
    cursor = f"https://u:{PW}@example.com/item/7"  # a cursor value is data: kept exactly
    store.set_watermark("p", "d", cursor, "text", run.run_id)
    store.close()
    with sqlite3.connect(tmp_path / "state.db") as conn:
        runs = conn.execute("SELECT args, error FROM lockgate_runs").fetchall()
        wm = conn.execute("SELECT value FROM lockgate_watermarks").fetchall()
    assert runs and not _leaks(repr(runs)) and "postgresql://u:***@h/db" in runs[0][1]
    assert wm == [(cursor,)]


def test_a_password_with_a_raw_at_and_slash_is_hidden_whole() -> None:
    from lockgate.redact import redact
    from lockgate.sources.mysql import url_settings

    url = "mysql://root:p@ss/w0rd-9x@127.0.0.1:3306/shop?ssl=0"
    assert redact(f"cannot connect {url}") == (
        "cannot connect mysql://root:***@127.0.0.1:3306/shop?ssl=0"
    )
    assert "w0rd" not in redact("later: the server said p@ss/w0rd-9x")  # remembered whole
    s = url_settings(url)
    assert (s["host"], s["port"], s["user"], s["password"], s["database"]) == (
        "127.0.0.1",
        3306,
        "root",
        "p@ss/w0rd-9x",
        "shop",
    )
    quoted = url_settings("mysql://u%40x:a%2Fb%40c@db/x")  # percent-encoded as before
    assert (quoted["user"], quoted["password"], quoted["host"]) == ("u@x", "a/b@c", "db")
    assert url_settings("mysql://db:3307/")["user"] == "root"
