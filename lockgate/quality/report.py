"""The HTML baseline report of a :class:`~lockgate.quality.profile.Profile`.

One self-contained page (inline CSS and SVG, no script, nothing fetched from the
network): an overview table of every column, a list of things worth a look (NULLs, NaN,
empty strings, constant columns), then one card per column grouped by kind with its
statistics, a histogram (numeric and temporal columns) and the top values.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from functools import cache
from typing import Any

import jinja2
from markupsafe import Markup, escape

from lockgate.quality.profile import ColumnProfile, HistogramBin, Profile

_FRACTION = re.compile(r"^(\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2})\.\d+")
_DASH = " \u2013 "
_KIND_ORDER = ("numeric", "string", "temporal", "boolean", "other")
_KIND_TITLE = {
    "numeric": "Numeric columns",
    "string": "Text columns",
    "temporal": "Date and time columns",
    "boolean": "Boolean columns",
    "other": "Other columns",
}


@cache
def _env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("lockgate.quality", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_html(profile: Profile) -> str:
    """The profile as a self-contained HTML page."""
    columns = [_column_view(c) for c in profile.columns]
    groups = [
        (_KIND_TITLE[k], [v for v in columns if v["kind"] == k])
        for k in _KIND_ORDER
        if any(v["kind"] == k for v in columns)
    ]
    notes = [n for v in columns for n in v["notes"]]
    with_nulls = sum(1 for c in profile.columns if c.null_count)
    return (
        _env()
        .get_template("profile.html.j2")
        .render(
            p=profile,
            columns=columns,
            groups=groups,
            notes=notes,
            with_nulls=with_nulls,
            total_null_pct=_total_null_pct(profile),
        )
    )


# ----------------------------------------------------------------------------- views


def _column_view(c: ColumnProfile) -> dict[str, Any]:
    stats: list[tuple[str, str]] = [
        ("type", c.type),
        ("non-null", f"{c.non_null:,}"),
        ("nulls", f"{c.null_count:,} ({_pct(c.null_pct)})"),
    ]
    if c.distinct_approx is not None:
        stats.append(("distinct ≈", f"{c.distinct_approx:,}"))
    if c.nan_count:
        stats.append(("NaN", f"{c.nan_count:,}"))
    if c.min is not None:
        stats += [("min", _fmt(c.min)), ("max", _fmt(c.max))]
    if c.mean is not None:
        stats.append(("mean", _fmt(c.mean)))
    if c.stddev is not None:
        stats.append(("stddev", _fmt(c.stddev)))
    for q, v in c.quantiles:
        if q in (0.05, 0.25, 0.5, 0.75, 0.95):
            stats.append((f"p{round(q * 100)}", _fmt(v)))
    if c.min_len is not None:
        stats.append(("length", f"{c.min_len}{_DASH}{c.max_len} (mean {_fmt(c.mean_len)})"))
    if c.empty_count:
        stats.append(("empty strings", f"{c.empty_count:,}"))
    formats = [k for k, n in c.patterns.items() if n and n == c.non_null]
    if formats:
        stats.append(("format", ", ".join(formats)))
    # top values tell something only for values that repeat, and for continuous columns
    # only when a value is frequent (a spike: a default, a sentinel, NaN)
    top = [
        (v, n)
        for v, n in c.top_values
        if n > 1 and ((c.distinct_approx or 0) <= 50 or n >= 0.01 * max(c.non_null, 1))
    ]
    return {
        "name": c.name,
        "type": c.type,
        "kind": c.kind,
        "null_pct": c.null_pct,
        "null_label": _pct(c.null_pct),
        "null_level": _null_level(c.null_pct),
        "distinct": "" if c.distinct_approx is None else f"{c.distinct_approx:,}",
        "min": "" if c.min is None else _short(_fmt(c.min), 24),
        "max": "" if c.max is None else _short(_fmt(c.max), 24),
        "stats": stats,
        "histogram": _histogram_svg(c.histogram) if c.histogram else None,
        "top": _top_svg(top, c.non_null) if top else None,
        "notes": _notes(c),
        "anchor": "col-" + "".join(ch if ch.isalnum() else "-" for ch in c.name),
    }


def _notes(c: ColumnProfile) -> list[tuple[str, str, str]]:
    """(level, column, text) for things a reviewer should look at."""
    out = []
    if c.rows and c.null_count == c.rows:
        out.append(("bad", c.name, "every value is NULL"))
    elif c.null_pct >= 5:
        out.append(("warn", c.name, f"{_pct(c.null_pct)} NULL"))
    if c.nan_count:
        out.append(("warn", c.name, f"{c.nan_count:,} NaN values"))
    if c.empty_count:
        out.append(("warn", c.name, f"{c.empty_count:,} empty strings"))
    if c.non_null > 1 and c.distinct_approx == 1:
        out.append(("info", c.name, "constant: a single distinct value"))
    return out


def _null_level(pct: float) -> str:
    if pct == 0:
        return "ok"
    return "warn" if pct < 20 else "bad"


def _total_null_pct(p: Profile) -> float:
    cells = p.rows * len(p.columns)
    return 100.0 * sum(c.null_count for c in p.columns) / cells if cells else 0.0


def _pct(x: float) -> str:
    if x == 0:
        return "0%"
    if x < 0.1:
        return "<0.1%"
    return f"{x:.1f}%" if x < 99.95 or x == 100 else ">99.9%"


def _fmt(v: Any) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        if not math.isfinite(v):
            return str(v)
        if v != 0 and (abs(v) >= 1e9 or abs(v) < 1e-4):
            return f"{v:.4g}"
        return f"{v:,.4f}".rstrip("0").rstrip(".")
    if isinstance(v, int):
        return f"{v:,}"
    if v == "":
        return '""'
    # timestamps: seconds are precise enough for a report
    return _FRACTION.sub(r"\1", str(v))


def _short(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


# ----------------------------------------------------------------------------- SVG charts

_W, _H = 360, 120


def _histogram_svg(bins: Sequence[HistogramBin]) -> Markup:
    peak = max((b.count for b in bins), default=0) or 1
    n = len(bins)
    gap = 2 if n <= 30 else 1
    plot_h = _H - 22
    bw = (_W - gap * (n - 1)) / n
    parts = [
        f'<svg class="chart" viewBox="0 0 {_W} {_H}" width="{_W}" height="{_H}" role="img" '
        f'aria-label="histogram">',
        f'<line x1="0" y1="{plot_h + 0.5}" x2="{_W}" y2="{plot_h + 0.5}" class="axis"/>',
    ]
    for i, b in enumerate(bins):
        h = 0.0 if b.count == 0 else max(2.0, plot_h * b.count / peak)
        x = i * (bw + gap)
        label = f"{_fmt(b.lo)}" if b.lo == b.hi else f"{_fmt(b.lo)}{_DASH}{_fmt(b.hi)}"
        parts.append(
            f'<rect x="{x:.1f}" y="{plot_h - h:.1f}" width="{bw:.1f}" height="{h:.1f}" '
            f'class="bar"><title>{escape(label)}: {b.count:,}</title></rect>'
        )
    lo, hi = _short(_fmt(bins[0].lo), 22), _short(_fmt(bins[-1].hi), 22)
    parts.append(f'<text x="0" y="{_H - 4}" class="tick">{escape(lo)}</text>')
    parts.append(f'<text x="{_W}" y="{_H - 4}" class="tick" text-anchor="end">{escape(hi)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def _top_svg(top: Sequence[tuple[Any, int]], non_null: int) -> Markup:
    row_h, label_w, count_w = 18, 130, 100
    h = row_h * len(top) + 2
    bar_w = _W - label_w - count_w
    peak = max(n for _, n in top) or 1
    parts = [
        f'<svg class="chart" viewBox="0 0 {_W} {h}" width="{_W}" height="{h}" role="img" '
        f'aria-label="top values">'
    ]
    for i, (value, count) in enumerate(top):
        y = i * row_h
        w = max(1.0, bar_w * count / peak)
        share = 100.0 * count / non_null if non_null else 0.0
        text = _fmt(value)
        parts.append(
            f"<g><title>{escape(text)}: {count:,} ({share:.1f}%)</title>"
            f'<text x="{label_w - 6}" y="{y + 13}" class="label" text-anchor="end">'
            f"{escape(_short(text, 20))}</text>"
            f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row_h - 6}" class="bar2"/>'
            f'<text x="{label_w + w + 5:.1f}" y="{y + 13}" class="count">{count:,} · '
            f"{share:.0f}%</text></g>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))


__all__ = ["render_html"]
