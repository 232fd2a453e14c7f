"""``lockgate features …``: training sets from feature views (point-in-time correct)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from lockgate.cli.common import console, handle_errors, print_json

features_app = typer.Typer(
    name="features",
    help="Feature store: point-in-time training sets from feature views.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(features_app)


@features_app.command("training-set")
@handle_errors
def training_set_cmd(
    features: list[str] = typer.Argument(
        None, help="a feature service, or feature views / view:feature refs"
    ),
    entities: Path = typer.Option(
        None, "--entities", "-e", help="entity rows (.parquet or .csv): keys + a timestamp"
    ),
    out: Path = typer.Option(..., "--out", "-o", help="the training set, written as Parquet"),
    timestamp_column: str = typer.Option("event_timestamp", "--timestamp-column"),
    strategy: str = typer.Option("auto", help="auto | range | timeline"),
    full_feature_names: bool = typer.Option(
        False, "--full-feature-names", help="name feature columns view__feature"
    ),
    replay: str = typer.Option(
        None, "--replay", help="re-create recorded training set ID from its pinned inputs"
    ),
    record: bool = typer.Option(
        True, "--record/--no-record", help="record the set in the state store (for --replay)"
    ),
    project: Path = typer.Option(Path("."), "--project", "-p", help="project folder"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable summary"),
) -> None:
    """Join every entity row to the feature values known at its timestamp; write Parquet.
    Each set is recorded (id in the output's metadata); --replay ID makes it again."""
    import pyarrow.parquet as pq

    from lockgate.errors import UsageError
    from lockgate.features.offline import training_set
    from lockgate.features.recorded import ID_KEY, replay_training_set
    from lockgate.project import load_project

    identical: bool | None = None
    if replay:
        if features or entities:
            raise UsageError("--replay ID takes no features or --entities: they are recorded")
        again = replay_training_set(load_project(project), replay)
        table, identical = again.table, again.identical
    else:
        if not features or entities is None:
            raise UsageError("give the features and --entities FILE (or --replay ID)")
        if strategy not in ("auto", "range", "timeline"):
            raise UsageError(f"unknown strategy {strategy!r}", hint="auto, range or timeline")
        table = training_set(
            project,
            features,
            entities,
            timestamp_column=timestamp_column,
            strategy=strategy,  # type: ignore[arg-type]  # checked above
            full_feature_names=full_feature_names,
            record=record,
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, out)
    meta = table.schema.metadata or {}
    views = json.loads(meta.get(b"lockgate.feature_versions", b"{}"))
    summary = {
        "id": meta.get(ID_KEY, b"").decode(),
        "rows": table.num_rows,
        "columns": table.column_names,
        "out": str(out),
        "views": views,
        **({} if identical is None else {"identical": identical}),
    }
    if as_json:
        print_json(summary)
    else:
        console.print(f"wrote {table.num_rows} rows to {out} (id {summary['id']})", highlight=False)
        for name, info in views.items():
            console.print(
                f"  {name}: dataset {info['dataset']} v{info['version']} ({info['strategy']})",
                highlight=False,
            )
        if identical is not None:
            console.print(
                "identical to the recorded set" if identical else "DIFFERS from the recorded set",
                highlight=False,
            )
    if identical is False:
        raise typer.Exit(1)


@features_app.command("training-sets")
@handle_errors
def training_sets_cmd(
    project: Path = typer.Option(Path("."), "--project", "-p", help="project folder"),
    limit: int = typer.Option(50, "--limit"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
) -> None:
    """Recorded training sets, newest first: id, time, rows, the versions they pin."""
    from lockgate.project import load_project
    from lockgate.state import StateStore
    from lockgate.state.features import list_training_sets

    proj = load_project(project)
    with StateStore.open(proj.state_url) as state:
        recs = list_training_sets(state, proj.name, limit)
    rows = [
        {
            "id": r.id,
            "created_at": r.created_at.isoformat(),
            "features": r.features,
            "rows": r.rows,
            "views": {n: f"{i['dataset']}@v{i['version']}" for n, i in r.views.items()},
            "entities": r.entities.get("dataset") or r.entities.get("path") or r.entities["kind"],
            "sha256": r.result_sha256,
        }
        for r in recs
    ]
    if as_json:
        print_json(rows)
        return
    for row in rows:
        console.print(
            f"{row['id'][:12]}  {row['created_at'][:19]}  {row['rows']:>9} rows  "
            f"{' '.join(row['features'])}  {' '.join(row['views'].values())}",
            highlight=False,
        )


@features_app.command("materialize")
@handle_errors
def materialize_cmd(
    views: list[str] = typer.Argument(None, help="feature views (default: all)"),
    full_refresh: bool = typer.Option(
        False, "--full-refresh", help="recompute every entity instead of the changes"
    ),
    project: Path = typer.Option(Path("."), "--project", "-p", help="project folder"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable summary"),
) -> None:
    """Bring the online store (online_store: in lockgate.yaml) up to date: the latest known
    vector of every entity, incrementally from the Delta versions since the last time."""
    from lockgate.features.materialize import materialize
    from lockgate.project import load_project

    results = materialize(load_project(project), views or (), full_refresh=full_refresh)
    if as_json:
        print_json({name: r.as_dict() for name, r in results.items()})
        return
    for r in results.values():
        since = "" if r.from_version is None else f"v{r.from_version} -> "
        console.print(
            f"{r.view}: {r.mode} ({since}v{r.to_version}): {r.written} written, "
            f"{r.deleted} deleted — {r.reason}",
            highlight=False,
        )


@features_app.command("status")
@handle_errors
def status_cmd(
    view: str = typer.Argument(None, help="one feature view (default: all)"),
    limit: int = typer.Option(20, "--limit", min=1),
    project: Path = typer.Option(Path("."), "--project", "-p", help="project folder"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
) -> None:
    """Materialisation history, newest first: view, versions read, rows written, online
    store, when, and how it ended (a killed run shows as interrupted)."""
    from lockgate.features.history import materializations

    rows = materializations(project, view=view, limit=limit)
    if as_json:
        print_json(rows)
        return
    if not rows:
        console.print("no materialisation recorded yet (lockgate features materialize)")
        return
    for r in rows:
        since = "" if r["from_version"] is None else f"v{r['from_version']} -> "
        to = "?" if r["to_version"] is None else f"v{r['to_version']}"
        rows_txt = (
            "rows ?"
            if r["rows_written"] is None
            else (f"{r['rows_written']} written, {r['rows_deleted']} deleted")
        )
        ended = (r["finished_at"] or "unknown")[:19]
        console.print(
            f"{r['started_at'][:19]}  {r['status']:<11} {r['view']}  {r['mode'] or '?'} "
            f"({since}{to})  {rows_txt}",
            highlight=False,
            soft_wrap=True,
        )
        console.print(f"    finished {ended}, {r['online_store']}", highlight=False, soft_wrap=True)
        if r["error"]:
            console.print(f"    {r['error']}", highlight=False, soft_wrap=True)


@features_app.command("skew")
@handle_errors
def skew_cmd(
    features: list[str] = typer.Argument(
        ..., help="a feature service, or feature views / view:feature refs"
    ),
    sample: int = typer.Option(1000, "--sample", help="entity keys sampled per view"),
    training: Path = typer.Option(
        None, "--training", help="a training set (.parquet): PSI of its columns vs served values"
    ),
    max_psi: float = typer.Option(0.25, "--max-psi", help="exit 1 above this PSI"),
    seed: int = typer.Option(0, "--seed"),
    project: Path = typer.Option(Path("."), "--project", "-p", help="project folder"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable report"),
) -> None:
    """Training/serving skew: online vectors of sampled entities vs the offline answer now
    (exit 1 on any difference), and PSI against a training set (exit 1 above --max-psi)."""
    import pyarrow.parquet as pq

    from lockgate.features.skew import serving_skew
    from lockgate.project import load_project

    table = pq.read_table(training) if training is not None else None
    report = serving_skew(load_project(project), features, sample=sample, training=table, seed=seed)
    if as_json:
        print_json(report.as_dict())
    else:
        for f in report.features:
            psi = "" if f.psi is None else f"  PSI {f.psi:.4f}"
            console.print(
                f"{f.view}:{f.feature}: {f.mismatched} of {f.compared} differ{psi}",
                highlight=False,
            )
    drifted = any(f.psi is not None and f.psi > max_psi for f in report.features)
    if report.mismatched or drifted:
        raise typer.Exit(1)


@features_app.command("serve")
@handle_errors
def serve_cmd(
    port: int = typer.Option(6566, "--port", help="HTTP port (Feast's default; 0: any free one)"),
    host: str = typer.Option("127.0.0.1", "--host"),
    project: Path = typer.Option(Path("."), "--project", "-p", help="project folder"),
) -> None:
    """Serve POST /get-online-features (Feast-compatible), /health and /metrics."""
    from lockgate.errors import UsageError
    from lockgate.features.online import open_store
    from lockgate.features.serve import FeatureServer
    from lockgate.project import load_project

    try:
        import uvicorn  # type: ignore[import-not-found, unused-ignore]
    except ImportError as e:
        raise UsageError(
            "serving needs uvicorn", hint="pip install uvicorn (or lockgate[serve])"
        ) from e
    import socket

    proj = load_project(project)
    app = FeatureServer(proj, open_store(proj))
    # bound before the line is printed: a client that read it can connect at once (--port 0
    # picks a free port)
    sock = socket.create_server((host, port), backlog=2048)
    bound = sock.getsockname()[1]
    console.print(f"listening on http://{host}:{bound}", highlight=False)
    sys.stdout.flush()
    config = uvicorn.Config(app, log_level="warning", access_log=False)
    uvicorn.Server(config).run(sockets=[sock])
