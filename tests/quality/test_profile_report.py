from __future__ import annotations

import re

import duckdb

from lockgate.quality.profile import profile
from lockgate.quality.report import render_html


def test_html_report_contains_every_column_and_is_self_contained() -> None:
    con = duckdb.connect()
    con.execute(
        """
        CREATE TABLE t AS SELECT
            i AS id,
            CASE WHEN i % 5 = 0 THEN NULL ELSE ['a', 'b'][i % 2 + 1] END AS "cat <b>&",
            DATE '2024-01-01' + i::INT AS day,
            i % 2 = 0 AS flag,
            [i] AS tags
        FROM range(40) r(i)
        """
    )
    html = render_html(profile(con, "t"))
    assert html.startswith("<!DOCTYPE html>")
    for name in ("id", "day", "flag", "tags"):
        assert f">{name}<" in html
    # user data is escaped, never injected as markup
    assert "cat &lt;b&gt;&amp;" in html and "<b>&" not in html
    assert "20.0%" in html  # null badge of the category column
    # one histogram per numeric/temporal column, top-value charts for repeating values
    assert html.count('aria-label="histogram"') == 2
    assert html.count('aria-label="top values"') == 2  # category and flag
    # nothing is fetched: no script, no external stylesheet or image
    assert "<script" not in html
    assert not re.search(r"""(src|href)=["']https?:""", html)


def test_html_report_of_an_empty_table() -> None:
    con = duckdb.connect()
    con.execute("CREATE TABLE e (x INTEGER, s VARCHAR)")
    html = render_html(profile(con, "e"))
    assert ">x<" in html and ">s<" in html
