"""The warehouse's identity: ``<warehouse>/_lockgate_project.json``.

Written on a project's first run, it says which project the warehouse holds (a random
``project_id`` plus the project name). The state store keys what it knows of a project by
this id, so a second project with the same name, or a deleted/replaced warehouse, is told
apart from the one the state store remembers (see :mod:`lockgate.runloop.identity`).
"""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from lockgate.errors import TerminalError

IDENTITY_FILE = "_lockgate_project.json"


class WarehouseIdentityError(TerminalError):
    """The warehouse's identity file is unreadable."""

    exit_code = 2


@dataclass(frozen=True)
class WarehouseIdentity:
    project_id: str
    name: str
    created_at: str


def identity_path(warehouse: Path) -> Path:
    return Path(warehouse) / IDENTITY_FILE


def read_identity(warehouse: Path) -> WarehouseIdentity | None:
    """The identity written into ``warehouse``; None when there is none (a new, emptied
    or pre-identity warehouse)."""
    path = identity_path(warehouse)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        return None
    except (OSError, UnicodeDecodeError) as e:
        raise _bad(path, f"cannot be read ({e})") from e
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise _bad(path, f"is not valid JSON ({e.msg} at line {e.lineno})") from e
    pid = data.get("project_id") if isinstance(data, dict) else None
    if not isinstance(pid, str) or not pid or len(pid) > 32 or not pid.isalnum():
        raise _bad(path, "has no valid 'project_id'")
    return WarehouseIdentity(
        project_id=pid, name=str(data.get("name", "")), created_at=str(data.get("created_at", ""))
    )


def write_identity(warehouse: Path, name: str, project_id: str | None = None) -> WarehouseIdentity:
    """Give ``warehouse`` an identity (a new random id unless given); atomic (rename)."""
    ident = WarehouseIdentity(
        project_id=project_id or uuid.uuid4().hex,
        name=name,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    warehouse = Path(warehouse)
    warehouse.mkdir(parents=True, exist_ok=True)
    payload = {
        "project_id": ident.project_id,
        "name": ident.name,
        "created_at": ident.created_at,
        "note": "lockgate: the identity of this warehouse; the state store keys its history "
        "by project_id. Do not copy it into another warehouse.",
    }
    fd, tmp = tempfile.mkstemp(prefix=".identity-", dir=warehouse)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(payload, f, indent=2)
            f.write("\n")
        os.replace(tmp, identity_path(warehouse))
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return ident


def _bad(path: Path, what: str) -> WarehouseIdentityError:
    return WarehouseIdentityError(
        f"the warehouse identity file {path} {what}",
        hint=f"restore it from a backup; if the warehouse should start a new history, delete "
        f"{path.name} and run `lockgate run --full-refresh`",
    )
