"""Templates: Jinja2 with autoescaping on, and every value printed passed through
:func:`lockgate.redact.redact` first (secrets never reach a page)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from lockgate.redact import redact_any, redact_memo
from lockgate.ui.security import CSRF_COOKIE, csrf_token


def _finalize(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, Markup):
        return value
    if isinstance(value, str):
        return redact_memo(value)
    return value


def _dt(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else ""


def _dur(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:.2f}s" if value < 60 else f"{int(value // 60)}m{int(value % 60):02d}s"


def _num(value: int | float | None) -> str:
    return "" if value is None else f"{value:,}"


def _chart_json(value: Any) -> Markup:
    """Data for a chart in a ``<script type="application/json">``: ``<``, ``>`` and ``&``
    escaped so that no value can close the script element."""
    text = json.dumps(redact_any(value), default=str)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(text)


def _env() -> Environment:
    env = Environment(
        loader=FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        finalize=_finalize,
    )
    env.filters.update(dt=_dt, dur=_dur, num=_num, chart_json=_chart_json)
    return env


templates = Jinja2Templates(env=_env())


def page(request: Request, name: str, ctx: dict[str, Any], status: int = 200) -> Response:
    """Render ``name``; the page carries this browser's CSRF value for its forms."""
    csrf = csrf_token(request)
    ui = request.app.state.ui
    resp: HTMLResponse = templates.TemplateResponse(
        request,
        name,
        {"csrf": csrf, "project": ui.name, "auth": ui.auth_required, **ctx},
        status_code=status,
    )
    if request.cookies.get(CSRF_COOKIE) != csrf:
        resp.set_cookie(
            CSRF_COOKIE,
            csrf,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
    return resp
