"""``lockgate features …``: training sets from feature views (point-in-time correct)."""

from __future__ import annotations

import json
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
        ..., help="a feature service, or feature views / view:feature refs"
    ),
    entities: Path = typer.Option(
        ..., "--entities", "-e", help="entity rows (.parquet or .csv): keys + a timestamp"
    ),
    out: Path = typer.Option(..., "--out", "-o", help="the training set, written as Parquet"),
    timestamp_column: str = typer.Option("event_timestamp", "--timestamp-column"),
    strategy: str = typer.Option("auto", help="auto | range | timeline"),
    full_feature_names: bool = typer.Option(
        False, "--full-feature-names", help="name feature columns view__feature"
    ),
    project: Path = typer.Option(Path("."), "--project", "-p", help="project folder"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable summary"),
) -> None:
    """Join every entity row to the feature values known at its timestamp; write Parquet."""
    import pyarrow.parquet as pq

    from lockgate.errors import UsageError
    from lockgate.features.offline import training_set

    if strategy not in ("auto", "range", "timeline"):
        raise UsageError(f"unknown strategy {strategy!r}", hint="auto, range or timeline")
    table = training_set(
        project,
        features,
        entities,
        timestamp_column=timestamp_column,
        strategy=strategy,  # type: ignore[arg-type]  # checked above
        full_feature_names=full_feature_names,
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, out)
    meta = json.loads((table.schema.metadata or {}).get(b"lockgate.feature_versions", b"{}"))
    summary = {
        "rows": table.num_rows,
        "columns": table.column_names,
        "out": str(out),
        "views": meta,
    }
    if as_json:
        print_json(summary)
        return
    console.print(f"wrote {table.num_rows} rows to {out}", highlight=False)
    for name, info in meta.items():
        console.print(
            f"  {name}: dataset {info['dataset']} v{info['version']} ({info['strategy']})",
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


@features_app.command("serve")
@handle_errors
def serve_cmd(
    port: int = typer.Option(6566, "--port", help="HTTP port (Feast's default)"),
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
    proj = load_project(project)
    uvicorn.run(FeatureServer(proj, open_store(proj)), host=host, port=port, log_level="warning")
