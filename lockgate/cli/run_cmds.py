"""``run``, ``runs``, ``show`` (``quarantine`` is in :mod:`lockgate.cli.quarantine_cmd`)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from rich import box
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from lockgate.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    JsonOpt,
    ProjectOpt,
    TargetOpt,
    add_commands,
    console,
    err_console,
    handle_errors,
    print_json,
    render_checks,
)
from lockgate.dataset_view import SCORE_DEFINITION, SCORE_DOC
from lockgate.runloop.results import RunResult, StepResult, StepStatus
from lockgate.runloop.runner import Reporter

_STATUS_STYLE = {
    "success": "green",
    "noop": "dim",
    "blocked": "yellow",
    "failed": "red",
    "upstream_failed": "magenta",
    "planned": "cyan",
    "running": "cyan",
    "partial": "yellow",
    "interrupted": "red",
}


def _style(status: str) -> str:
    return f"[{_STATUS_STYLE.get(status, 'white')}]{status}[/]"


class RichReporter(Reporter):
    """Progress: a bar over the run's steps, naming the current step and phase, and a bar
    for the query running inside the step (DuckDB's own progress estimate)."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task: Any = None
        self.query_task: Any = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_started(self, run_id: str, datasets: list[str] | Any) -> None:
        self.total = len(datasets)
        self.done = 0
        self.task = self.progress.add_task(
            f"run {run_id[:8]}", total=self.total, count=f"0/{self.total}"
        )

    def watch(self, progress: Callable[[], float | None]) -> None:
        self.query_task = self.progress.add_task("  query", total=100, visible=False, count="")

        def poll() -> None:
            while not self._stop.wait(0.25):
                pct = progress()
                if pct is None:
                    self.progress.update(self.query_task, visible=False)
                else:
                    self.progress.update(
                        self.query_task, completed=pct, visible=True, count=f"{pct:.0f}%"
                    )

        self._thread = threading.Thread(target=poll, name="lockgate-progress", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1)

    def step_started(self, dataset: str) -> None:
        self.progress.update(self.task, description=f"{dataset}: starting")

    def step_phase(self, dataset: str, phase: str) -> None:
        self.progress.update(self.task, description=f"{dataset}: {phase}")

    def step_finished(self, result: StepResult) -> None:
        self.done += 1
        self.progress.update(self.task, advance=1, count=f"{self.done}/{self.total}")
        if result.status == StepStatus.NOOP:
            return
        # failures are explained once, after the summary (render_failures)
        self.progress.console.print(f"  {_style(str(result.status))} {result.dataset}")


def _load(project_dir: Path, target: str | None = None) -> Any:
    from lockgate.project import load_project

    return load_project(project_dir, target=target)


def register(app: typer.Typer) -> None:
    from lockgate.cli.quarantine_cmd import quarantine_cmd

    add_commands(app, run=run_cmd, runs=runs_cmd, show=show_cmd, quarantine=quarantine_cmd)


@handle_errors
def run_cmd(
    select: list[str] = typer.Option(
        [], "--select", "-s", help="datasets: NAME, NAME+ (with downstream), +NAME (with upstream)"
    ),
    full_refresh: bool = typer.Option(False, "--full-refresh", help="rebuild from all data"),
    dry_run: bool = typer.Option(False, "--dry-run", help="show what would run and why"),
    follow: bool = typer.Option(
        False,
        "--follow",
        help="change sources (postgres_cdc): keep reading new changes in micro-batches "
        "until interrupted (without it, a run reads what is available and stops)",
    ),
    max_workers: int | None = typer.Option(
        None,
        "--max-workers",
        "-j",
        min=1,
        help="datasets run at once (default: one per core; 1: one after another)",
    ),
    pushgateway: str | None = typer.Option(
        None, "--pushgateway", help="push the run's metrics to this Prometheus Pushgateway URL"
    ),
    project_dir: Path = ProjectOpt,
    target: str | None = TargetOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Run the pipeline: stage, audit, gate and publish every selected dataset."""
    from lockgate.ops.alerts import run_alerts
    from lockgate.runloop.plan import Plan, plan
    from lockgate.runloop.runner import execute

    project = _load(project_dir, target)
    if dry_run:
        preview = plan(project, select=select, full_refresh=full_refresh)
        steps = preview.results()
        if as_json:
            print_json([s.to_dict() for s in steps])
        else:
            t = Table(title=f"dry run: {project.config.name}")
            t.add_column("dataset")
            t.add_column("would")
            t.add_column("why")
            for s in steps:
                would = {"planned": "run", "noop": "skip"}.get(str(s.status), str(s.status))
                t.add_row(s.dataset, _style(would) if would != "run" else "[cyan]run[/]", s.reason)
            console.print(t)
            _rebuild_summary(preview)
        raise typer.Exit(EXIT_OK)

    from lockgate.runloop.follow import drain

    the_plan: Plan | None = plan(project, select=select, full_refresh=full_refresh)  # first
    out = err_console if as_json else console

    def run_once(refresh: bool) -> RunResult:
        nonlocal the_plan
        if the_plan is None:  # the next batch of change sources: a new run
            the_plan = plan(project, select=select, full_refresh=refresh)
        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[count]}"),
            TimeElapsedColumn(),
            console=out,
            transient=True,
        ) as progress:
            reporter = RichReporter(progress)
            try:
                with run_alerts(project) as alerts:  # alerts: in lockgate.yaml fire here too
                    metrics = _metrics(pushgateway)
                    result = execute(
                        the_plan,
                        reporter=reporter,
                        max_workers=max_workers,
                        listeners=[*alerts, *metrics],
                    )
            finally:
                reporter.close()
                the_plan = None
        if pushgateway and metrics:
            from lockgate.ops.metrics import push

            push(metrics[0], pushgateway, project.config.name)
        return result

    def show(result: RunResult) -> None:
        if as_json:
            print_json(result.to_dict())
        else:
            render_summary(result)
        render_failures(result)

    try:
        results = drain(
            run_once,
            full_refresh=full_refresh,
            follow=follow,
            wait_seconds=_follow_wait(project),
            on_run=show,
        )
    except KeyboardInterrupt:  # --follow ends with Ctrl-C (the batch in flight finished)
        raise typer.Exit(EXIT_OK) from None
    raise typer.Exit(EXIT_OK if all(r.ok for r in results[-1:]) else EXIT_FAILED)


def _follow_wait(project: Any) -> float:
    """How long ``--follow`` waits when nothing was left to read: the smallest
    ``max_latency`` of the project's change sources (1 s without one)."""
    from lockgate._duration import parse_duration

    waits = [
        parse_duration(str(latency)).total_seconds()
        for spec in project.datasets.values()
        if (latency := getattr(spec.source, "max_latency", None)) is not None
    ]
    return min(waits, default=1.0)


def _rebuild_summary(the_plan: Any) -> None:
    """One line per change that starts a rebuild: what changed, and what it rebuilds
    downstream (the datasets of the plan that run because an upstream publishes first)."""
    from lockgate.runloop.plan import Action, Cause

    steps = {s.dataset: s for s in the_plan.steps}
    roots = [s for s in the_plan.steps if s.action == Action.RUN and s.cause != Cause.UPSTREAM]
    if not roots:
        console.print("nothing to rebuild", highlight=False)
        return
    for root in roots:
        down = [
            s.dataset
            for s in the_plan.steps
            if s.cause == Cause.UPSTREAM and root.dataset in _ancestors(steps, s.dataset)
        ]
        tail = f" → rebuilds downstream: {', '.join(down)}" if down else ""
        console.print(
            f"[cyan]{escape(root.dataset)}[/]: {escape(root.reason)}{escape(tail)}",
            highlight=False,
            soft_wrap=True,
        )


def _ancestors(steps: dict[str, Any], name: str) -> set[str]:
    seen: set[str] = set()
    stack = list(steps[name].depends_on)
    while stack:
        n = stack.pop()
        if n not in seen:
            seen.add(n)
            stack.extend(steps[n].depends_on if n in steps else ())
    return seen


def _metrics(pushgateway: str | None) -> list[Any]:
    if not pushgateway:
        return []
    from lockgate.ops.metrics import RunMetrics

    return [RunMetrics()]


def render_failures(result: RunResult) -> None:
    """One message per failed or blocked step (what, where, fix) on stderr."""
    for s in result.steps:
        if s.status not in (StepStatus.FAILED, StepStatus.BLOCKED):
            continue
        err_console.print(
            f"[bold red]error:[/] {escape(s.reason)}", highlight=False, soft_wrap=True
        )
        if s.hint:
            err_console.print(f"[yellow]hint:[/] {escape(s.hint)}", highlight=False, soft_wrap=True)


def render_summary(result: RunResult) -> None:
    """One row per step (compact enough for 80 columns), then each step's notes in full:
    skip reasons, warnings and why a step did not run are never cut."""
    t = Table(
        title=f"run {result.run_id[:8]} · {result.project} · {_style(str(result.status))}"
        f" · {result.duration_s:.2f}s",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    for col, j in (
        ("dataset", "left"),
        ("status", "left"),
        ("in", "right"),
        ("published", "right"),
        ("quarantined", "right"),
        ("skipped", "right"),
        ("ver", "right"),
        ("checks", "right"),
        ("score", "right"),
        ("time", "right"),
    ):
        t.add_column(col, justify=j, overflow="fold")  # type: ignore[arg-type]
    notes: list[tuple[str, str]] = []
    for s in result.steps:
        n_checks = len(s.checks)
        failed = sum(1 for c in s.checks if not c.get("passed", True))
        checks = f"{n_checks - failed}/{n_checks}" if n_checks else "-"
        if failed:
            checks = f"[yellow]{checks}[/]"
        score = s.scores.get("overall")
        ran = s.status == StepStatus.SUCCESS
        if not ran and s.reason and not s.error:  # errors are printed below, with their hint
            notes.append((s.dataset, s.reason))
        notes += [(s.dataset, n) for n in (*_skip_note(s), *s.warnings)] if ran else []
        t.add_row(
            s.dataset,
            _style(str(s.status)),
            f"{s.rows_in:,}" if ran else "-",
            f"{s.rows_out:,}" if ran else "-",
            (f"[yellow]{s.rows_quarantined:,}[/]" if s.rows_quarantined else "0") if ran else "-",
            f"{s.rows_skipped:,}" if ran else "-",
            "-" if s.output_version is None else str(s.output_version),
            checks,
            "-" if score is None else f"{score:.3f}",
            f"{s.duration_s:.2f}s",
        )
    console.print(t)
    for dataset, note in notes:
        console.print(
            f"  [bold]{escape(dataset)}[/]: {escape(note)}", highlight=False, soft_wrap=True
        )


def _skip_note(s: StepResult) -> list[str]:
    """``skipped: already_published=3, duplicate_in_window=1`` (every skip has a reason)."""
    if not s.skip_reasons:
        return []
    return ["skipped: " + ", ".join(f"{k}={v:,}" for k, v in sorted(s.skip_reasons.items()))]


@handle_errors
def runs_cmd(
    run_id: str = typer.Argument(None, help="show one run (id or unique prefix)"),
    limit: int = typer.Option(20, "--limit", "-n"),
    show_pii: bool = typer.Option(
        False, "--show-pii", help="show personal (pii:) values in failing samples recorded unmasked"
    ),
    project_dir: Path = ProjectOpt,
    target: str | None = TargetOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Run history, newest first; or one run's steps and checks."""
    from lockgate.history_view import run_detail, runs

    project = _load(project_dir, target)
    if run_id:
        detail = run_detail(project, run_id, show_pii=show_pii)
        if as_json:
            print_json(detail)
            return
        _render_run(detail)
        return
    listed = runs(project, limit=limit)
    if as_json:
        print_json(listed)
        return
    t = Table(title=escape(f"runs · {project.config.name}"))
    for c in (
        "run",
        "seq",
        "status",
        "started",
        "duration",
        "selection",
        "steps",
        "published",
        "quarantined",
    ):
        t.add_column(c, overflow="fold")
    for r in listed:
        s = _get(r, "summary") or {}
        t.add_row(
            str(_get(r, "run_id"))[:8],
            str(_get(r, "seq")),
            _style(str(_get(r, "status"))),
            _fmt_time(_get(r, "started_at")),
            f"{_get(r, 'duration_s') or 0:.2f}s",
            str(_get(r, "selection") or "*"),
            str(s.get("steps", "")),
            f"{s.get('rows_out', 0):,}",
            f"{s.get('rows_quarantined', 0):,}",
        )
    console.print(t)


def _render_run(run: Any) -> None:
    console.print(
        f"run [bold]{_get(run, 'run_id')}[/] seq {_get(run, 'seq')} "
        f"{_style(str(_get(run, 'status')))} started {_fmt_time(_get(run, 'started_at'))}"
    )
    if _get(run, "error"):
        console.print(f"[red]{_get(run, 'error')}[/]")
    t = Table(title="steps")
    cols = ("dataset", "status", "rows in", "published", "quarantined", "skipped", "version")
    for c in (*cols, "reason"):
        t.add_column(c, overflow="fold")
    for s in _get(run, "steps") or []:
        reasons = _get(s, "skip_reasons") or {}
        why = [str(_get(s, "reason") or "")]
        if reasons:
            why.append("skipped: " + ", ".join(f"{k}={v:,}" for k, v in sorted(reasons.items())))
        t.add_row(
            str(_get(s, "dataset")),
            _style(str(_get(s, "status"))),
            str(_get(s, "rows_in") or 0),
            str(_get(s, "rows_out") or 0),
            str(_get(s, "rows_quarantined") or 0),
            str(_get(s, "rows_skipped") or 0),
            str(_get(s, "output_version") or "-"),
            escape("; ".join(w for w in why if w)),
        )
    console.print(t)
    checks = [c for s in (_get(run, "steps") or []) for c in (_get(s, "checks") or [])]
    if checks:
        render_checks(checks)


@handle_errors
def show_cmd(
    dataset: str = typer.Argument(..., help="dataset name"),
    rows: int = typer.Option(5, "--rows", help="sample rows to show"),
    show_pii: bool = typer.Option(
        False, "--show-pii", help="show the values of personal (pii:) columns in the sample"
    ),
    project_dir: Path = ProjectOpt,
    target: str | None = TargetOpt,
    as_json: bool = JsonOpt,
) -> None:
    """A dataset: schema, versions, last runs, latest checks, sample rows."""
    from lockgate.dataset_view import dataset_info

    project = _load(project_dir, target)
    info = dataset_info(project, dataset, sample_rows=rows, show_pii=show_pii)
    spec = project.datasets[dataset]
    schema = info["schema"]
    history = info["history"]
    steps = info["last_steps"]
    checks = info["checks"]
    if as_json:
        print_json(info)
        return
    console.print(f"[bold]{dataset}[/] ({spec.kind}) — {spec.description or ''}")
    console.print(
        f"upstream: {', '.join(info['upstream']) or '-'}   write: {info['write']['mode']}"
        f"   version: {info['version'] if info['version'] is not None else 'never published'}"
    )
    if schema:
        t = Table(title="schema")
        t.add_column("column", overflow="fold")
        t.add_column("type", overflow="fold")
        for f in schema:
            t.add_row(f["name"], f["type"])
        console.print(t)
    if history:
        t = Table(title="versions")
        for c in ("version", "timestamp", "operation", "run", "rows"):
            t.add_column(c, overflow="fold")
        for h in history:
            t.add_row(
                str(_get(h, "version")),
                _fmt_time(_get(h, "timestamp")),
                str(_get(h, "operation")),
                str((_get(h, "lockgate") or {}).get("run_id") or "")[:8],
                str(_get(h, "rows") or ""),
            )
        console.print(t)
    if steps:
        t = Table(title="last runs")
        for c in ("run", "status", "published", "quarantined", "skipped", "finished", "reason"):
            t.add_column(c, overflow="fold")
        for s in steps:
            t.add_row(
                str(_get(s, "run_id"))[:8],
                _style(str(_get(s, "status"))),
                str(_get(s, "rows_out") or 0),
                str(_get(s, "rows_quarantined") or 0),
                str(_get(s, "rows_skipped") or 0),
                _fmt_time(_get(s, "finished_at")),
                escape(str(_get(s, "reason") or "")),
            )
        console.print(t)
    if checks:
        latest_run = _get(checks[0], "run_id")
        render_checks(
            [c for c in checks if _get(c, "run_id") == latest_run],
            title=f"checks of run {str(latest_run)[:8]}",
        )
    for inc in info["drift_incidents"]:
        console.print(
            f"[yellow]schema drift[/] v{inc['version']} (run {str(inc['run_id'] or '')[:8]}, "
            f"{_fmt_time(inc['at'])}): {escape('; '.join(inc['changes']))}",
            highlight=False,
            soft_wrap=True,
        )
        reach = [*inc["affected_columns"], *(f"check {c}" for c in inc["affected_checks"])]
        if reach:
            console.print(f"  affects downstream: {escape(', '.join(reach))}", soft_wrap=True)
        if inc["opaque"]:
            console.print(
                f"  may affect (no column lineage): {escape(', '.join(inc['opaque']))}",
                soft_wrap=True,
            )
    if info["score"]:
        sc = info["score"]
        parts = [f"{d} {100 * v:.1f}%" for d, v in sc["scores"].items() if d != "overall"]
        console.print(
            f"quality score (run {escape(sc['run_id'][:8])}): "
            f"[bold]{100 * sc['scores'].get('overall', 0):.1f}%[/]"
            + (f" ({', '.join(parts)})" if parts else ""),
            highlight=False,
            soft_wrap=True,
        )
        console.print(f"[dim]{SCORE_DEFINITION}; see {SCORE_DOC}[/]", highlight=False)
    sample = info["sample"]
    if sample:
        t = Table(title=f"sample ({len(sample)} rows)")
        for n in sample[0]:
            t.add_column(n)
        for row in sample:
            t.add_row(*["∅" if v is None else str(v) for v in row.values()])
        console.print(t)


def _first_line(text: str, width: int) -> str:
    line = text.strip().split("\n", 1)[0]
    return line if len(line) <= width else line[: width - 1] + "…"


def _get(obj: Any, key: str) -> Any:
    if isinstance(obj, dict):
        return obj.get(key)
    return getattr(obj, key, None)


def _fmt_time(v: Any) -> str:
    if v is None:
        return "-"
    if hasattr(v, "strftime"):
        return str(v.strftime("%Y-%m-%d %H:%M:%S"))
    return str(v)[:19]
