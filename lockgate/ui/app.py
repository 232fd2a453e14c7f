"""The dashboard's web app: HTML pages (Jinja2, readable without JavaScript; htmx and uPlot
served from the package) and a JSON API with an OpenAPI spec at ``/api/openapi.json``."""

from __future__ import annotations

import csv
import dataclasses
import io
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from fastapi import Depends, FastAPI, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from markupsafe import Markup

from lockgate import api
from lockgate.errors import UsageError
from lockgate.quarantine_view import QuarantinePage
from lockgate.state import StateStore
from lockgate.state import dashboard as dash
from lockgate.ui import queries as q
from lockgate.ui.lineage import column_layout, column_svg, edges_of, layout, neighbourhood
from lockgate.ui.render import page
from lockgate.ui.security import (
    CSRF_COOKIE,
    TOKEN_COOKIE,
    NeedLogin,
    Principal,
    check_csrf,
    principal,
    require,
    require_dataset,
)

if TYPE_CHECKING:
    from lockgate.lineage.model import LineageGraph
    from lockgate.project import Project

HERE = Path(__file__).parent
log = logging.getLogger(__name__)


@dataclass
class UI:
    """What the app serves: one project, its state store, whether auth is required."""

    project: Project
    state: StateStore
    auth_required: bool
    runs_started: list[str] = field(default_factory=list)
    _lineage: LineageGraph | None = None

    @property
    def name(self) -> str:
        return self.project.config.name

    def lineage(self) -> LineageGraph:
        """The project's column lineage (analysed once: the project does not change while
        the app serves it; published schemas fill in undeclared columns)."""
        if self._lineage is None:
            from lockgate.lineage import project_lineage

            self._lineage = project_lineage(self.project)
        return self._lineage

    def is_pii(self, dataset: str) -> bool:
        from lockgate.pii import spec_pii

        return bool(spec_pii(self.project.datasets[dataset]))


def create_app(
    project: Project, *, auth_required: bool, state: StateStore | None = None
) -> FastAPI:
    """The app for ``project``; ``auth_required`` as decided by :func:`lockgate.ui.serve`."""
    ui = UI(project, state or StateStore.open(project.state_url), auth_required)
    dash.rollup_daily_scores(ui.state)  # a long history is rolled up now, not on a request
    app = FastAPI(
        title=f"lockgate dashboard: {ui.name}",
        openapi_url="/api/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    app.state.ui = ui
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.add_exception_handler(NeedLogin, _to_login)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(UsageError, _usage_error)
    app.include_router(_pages())
    app.include_router(_api_routes())
    return app


def _ui(request: Request) -> UI:
    ui: UI = request.app.state.ui
    return ui


def who(request: Request) -> Principal:
    ui = _ui(request)
    p = principal(request, ui.state, ui.auth_required)
    require(p, "viewer")
    return p


async def _to_login(request: Request, exc: Exception) -> Response:
    return RedirectResponse("/login", status_code=303)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if request.url.path.startswith("/api/"):
        from fastapi.responses import JSONResponse

        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)
    return page(
        request,
        "error.html",
        {"code": exc.status_code, "detail": exc.detail},
        status=exc.status_code,
    )


async def _usage_error(request: Request, exc: Exception) -> Response:
    return await _http_error(request, HTTPException(404, str(exc)))


def _audit_read(ui: UI, p: Principal, action: str, dataset: str, detail: dict[str, Any]) -> None:
    """Quarantine and sample reads of a PII dataset go to the audit log."""
    if ui.is_pii(dataset):
        dash.audit(ui.state, ui.name, p.actor, action, dataset, detail)


# --- pages -----------------------------------------------------------------------------
def _pages() -> Any:
    from fastapi import APIRouter

    r = APIRouter(include_in_schema=False)
    r.add_api_route("/", overview, methods=["GET"], response_class=HTMLResponse)
    r.add_api_route("/runs", runs_page, methods=["GET"], response_class=HTMLResponse)
    r.add_api_route("/runs", trigger_run, methods=["POST"])
    r.add_api_route("/runs/{run_id}", run_page, methods=["GET"], response_class=HTMLResponse)
    r.add_api_route("/datasets/{name}", dataset_page, methods=["GET"], response_class=HTMLResponse)
    r.add_api_route(
        "/datasets/{name}/quarantine", quarantine_page, methods=["GET"], response_class=HTMLResponse
    )
    r.add_api_route("/datasets/{name}/quarantine.csv", quarantine_csv, methods=["GET"])
    r.add_api_route("/lineage", lineage_page, methods=["GET"], response_class=HTMLResponse)
    r.add_api_route("/audit", audit_page, methods=["GET"], response_class=HTMLResponse)
    r.add_api_route("/login", login_form, methods=["GET"], response_class=HTMLResponse)
    r.add_api_route("/login", login, methods=["POST"])
    r.add_api_route("/logout", logout, methods=["POST"])
    return r


def _visible(ui: UI, p: Principal) -> list[str]:
    return [d for d in ui.project.datasets if p.sees(d)]


def overview(request: Request, p: Principal = Depends(who)) -> Response:
    ui = _ui(request)
    runs = q.run_rows(dash.runs_page(ui.state, ui.name, limit=15))
    ctx = {
        "runs": runs,
        "risks": q.at_risk(ui.project, ui.state, _visible(ui, p)),
        "scores": q.score_series(ui.state, ui.name, None),
        "datasets": _visible(ui, p),
    }
    return page(request, "overview.html", ctx)


def runs_page(
    request: Request, before: int | None = Query(None), p: Principal = Depends(who)
) -> Response:
    ui = _ui(request)
    runs = q.run_rows(dash.runs_page(ui.state, ui.name, limit=50, before_seq=before))
    nxt = runs[-1]["seq"] if len(runs) == 50 else None
    return page(request, "runs.html", {"runs": runs, "next_before": nxt})


def run_page(request: Request, run_id: str, p: Principal = Depends(who)) -> Response:
    ui = _ui(request)
    detail = ui.state.get_run(run_id, project=ui.name)
    if detail is None:
        raise HTTPException(404, f"no run {run_id!r}")
    steps = [s for s in detail.steps if p.sees(s.dataset)]
    ctx = {
        "run": detail.run,
        "steps": steps,
        "checks": detail.checks,
        "attempts": detail.attempts,
        "bars": [b for b in q.gantt(detail) if p.sees(b["dataset"])],
        "replay": q.replay_command(detail.run),
    }
    return page(request, "run.html", ctx)


def dataset_page(request: Request, name: str, p: Principal = Depends(who)) -> Response:
    ui = _ui(request)
    require_dataset(p, name)
    info = api.dataset_info(ui.project, name, sample_rows=10, show_pii=sees_pii(p))
    if info["sample"]:
        _audit_read(ui, p, "read_sample", name, {"rows": len(info["sample"])})
    spec = ui.project.datasets[name]
    ctx = {
        "info": info,
        "spec": spec,
        "versions": q.drifted(dash.schema_versions(ui.state, ui.name, name)),
        "trends": q.check_trends(info["checks"]),
        "scores": q.score_series(ui.state, ui.name, name),
        "downstream": sorted(d for d, ups in ui.project.deps.items() if name in ups),
        "column_svg": _column_neighbourhood(ui, p, name),
    }
    return page(request, "dataset.html", ctx)


def _column_neighbourhood(ui: UI, p: Principal, name: str) -> Markup:
    """The dataset's column lineage one hop up and down (datasets the user may see)."""
    deps = {d: ups for d, ups in ui.project.deps.items() if p.sees(d)}
    names = neighbourhood(deps, name, 1) & set(_visible(ui, p))
    lay = layout(tuple(sorted(names)), edges_of(deps, names))
    cl = column_layout(lay, ui.lineage())
    pii = {n: ui.project.datasets[n].pii for n in names}
    return column_svg(cl, lambda n: f"/datasets/{quote(n)}", focus=name, pii=pii)


@dataclass(frozen=True)
class QFilter:
    """The quarantine browser's filters (and page cursor), from the query string."""

    run: str | None = None
    check: str | None = None
    column: str | None = None
    value: str | None = None
    after: str | None = None
    history: str | None = None  # "1": include rows of batches a later run replaced

    def query(self, **extra: str) -> str:
        """The query string of these filters without the cursor, plus ``extra``."""
        from urllib.parse import urlencode

        keep = {k: v for k, v in self.set().items() if k != "after"}
        return urlencode({**keep, **extra})

    def set(self) -> dict[str, str]:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


def _qfilters(
    run: str | None = Query(None),
    check: str | None = Query(None),
    column: str | None = Query(None),
    value: str | None = Query(None),
    after: str | None = Query(None),
    history: str | None = Query(None),
) -> QFilter:
    keep = value if column else None
    hist = "1" if history else None
    return QFilter(run or None, check or None, column or None, keep, after or None, hist)


def _qpage(
    ui: UI, p: Principal, name: str, f: QFilter, limit: int, after: str | None = None
) -> QuarantinePage:
    return api.quarantine_page(
        ui.project,
        name,
        run=f.run,
        check=f.check,
        column=f.column,
        value=f.value,
        after=after or f.after,
        limit=limit,
        include_history=f.history is not None,
        show_pii=sees_pii(p),
    )


def sees_pii(p: Principal) -> bool:
    """Personal values are shown to admins (and on localhost without tokens, whose
    principal is the local admin); everyone else sees them masked (:mod:`lockgate.pii`)."""
    return p.can("admin")


def _quarantine_read(request: Request, p: Principal, name: str, action: str, f: QFilter) -> UI:
    """Check the grant for ``name`` and audit the read (PII datasets)."""
    ui = _ui(request)
    require_dataset(p, name)
    _audit_read(ui, p, action, name, f.set())
    return ui


def quarantine_page(
    request: Request,
    name: str,
    f: QFilter = Depends(_qfilters),
    p: Principal = Depends(who),
) -> Response:
    ui = _quarantine_read(request, p, name, "read_quarantine", f)
    pg = _qpage(ui, p, name, f, 50)
    tpl = "_quarantine_rows.html" if request.headers.get("hx-request") else "quarantine.html"
    return page(request, tpl, {"name": name, "pg": pg, "f": f})


def quarantine_csv(
    request: Request,
    name: str,
    f: QFilter = Depends(_qfilters),
    p: Principal = Depends(who),
) -> Response:
    ui = _quarantine_read(request, p, name, "export_quarantine", f)
    first = _qpage(ui, p, name, f, 5000)
    cols = [c for c in first.columns if c != "_lg_why"] + ["_lg_why"]

    def rows() -> Iterator[str]:
        pg = first
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        while True:
            for r in pg.rows:
                w.writerow(_csv_row(r))
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
            if pg.next_after is None:
                return
            pg = _qpage(ui, p, name, f, 5000, after=pg.next_after)

    headers = {"content-disposition": f'attachment; filename="{name}__quarantine.csv"'}
    return StreamingResponse(rows(), media_type="text/csv", headers=headers)


def _csv_row(r: dict[str, Any]) -> dict[str, Any]:
    from lockgate.redact import redact

    out: dict[str, Any] = {}
    for k, v in r.items():
        if k == "_lg_why":
            v = "; ".join(f"{w['check']}: {w['reason']}" for w in v)
        elif isinstance(v, list):
            v = ",".join(map(str, v))
        out[k] = redact(str(v)) if isinstance(v, str) else v
    return out


def lineage_page(
    request: Request,
    focus: str | None = Query(None),
    hops: int = Query(2, ge=0, le=20),
    search: str | None = Query(None),
    level: str = Query("dataset", pattern="^(dataset|column)$"),
    indirect: bool = Query(False),
    p: Principal = Depends(who),
) -> Response:
    ui = _ui(request)
    deps = {d: ups for d, ups in ui.project.deps.items() if p.sees(d)}
    names = set(_visible(ui, p))
    matches = sorted(n for n in names if search and search.lower() in n.lower())
    if focus is None and len(matches) == 1:
        focus = matches[0]
    if focus is not None and focus in names:
        names = neighbourhood(deps, focus, hops) & names
    lay = layout(tuple(sorted(names)), edges_of(deps, names))
    ctx: dict[str, Any] = {
        "lay": lay,
        "focus": focus,
        "hops": hops,
        "search": search or "",
        "matches": matches,
        "level": level,
        "indirect": indirect,
    }
    if level == "column":
        cl = column_layout(lay, ui.lineage(), indirect=indirect)
        pii = {n: ui.project.datasets[n].pii for n in names if n in ui.project.datasets}
        ctx["columns"] = cl
        ctx["svg"] = column_svg(cl, lambda n: f"/datasets/{quote(n)}", focus=focus, pii=pii)
    return page(request, "lineage.html", ctx)


def audit_page(request: Request, p: Principal = Depends(who)) -> Response:
    require(p, "admin")
    ui = _ui(request)
    return page(request, "audit.html", {"entries": dash.audit_entries(ui.state, ui.name, 200)})


def trigger_run(
    request: Request,
    select: str = Form(""),
    csrf: str = Form(""),
    p: Principal = Depends(who),
) -> Response:
    """Start a run of the selection in the background (operator)."""
    ui = _ui(request)
    require(p, "operator")
    check_csrf(request, p, csrf)
    names = select.split()
    for n in names:
        require_dataset(p, n.strip("+"))
    ui.project.select(names)  # unknown names: UsageError before anything starts
    dash.audit(ui.state, ui.name, p.actor, "trigger_run", select or "*", {"select": names})
    threading.Thread(target=_run, args=(ui, names), daemon=True).start()
    return RedirectResponse("/runs", status_code=303)


def _run(ui: UI, names: list[str]) -> None:
    """A run started from the dashboard; its outcome is in the state store like any run's
    (a run already holding the project lock makes this one a logged no-op)."""
    from lockgate.errors import LockgateError

    try:
        res = api.run(ui.project, select=names)
    except LockgateError as e:
        log.warning("run from the dashboard did not start: %s", e)
        return
    ui.runs_started.append(res.run_id)


def login_form(request: Request) -> Response:
    return page(request, "login.html", {})


def login(request: Request, token: str = Form(...), csrf: str = Form("")) -> Response:
    ui = _ui(request)
    check_csrf(request, Principal("anonymous", "viewer", None), csrf)
    tok = dash.verify_token(ui.state, token)
    if tok is None:
        return page(request, "login.html", {"error": "unknown or revoked token"}, status=401)
    resp = RedirectResponse("/", status_code=303)
    resp.set_cookie(
        TOKEN_COOKIE, token, httponly=True, samesite="strict", secure=request.url.scheme == "https"
    )
    return resp


def logout(request: Request, csrf: str = Form("")) -> Response:
    check_csrf(request, Principal("anonymous", "viewer", None), csrf)
    resp = RedirectResponse("/login", status_code=303)
    resp.delete_cookie(TOKEN_COOKIE)
    resp.delete_cookie(CSRF_COOKIE)
    return resp


# --- JSON API --------------------------------------------------------------------------
def _api_routes() -> Any:
    from fastapi import APIRouter

    r = APIRouter(prefix="/api", tags=["read"])

    @r.get("/runs")
    def api_runs(
        request: Request,
        before: int | None = None,
        limit: int = Query(50, ge=1, le=500),
        p: Principal = Depends(who),
    ) -> list[dict[str, Any]]:
        ui = _ui(request)
        return q.run_rows(dash.runs_page(ui.state, ui.name, limit=limit, before_seq=before))

    @r.get("/runs/{run_id}")
    def api_run(request: Request, run_id: str, p: Principal = Depends(who)) -> dict[str, Any]:
        ui = _ui(request)
        detail = ui.state.get_run(run_id, project=ui.name)
        if detail is None:
            raise HTTPException(404, f"no run {run_id!r}")
        return _jsonable(
            {
                "run": detail.run,
                "steps": [s for s in detail.steps if p.sees(s.dataset)],
                "checks": _seen_checks(
                    ui, p, [c for cs in detail.checks.values() for c in cs if p.sees(c.dataset)]
                ),
            }
        )

    @r.get("/datasets/{name}/quarantine")
    def api_quarantine(
        request: Request,
        name: str,
        f: QFilter = Depends(_qfilters),
        limit: int = Query(50, ge=1, le=1000),
        p: Principal = Depends(who),
    ) -> dict[str, Any]:
        ui = _quarantine_read(request, p, name, "read_quarantine", f)
        pg = _qpage(ui, p, name, f, limit)
        return _jsonable({"rows": pg.rows, "next_after": pg.next_after, "total": pg.total})

    return r


def _seen_checks(ui: UI, p: Principal, records: list[Any]) -> list[Any]:
    """Recorded check results; their personal samples masked for readers below admin."""
    from lockgate.pii import mask_recorded

    return records if sees_pii(p) else mask_recorded(ui.project, records)


def _jsonable(obj: dict[str, Any]) -> dict[str, Any]:
    from lockgate.redact import redact_any
    from lockgate.state.tables import jsonable

    def conv(o: Any) -> Any:
        if dataclasses.is_dataclass(o) and not isinstance(o, type):
            return {k: conv(v) for k, v in dataclasses.asdict(o).items()}
        if isinstance(o, dict):
            return {k: conv(v) for k, v in o.items()}
        if isinstance(o, list):
            return [conv(v) for v in o]
        return o

    out: dict[str, Any] = redact_any(jsonable(conv(obj)))
    return out
