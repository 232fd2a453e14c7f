"""Storage errors that are not in the shared hierarchy.

Transient storage failures (I/O, commit conflicts) are :class:`lockgate.errors.StorageError`;
schema problems are :class:`lockgate.errors.SchemaContractError`.
"""

from __future__ import annotations

from lockgate.errors import InputError, LockHeld, TerminalError


class PublishError(TerminalError):
    """A publish that cannot succeed on retry (rows outside the declared partitions, an
    unsupported table feature, an unwritable data type)."""


class TableNotFound(InputError):
    """The named Delta table does not exist in the warehouse (or not at that version)."""


class CommitFenced(LockHeld):
    """A commit carrying a fencing token the table no longer holds: another writer (a
    stream's new consumer) claimed the table with a newer token, committed concurrently, or
    created the table this writer expected absent. Never retried: the writer must stop."""
