"""delta-rs and OS errors → lockgate's terminal-or-transient hierarchy, naming the table."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol

from deltalake import exceptions as delta_errors

from lockgate.errors import LockgateError, SchemaContractError, StorageError
from lockgate.storage.errors import PublishError, TableNotFound

if TYPE_CHECKING:
    pass

# delta-rs appends a Rust backtrace to some messages; keep the part a person reads.
_BACKTRACE_RE = re.compile(r"\n\s+0: ")


class CallerStream(Protocol):
    """A stream of the caller's batches that keeps the caller's own exception."""

    error: Exception | None


def short(exc: BaseException) -> str:
    """The readable part of a delta-rs message (no Rust backtrace, at most 2000 chars)."""
    text = _BACKTRACE_RE.split(str(exc), maxsplit=1)[0].strip()
    return text if len(text) <= 2000 else text[:2000] + " …"


def map_error(table: str, action: str, exc: Exception) -> LockgateError:
    """Translate a delta-rs / OS error into lockgate's terminal-or-transient hierarchy."""
    import pyarrow as pa

    where = f"table '{table}': {action} failed: {short(exc)}"
    text = str(exc)
    if isinstance(exc, delta_errors.SchemaMismatchError) or text.startswith("Cast error"):
        return SchemaContractError(
            where, hint="align the batch's column names and types with the table's schema"
        )
    if "Schema error" in text:  # e.g. duplicate (case-insensitive) or empty column names
        return SchemaContractError(
            where, hint="give every column a distinct, non-empty name (Delta ignores case)"
        )
    if isinstance(exc, delta_errors.CommitFailedError):
        return StorageError(where, hint="another writer committed concurrently; retry")
    if isinstance(exc, delta_errors.TableNotFoundError):
        return TableNotFound(where)
    if isinstance(exc, delta_errors.DeltaProtocolError):
        return PublishError(where, hint="the table uses a Delta feature delta-rs cannot write")
    if "Invalid data found" in text:
        return PublishError(
            where, hint="the batch holds rows outside the partitions being overwritten"
        )
    if isinstance(exc, pa.ArrowInvalid | pa.ArrowTypeError | pa.ArrowNotImplementedError):
        return PublishError(where)
    return StorageError(where, hint="an I/O or storage error; retrying may help")


@contextlib.contextmanager
def translated(table: str, action: str, stream: CallerStream | None = None) -> Iterator[None]:
    """Re-raise errors as lockgate's (the caller's own exception from ``stream`` as it was:
    delta-rs would otherwise re-raise it as a generic ``DeltaError``)."""
    try:
        yield
    except LockgateError:
        raise
    except Exception as exc:
        if stream is not None and stream.error is not None:
            raise stream.error from exc
        raise map_error(table, action, exc) from exc
