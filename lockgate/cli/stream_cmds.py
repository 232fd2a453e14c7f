"""``lockgate stream run NAME``: consume a stream into its sink table, exactly once."""

from __future__ import annotations

from pathlib import Path

import typer

from lockgate.cli.common import JsonOpt, ProjectOpt, TargetOpt, console, handle_errors, print_json

stream_app = typer.Typer(help="streams: consume Redis Streams / NATS JetStream into tables")


@handle_errors
def stream_run_cmd(
    name: str = typer.Argument(..., help="stream name (streams: in a dataset file)"),
    until_idle: bool = typer.Option(
        False, "--until-idle", help="stop when a fetch returns nothing (within max_latency)"
    ),
    max_seconds: float = typer.Option(None, "--max-seconds", min=0, help="stop after N seconds"),
    project_dir: Path = ProjectOpt,
    target: str | None = TargetOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Consume stream NAME: parse, dedup, check, mask, commit each batch, then acknowledge."""
    from lockgate.project import load_project
    from lockgate.streams.service import run_stream

    report = run_stream(
        load_project(project_dir, target=target),
        name,
        until_idle=until_idle,
        max_seconds=max_seconds,
    )
    c = report.counts
    out = {
        "stream": report.name,
        "batches": report.batches,
        "read": c.read,
        "published": c.published,
        "late": c.late,
        "dlq": c.dlq,
        "duplicates": c.duplicates,
        "already_committed": c.already_committed,
        "redelivered": c.redelivered,
        "enrich_missed": c.enrich_missed,
        "runs": report.runs,
        "seconds": round(report.seconds, 3),
        "events_per_second": round(report.events_per_second, 1),
    }
    if as_json:
        print_json(out)
        return
    console.print(
        f"stream {report.name}: {c.read} read in {report.batches} batch(es) → "
        f"{c.published} published, {c.late} late (late table), {c.dlq} to the DLQ, "
        f"{c.duplicates} duplicates skipped, "
        f"{c.already_committed} already committed ({report.events_per_second:,.0f} events/s)",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    stream_app.command("run")(stream_run_cmd)
    app.add_typer(stream_app, name="stream")
