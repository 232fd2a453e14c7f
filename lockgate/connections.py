"""Named connections (``connections:`` in ``lockgate.yaml``) and their secret references.

A connection is a ``type`` plus fields. A field's value may hold references that are
resolved only when an adapter connects, never stored resolved:

* ``${NAME}`` anywhere in the value: the environment variable ``NAME``
  (``url: postgresql://me:${PG_PASSWORD}@db/shop``);
* the whole value ``file:/path``: the content of that file, without the trailing newline
  (Docker/Kubernetes secrets). A relative path is relative to the project folder.

Every resolved secret is handed to :func:`lockgate.redact.remember` before use, so it is
masked in errors, logs, ``run --json``, the state store and ``lockgate show`` — wherever a
driver echoes it. Errors about a reference name the variable or the file, never a value.

>>> c = Connection("shop", "postgres", {"url": "postgresql://me:${PW}@db/shop"})
>>> c.resolve({"PW": "s3cret!"})["url"]
'postgresql://me:s3cret!@db/shop'
>>> c
Connection(name='shop', type='postgres', fields=['url'])
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from lockgate.errors import TerminalError
from lockgate.redact import remember

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_FILE_PREFIX = "file:"
# a field whose whole value is a secret (its resolved value is masked wherever it shows up)
_SECRET_FIELD = re.compile(r"(?i)pass|pwd|secret|token|key|credential")

FieldValue = str | int | float | bool


class ConnectionConfigError(TerminalError):
    """A connection cannot be resolved: unknown name, unset variable, missing file."""


@dataclass(frozen=True)
class Connection:
    """A named connection as declared: references are kept, not resolved.

    ``root`` is the project folder (relative ``file:`` references are relative to it)."""

    name: str
    type: str
    fields: Mapping[str, FieldValue] = field(default_factory=dict)
    root: Path | None = None

    def __repr__(self) -> str:  # never the values: a literal password may be one of them
        return f"Connection(name={self.name!r}, type={self.type!r}, fields={sorted(self.fields)})"

    def resolve(self, environ: Mapping[str, str] | None = None) -> dict[str, FieldValue]:
        """The fields with every reference replaced (raises :class:`ConnectionConfigError`
        naming the variable or file, never a value). Secrets are remembered for redaction."""
        env = os.environ if environ is None else environ
        out: dict[str, FieldValue] = {}
        for key, value in self.fields.items():
            if not isinstance(value, str):
                out[key] = value
                continue
            resolved = self._resolve_value(key, value, env)
            if "://" in resolved or _SECRET_FIELD.search(key):
                remember(resolved)
            out[key] = resolved
        return out

    def _resolve_value(self, key: str, value: str, env: Mapping[str, str]) -> str:
        where = f"connection '{self.name}', field '{key}'"
        if value.startswith(_FILE_PREFIX):
            path = Path(value[len(_FILE_PREFIX) :]).expanduser()
            if not path.is_absolute() and self.root is not None:
                path = self.root / path
            try:
                return path.read_text(encoding="utf-8").rstrip("\r\n")
            except OSError as e:
                raise ConnectionConfigError(
                    f"{where}: cannot read the secret file {path} ({e.strerror or e})",
                    hint="create the file or fix the 'file:' reference",
                ) from None

        def env_value(m: re.Match[str]) -> str:
            name = m.group(1)
            if name not in env:
                raise ConnectionConfigError(
                    f"{where}: environment variable {name} is not set",
                    hint=f"export {name}=… before running lockgate",
                )
            return env[name]

        return _ENV_REF.sub(env_value, value)


def references(value: FieldValue) -> list[str]:
    """What a value refers to (``$NAME``, ``file:/path``), for validation and display.

    >>> references("postgresql://u:${PW}@h/db")
    ['$PW']
    """
    if not isinstance(value, str):
        return []
    if value.startswith(_FILE_PREFIX):
        return [value]
    return ["$" + m.group(1) for m in _ENV_REF.finditer(value)]


__all__ = ["Connection", "ConnectionConfigError", "FieldValue", "references"]
