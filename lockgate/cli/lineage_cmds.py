"""``lockgate lineage`` (column and dataset lineage, impact analysis), ``lockgate why``
(root cause of a failing check), ``lockgate anomalies`` and ``lockgate docs`` (the static
data dictionary)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import typer
from rich.markup import escape
from rich.tree import Tree as RichTree

from lockgate.cli.common import console, handle_errors, print_json
from lockgate.errors import UsageError

ProjectOpt = typer.Option(Path("."), "--project", "-p", help="project folder")

_KIND_STYLE = {"DIRECT": "green", "INDIRECT": "yellow", "DATASET": "cyan"}


@handle_errors
def lineage_cmd(
    target: str = typer.Argument(..., help="DATASET or DATASET.COLUMN"),
    upstream: bool = typer.Option(False, "--upstream", help="only what it is computed from"),
    downstream: bool = typer.Option(
        False, "--downstream", help="only what depends on it (impact: datasets, columns, checks)"
    ),
    depth: int = typer.Option(None, "--depth", min=1, help="hops to follow (default: all)"),
    project_dir: Path = ProjectOpt,
    as_json: bool = typer.Option(False, "--json", help="machine-readable JSON on stdout"),
) -> None:
    """Column (or dataset) lineage as a tree, upstream and downstream, with impact."""
    from lockgate.lineage import lineage_report
    from lockgate.project import load_project

    if upstream and downstream:
        raise UsageError("give at most one of --upstream and --downstream (default: both)")
    direction: Literal["upstream", "downstream", "both"] = (
        "upstream" if upstream else "downstream" if downstream else "both"
    )
    report = lineage_report(load_project(project_dir), target, direction=direction, depth=depth)
    if as_json:
        print_json(report)
        return
    _render(report)


def _label(node: dict[str, object]) -> str:
    text = f"[bold]{escape(str(node['node']))}[/]"
    kind = node.get("kind")
    if kind:
        style = _KIND_STYLE.get(str(kind), "white")
        sub = node.get("subtype")
        text += f" [{style}]{escape(str(kind))}{'/' + escape(str(sub)) if sub else ''}[/]"
    what = node.get("transformation")
    if what and node.get("subtype") != "IDENTITY":
        short = str(what) if len(str(what)) <= 90 else str(what)[:89] + "…"
        text += f" [dim]{escape(short)}[/]"
    if node.get("status") in ("opaque", "unknown"):
        text += f" [magenta]({escape(str(node['status']))})[/]"
    if node.get("note"):
        text += f" [magenta]({escape(str(node['note']))})[/]"
    if node.get("repeated"):
        text += " [dim](see above)[/]"
    return text


def _add(branch: RichTree, nodes: object, key: str) -> None:
    for child in nodes if isinstance(nodes, list) else []:
        sub = branch.add(_label(child))
        _add(sub, child.get(key), key)


def _render(report: dict[str, object]) -> None:
    for key, title in (("upstream", "upstream (computed from)"), ("downstream", "downstream")):
        if key not in report:
            continue
        root = RichTree(_label(report) + f" [dim]— {title}[/]")
        _add(root, report[key], key)
        if not report[key]:
            root.add("[dim]nothing[/]")
        console.print(root, soft_wrap=True)
    impact = report.get("impact")
    if isinstance(impact, dict):
        _render_impact(impact)


def _render_impact(impact: dict[str, object]) -> None:
    def names(key: str) -> list[dict[str, str]]:
        value = impact.get(key)
        return value if isinstance(value, list) else []

    datasets = impact.get("datasets") or []
    console.print(
        f"[bold]impact[/]: {len(datasets) if isinstance(datasets, list) else 0} datasets, "
        f"{len(names('columns'))} columns, {len(names('checks'))} checks",
        highlight=False,
    )
    if isinstance(datasets, list) and datasets:
        console.print("  datasets: " + escape(", ".join(map(str, datasets))), highlight=False)
    for c in names("checks"):
        console.print(
            f"  check [bold]{escape(c['dataset'] + '.' + c['check'])}[/] "
            f"reads {escape(c['column'])}",
            highlight=False,
        )
    opaque = impact.get("opaque") or []
    if isinstance(opaque, list) and opaque:
        console.print(
            "  [magenta]may depend (no column lineage):[/] " + escape(", ".join(map(str, opaque))),
            highlight=False,
        )


@handle_errors
def why_cmd(
    dataset: str = typer.Argument(..., help="dataset whose check failed"),
    check: str = typer.Argument(None, help="the check (default: its first failing check)"),
    run: str = typer.Option(None, "--run", help="run id or prefix (default: newest failure)"),
    project_dir: Path = ProjectOpt,
    as_json: bool = typer.Option(False, "--json", help="machine-readable JSON on stdout"),
) -> None:
    """Why did a check fail? Upstream evidence along its column lineage, ranked."""
    from lockgate.lineage.why import why
    from lockgate.project import load_project

    report = why(load_project(project_dir), dataset, check, run=run)
    if as_json:
        print_json(report.to_dict())
        return
    _render_why(report.to_dict())


def _render_why(r: dict[str, Any]) -> None:
    def line(text: str) -> None:
        console.print(text, highlight=False, soft_wrap=True)

    f = r["failing"]
    before = f.get("before")
    was = (
        f"; it passed in run {before['run_id'][:8]} ({before['failing_rows'] or 0} failing rows)"
        if before
        else ""
    )
    line(
        f"[bold red]{escape(r['dataset'])}.{escape(r['check'])}[/] failed in run "
        f"{r['run_id'][:8]}: {f['failing_rows']} failing rows{escape(was)}"
    )
    if r["upstream"]:
        ups = ", ".join(
            f"{u['node']} ({u['kind'].lower()}/{u['subtype'].lower()}, {u['hops']} hop)"
            for u in r["upstream"][:8]
        )
        line(f"[dim]reads {escape(', '.join(r['columns']))} ← {escape(ups)}[/]")
    for note in r["notes"]:
        line(f"[magenta]note:[/] {escape(note)}")
    if not r["candidates"]:
        line("no upstream change found between the failing and the passing run")
    else:
        line("[bold]likely causes[/] (most likely first):")
    for i, c in enumerate(r["candidates"][:10], 1):
        line(f"  {i}. [{c['score']:.2f}] {escape(c['summary'])}")
        for cmd in c["commands"]:
            line(f"       [dim]$ {escape(cmd)}[/]")
    for where, rows in r["input_rows"].items():
        line(f"[bold]input rows[/] behind the failing sample rows ({escape(where)}):")
        for row in rows[:5]:
            line("  " + escape(", ".join(f"{k}={v}" for k, v in row.items())))
    line("[bold]see more:[/]")
    for cmd in r["commands"]:
        line(f"  $ {escape(cmd)}")


@handle_errors
def anomalies_cmd(
    datasets: list[str] = typer.Argument(None, help="datasets (default: all)"),
    project_dir: Path = ProjectOpt,
    show_all: bool = typer.Option(False, "--all", help="list every metric, not only anomalies"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable JSON on stdout"),
) -> None:
    """Anomalies in the newest run's metrics (row count, quarantine rate, null rates ...)
    against each metric's history: robust baseline, weekday/hour seasonality, drift."""
    from dataclasses import asdict

    from lockgate.anomaly.history import dataset_anomalies
    from lockgate.project import load_project

    project = load_project(project_dir)
    found = [v for d in (datasets or list(project.datasets)) for v in dataset_anomalies(project, d)]
    shown = found if show_all else [v for v in found if v.verdict.anomalous]
    if as_json:
        print_json([asdict(v) for v in shown])
        return
    if not shown:
        console.print(f"[green]no anomaly[/] in {len(found)} metrics", highlight=False)
    for v in shown:
        mark = f"[red]{v.verdict.severity}[/]" if v.verdict.anomalous else "[green]ok[/]"
        console.print(
            f"{mark} {escape(v.dataset)} {escape(v.metric)} = {v.value:.6g} "
            f"(run {v.run_id[:8]}, {v.history} values before): {escape(v.verdict.reason)}",
            highlight=False,
            soft_wrap=True,
        )


@handle_errors
def docs_cmd(
    out: Path = typer.Option(
        None, "--out", "-o", help="folder to write the site into (default: <project>/docs_site)"
    ),
    project_dir: Path = ProjectOpt,
) -> None:
    """A static data dictionary (datasets, columns, owners, PII, checks with recent results
    and scores, column lineage, freshness): plain HTML, readable offline."""
    from lockgate.docsite import build_docs
    from lockgate.project import load_project

    project = load_project(project_dir)
    target = out if out is not None else project.root / "docs_site"
    pages = build_docs(project, target)
    console.print(
        f"wrote {len(pages)} pages to {escape(str(target))}; open {escape(str(pages[0]))}",
        highlight=False,
        soft_wrap=True,
    )


def register(app: typer.Typer) -> None:
    app.command("docs")(docs_cmd)
    app.command("lineage")(lineage_cmd)
    app.command("why")(why_cmd)
    app.command("anomalies")(anomalies_cmd)


__all__ = ["anomalies_cmd", "docs_cmd", "lineage_cmd", "register", "why_cmd"]
