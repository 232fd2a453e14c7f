"""``serve`` (the scheduler with /healthz and /metrics), ``freshness`` (SLA status) and
``prune`` (retention of run history)."""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from types import FrameType

import typer
from rich.table import Table

from lockgate.cli import common
from lockgate.cli.common import JsonOpt, ProjectOpt, TargetOpt, handle_errors


def register(app: typer.Typer) -> None:
    common.add_commands(
        app,
        serve=serve_cmd,
        freshness=freshness_cmd,
        prune=prune_cmd,
        backfill=backfill_cmd,
        replay=replay_cmd,
    )


@handle_errors
def serve_cmd(
    port: int = typer.Option(8765, "--port", help="HTTP port of /healthz and /metrics (0: any)"),
    host: str = typer.Option("127.0.0.1", "--host", help="address to listen on"),
    poll: float = typer.Option(1.0, "--poll", min=0.01, help="seconds between schedule checks"),
    project_dir: Path = ProjectOpt,
    target: str | None = TargetOpt,
) -> None:
    """Run the project's schedules (lockgate.yaml `schedules:`) until stopped."""
    from lockgate.ops.clock import clock_from_env
    from lockgate.ops.serve import Server, open_service
    from lockgate.project import load_project

    service = open_service(load_project(project_dir, target=target), clock_from_env())
    server = Server(service, host=host, port=port, poll_s=poll)

    def stop(signum: int, frame: FrameType | None) -> None:
        server.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    # one machine-readable line: the port (useful with --port 0)
    print(f"lockgate serve: listening on http://{host}:{server.port}", flush=True)
    server.serve_forever()
    service.state.close()
    sys.stdout.flush()


@handle_errors
def freshness_cmd(
    project_dir: Path = ProjectOpt,
    target: str | None = TargetOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Freshness SLAs: the age of each dataset's newest publish against its limits.
    Exits 1 when a dataset breaches error_after (or was never published)."""
    from lockgate.ops.clock import clock_from_env
    from lockgate.ops.freshness import freshness
    from lockgate.project import load_project

    results = freshness(load_project(project_dir, target=target), clock_from_env()())
    bad = any(str(r.level) in ("error", "never") for r in results)
    if as_json:
        common.print_json([r.to_dict() for r in results])
    else:
        table = Table("dataset", "level", "last publish", "age", "warn after", "error after")
        style = {"ok": "green", "warn": "yellow", "error": "red", "never": "red"}
        for r in results:
            age = "-" if r.age_s is None else f"{r.age_s:.0f}s"
            last = r.last_publish.isoformat(timespec="seconds") if r.last_publish else "never"
            table.add_row(
                r.dataset,
                f"[{style[str(r.level)]}]{r.level}[/]",
                last,
                age,
                _secs(r.warn_after_s),
                _secs(r.error_after_s),
            )
        common.console.print(table if results else "no dataset declares `freshness:`")
    raise typer.Exit(common.EXIT_FAILED if bad else common.EXIT_OK)


@handle_errors
def prune_cmd(
    days: int = typer.Option(
        None, "--days", min=1, help="keep this many days (default: lockgate.yaml retention.days)"
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="count what would go, delete nothing"),
    project_dir: Path = ProjectOpt,
    target: str | None = TargetOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Delete run history older than the retention horizon; daily aggregates of scores and
    check results are kept, and so is each dataset's newest published step."""
    from lockgate.errors import UsageError
    from lockgate.project import load_project
    from lockgate.state import StateStore
    from lockgate.state.retention import prune

    project = load_project(project_dir, target=target)
    retention = project.config.retention
    keep = days if days is not None else (retention.days if retention is not None else None)
    if keep is None:
        raise UsageError("no retention horizon", hint="pass --days N or set `retention: {days: N}`")
    with StateStore.open(project.state_url) as state:
        res = prune(state, project.config.name, days=keep, dry_run=dry_run)
    if as_json:
        common.print_json(res.to_dict())
        return
    verb = "would delete" if dry_run else "deleted"
    common.console.print(
        f"{verb} {res.runs} runs older than {res.cutoff:%Y-%m-%d %H:%M} UTC "
        f"({res.steps} steps, {res.check_results} check results, {res.scores} scores); "
        f"kept {len(res.kept_runs)} old runs holding a dataset's newest published step",
        highlight=False,
        soft_wrap=True,
    )


def _secs(v: float | None) -> str:
    return "-" if v is None else f"{v:.0f}s"


@handle_errors
def backfill_cmd(
    dataset: str | None = typer.Argument(
        None, help="a partitioned dataset; NAME+ also backfills its downstream datasets"
    ),
    select: str | None = typer.Option(
        None, "--select", "-s", help="same as DATASET (e.g. --select daily+)"
    ),
    start: str | None = typer.Option(None, "--start", help="first interval (ISO date/time)"),
    end: str | None = typer.Option(None, "--end", help="end, exclusive (default: due now)"),
    max_active: int = typer.Option(1, "--max-active", min=1, help="chunks in flight at once"),
    chunk: int = typer.Option(1, "--chunk", min=1, help="intervals per chunk (one run each)"),
    dry_run: bool = typer.Option(False, "--dry-run", help="list the intervals, run nothing"),
    restate: bool = typer.Option(
        False,
        "--restate",
        help="run the done intervals of --start..--end again too (replacing them); "
        "NAME+ restates the overlapping intervals downstream",
    ),
    project_dir: Path = ProjectOpt,
    target: str | None = TargetOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Fill a partitioned dataset's missing intervals, oldest first, in chunks. Safe to
    kill: running the same command again resumes where it stopped. With --restate, the
    window's done intervals are run again as well (each replaces its rows: idempotent)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from lockgate.ops import intervals as iv
    from lockgate.ops.backfill import plan_backfill, run_backfill
    from lockgate.project import load_project

    project = load_project(project_dir, target=target)
    dataset = select or dataset
    if not dataset:
        from lockgate.errors import UsageError

        raise UsageError("name the dataset to backfill: lockgate backfill DATASET[+]")
    bp = plan_backfill(project, dataset, start=start, end=end, chunk=chunk, restate=restate)
    if dry_run:
        if as_json:
            common.print_json({**bp.to_dict(), "dry_run": True})
            return
        con = common.console
        what = "interval(s) to restate or fill" if restate else "missing interval(s)"
        con.print(
            f"backfill [bold]{bp.dataset}[/]: {bp.intervals} {what} in "
            f"{len(bp.chunks)} chunk(s) of up to {chunk} (planned in {bp.planning_s:.3f}s)"
        )
        for d, window in bp.restate.items():
            grain = project.datasets[d].partition.grain  # type: ignore[union-attr]
            lo, hi = window[0][0], window[-1][1]
            con.print(
                f"  restate {d}: {bp.restated.get(d, 0)} done interval(s) from "
                f"{iv.label(lo, grain)} to before {iv.label(hi, grain)} run again"
            )
        for c in bp.chunks:
            for d, items in c.intervals.items():
                grain = project.datasets[d].partition.grain  # type: ignore[union-attr]
                first, last = iv.label(items[0][0], grain), iv.label(items[-1][0], grain)
                span = first if first == last else f"{first} .. {last}"
                con.print(f"  chunk {c.index + 1}: {d} {span} ({len(items)})")
        if bp.after:
            con.print(f"  then: {', '.join(bp.after)} (one run)")
        return
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("intervals"),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=common.err_console,
        disable=as_json,
    )
    with progress:
        task = progress.add_task(f"backfill {bp.dataset}", total=bp.intervals)
        failed: list[int] = []

        def on_chunk(c: object, r: object) -> None:
            from lockgate.ops.backfill import Chunk
            from lockgate.runloop.results import RunResult

            assert isinstance(c, Chunk) and isinstance(r, RunResult)
            progress.advance(task, c.count)
            if r.ok:
                return
            failed.append(c.index)
            if len(failed) <= 5:  # the first few, one line each; `lockgate runs` has all
                s = next(s for s in r.steps if not s.ok)
                why = s.reason if len(s.reason) <= 160 else s.reason[:157] + "..."
                progress.console.print(
                    f"  chunk {c.index + 1} (run {r.run_id[:8]}): {s.dataset} {s.status}: {why}",
                    markup=False,
                )
            elif len(failed) == 6:
                progress.console.print("  … more chunks did not succeed (see `lockgate runs`)")

        from lockgate.ops.alerts import run_alerts

        with run_alerts(project) as alerts:
            result = run_backfill(
                project, bp, max_active=max_active, on_chunk=on_chunk, listeners=alerts
            )
    if as_json:
        common.print_json(result.to_dict())
    else:
        n_ok = sum(1 for r in result.runs if r.ok)
        common.console.print(
            f"backfill {bp.dataset}: {bp.intervals} interval(s), {len(result.runs)} run(s), "
            f"{n_ok} ok, in {result.seconds:.1f}s"
        )
    if not result.ok:
        raise typer.Exit(common.EXIT_FAILED)


@handle_errors
def replay_cmd(
    run_id: str = typer.Argument(..., help="the run (id or unique prefix; see `lockgate runs`)"),
    select: list[str] = typer.Option([], "--select", "-s", help="only these datasets"),
    into: Path | None = typer.Option(
        None, "--into", help="scratch warehouse (default: .lockgate/replay/<run>_…)"
    ),
    project_dir: Path = ProjectOpt,
    target: str | None = TargetOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Rebuild what a run published from its pinned inputs and recorded definitions into a
    scratch warehouse; compare each table's content with the original. Exit 1 on a difference."""
    from lockgate.ops.replay import replay
    from lockgate.project import load_project

    project = load_project(project_dir, target=target)
    result = replay(project, run_id, select=select, into=into)
    if as_json:
        common.print_json(result.to_dict())
    else:
        table = Table(title=f"replay of run {result.run_id[:12]} into {result.into}")
        for col in ("dataset", "version", "result", "rows (run / replay)", "why"):
            table.add_column(col)
        style = {
            "identical": "green",
            "different": "red",
            "skipped": "dim",
            "cannot": "yellow",
            "error": "red",
        }
        for t in result.tables:
            table.add_row(
                t.dataset,
                str(t.version),
                f"[{style.get(t.status, 'white')}]{t.status}[/]",
                f"{t.recorded_rows} / {t.replayed_rows}" if t.recorded_rows is not None else "",
                t.reason,
            )
        common.console.print(table)
    if not result.ok:
        raise typer.Exit(common.EXIT_FAILED)
