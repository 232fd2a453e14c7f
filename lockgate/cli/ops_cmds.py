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
    common.add_commands(app, serve=serve_cmd, freshness=freshness_cmd, prune=prune_cmd)


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
