"""The run-event listeners a project's configuration asks for (imported by the runner; the
OpenLineage client is imported only when ``openlineage:`` is configured)."""

from __future__ import annotations

from lockgate.project import Project
from lockgate.runloop.events import Listener


def configured_listeners(project: Project) -> list[Listener]:
    """The OpenLineage listener when ``lockgate.yaml`` has an ``openlineage:`` block."""
    config = project.config.openlineage
    if config is None:
        return []
    from lockgate.lineage.openlineage import OpenLineageListener, make_transport

    transport = make_transport(config, project.root)
    return [OpenLineageListener(project, transport, config.namespace)]
