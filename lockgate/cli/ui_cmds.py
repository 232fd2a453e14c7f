"""``lockgate ui`` (the dashboard) and ``lockgate ui-token`` (its API tokens)."""

from __future__ import annotations

from pathlib import Path

import typer

from lockgate.cli.common import console, handle_errors
from lockgate.cli.project_cmds import ProjectOpt

token_app = typer.Typer(help="API tokens of the dashboard (stored hashed in the state store).")


def register(app: typer.Typer) -> None:
    app.command("ui")(ui_cmd)
    app.add_typer(token_app, name="ui-token")


@handle_errors
def ui_cmd(
    host: str = typer.Option("127.0.0.1", "--host", help="address to listen on"),
    port: int = typer.Option(8765, "--port", help="port to listen on"),
    project_dir: Path = ProjectOpt,
) -> None:
    """Serve the dashboard. Beyond localhost it requires API tokens (see `ui-token`)."""
    from lockgate.ui import serve

    serve(project_dir, host=host, port=port)


@token_app.command("create")
@handle_errors
def token_create(
    name: str = typer.Argument(..., help="who or what the token is for"),
    role: str = typer.Option("viewer", "--role", help="viewer, operator or admin"),
    dataset: list[str] = typer.Option([], "--dataset", help="grant only these datasets"),
    project_dir: Path = ProjectOpt,
) -> None:
    """Create a token and print it once (only its hash is kept)."""
    from lockgate.errors import UsageError
    from lockgate.project import load_project
    from lockgate.state import StateStore
    from lockgate.state.dashboard import ROLES, create_token

    if role not in ROLES:
        raise UsageError(f"unknown role '{role}'", hint=f"one of: {', '.join(ROLES)}")
    project = load_project(project_dir)
    with StateStore.open(project.state_url) as state:
        info, secret = create_token(state, name, role, dataset or None)
    console.print(f"token {info.token_id} ({info.role}) for {info.name}:", highlight=False)
    print(secret)


@token_app.command("revoke")
@handle_errors
def token_revoke(token_id: str, project_dir: Path = ProjectOpt) -> None:
    """Revoke a token by id."""
    from lockgate.project import load_project
    from lockgate.state import StateStore
    from lockgate.state.dashboard import revoke_token

    project = load_project(project_dir)
    with StateStore.open(project.state_url) as state:
        done = revoke_token(state, token_id)
    console.print("revoked" if done else "no live token with that id", highlight=False)
