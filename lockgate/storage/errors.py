"""Storage errors that are not in the shared hierarchy.

Transient storage failures (I/O, commit conflicts) are :class:`lockgate.errors.StorageError`;
schema problems are :class:`lockgate.errors.SchemaContractError`.
"""

from __future__ import annotations

from lockgate.errors import InputError, TerminalError


class PublishError(TerminalError):
    """A publish that cannot succeed on retry (rows outside the declared partitions, an
    unsupported table feature, an unwritable data type)."""


class TableNotFound(InputError):
    """The named Delta table does not exist in the warehouse (or not at that version)."""
