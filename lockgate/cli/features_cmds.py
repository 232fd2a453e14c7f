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
