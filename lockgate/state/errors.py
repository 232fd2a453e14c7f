"""Errors of the state store (all derive from :mod:`lockgate.errors`)."""

from __future__ import annotations

from lockgate.errors import LockHeld, StateStoreError, TerminalError

__all__ = [
    "LeaseLost",
    "LockHeld",
    "ProjectIdentityError",
    "StateSchemaError",
    "StateStoreError",
]


class StateSchemaError(TerminalError):
    """The state database cannot be used by this lockgate: its schema is newer than the code,
    or the URL names a database lockgate does not support."""

    exit_code = 2


class LeaseLost(LockHeld):
    """Our project lock lease was taken over by another process (it expired while we held it):
    nothing more may be committed by this run."""


class ProjectIdentityError(TerminalError):
    """The warehouse is not the one the state store knows under this project name (two
    projects with the same name share a state store, or a warehouse was copied)."""

    exit_code = 2
