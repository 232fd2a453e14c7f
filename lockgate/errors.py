"""The error hierarchy.

Every error lockgate raises derives from :class:`LockgateError` and is either
*terminal* (retrying cannot help: bad config, failed gate, bad SQL) or *transient*
(network, lock timeout, I/O hiccup), so retry logic is one ``isinstance`` check.
A message says what failed, where, and how to fix it.
"""

from __future__ import annotations

from dataclasses import dataclass

from lockgate.redact import redact


class LockgateError(Exception):
    """Root of every lockgate error."""

    transient: bool = False
    #: process exit code the CLI uses for this class of error
    exit_code: int = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        # never carry a password: errors are printed, logged and stored in the state store
        message = redact(message)
        hint = None if hint is None else redact(hint)
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\n  hint: {self.hint}"
        return self.message


class TerminalError(LockgateError):
    """Retrying will not help."""


class TransientError(LockgateError):
    """May succeed when retried (network, lock timeout, I/O)."""

    transient = True


@dataclass(frozen=True)
class Problem:
    """One configuration problem, located in a file."""

    message: str
    file: str | None = None
    line: int | None = None
    column: int | None = None
    hint: str | None = None

    def location(self) -> str:
        if self.file is None:
            return "<project>"
        loc = self.file
        if self.line is not None:
            loc += f":{self.line}"
            if self.column is not None:
                loc += f":{self.column}"
        return loc

    def __str__(self) -> str:
        text = f"{self.location()}: {self.message}"
        if self.hint:
            text += f" ({self.hint})"
        return text


class ConfigError(TerminalError):
    """The project (or a check file) is invalid. Carries *every* problem found."""

    exit_code = 2

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        n = len(self.problems)
        head = f"{n} problem{'s' if n != 1 else ''} found"
        super().__init__(head + ":\n" + "\n".join(f"  - {p}" for p in self.problems))


class UsageError(TerminalError):
    """Bad command-line usage or input that is not a project (exit code 2)."""

    exit_code = 2


class InputError(TerminalError):
    """Input data is missing or unreadable as a whole (missing file, unknown table)."""

    exit_code = 2


class TransformError(TerminalError):
    """A SQL or Python transform failed or returned something unusable."""


class SchemaContractError(TerminalError):
    """The staged schema violates the dataset's frozen contract."""


class GateBlocked(TerminalError):
    """Quality gate blocked the batch: nothing was published."""


class LockHeld(TerminalError):
    """Another run holds the project lock."""

    exit_code = 3


class StorageError(TransientError):
    """Table storage failed in a way that may succeed on retry (I/O, commit conflict)."""


class StateStoreError(TransientError):
    """The state store could not be reached or written."""
