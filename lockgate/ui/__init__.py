"""``lockgate ui``: the dashboard (runs, quality, quarantine, lineage) over the state store
and the warehouse. Needs the ``ui`` extra (``pip install 'lockgate[ui]'``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from lockgate.errors import UsageError

if TYPE_CHECKING:
    from fastapi import FastAPI

    from lockgate.project import Project


def auth_required(project: Project, host: str) -> bool:
    """Whether the dashboard on ``host`` requires a token: beyond localhost always (and it
    refuses to start when no token exists), on localhost once any token exists."""
    from lockgate.state import StateStore
    from lockgate.state.dashboard import has_tokens
    from lockgate.ui.security import is_loopback

    with StateStore.open(project.state_url) as state:
        tokens = has_tokens(state)
    if not is_loopback(host) and not tokens:
        raise UsageError(
            f"refusing to serve the dashboard on {host} without authentication",
            hint="create a token first (`lockgate ui-token create NAME --role viewer`), "
            "or listen on 127.0.0.1",
        )
    return tokens or not is_loopback(host)


def build(project_dir: Path, host: str) -> FastAPI:
    from lockgate.project import load_project
    from lockgate.ui.app import create_app

    project = load_project(project_dir)
    return create_app(project, auth_required=auth_required(project, host))


def serve(project_dir: Path, host: str = "127.0.0.1", port: int = 8765) -> None:
    import uvicorn

    uvicorn.run(build(project_dir, host), host=host, port=port, log_level="info")
