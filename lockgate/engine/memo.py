"""The engine's static answers, remembered across processes.

Loading a project asks the engine about every SQL text (does it parse?), declared type (its
canonical spelling), regular expression (does RE2 compile it?) and SQL transform (its output
schema over its inputs' schemas). Each answer depends only on the question and the engine's
version, so it is kept in ``.lockgate/cache/dialect.json``: a project that did not change is
validated without starting the engine, and an unchanged re-run does not import DuckDB.

The file is a cache: unreadable, foreign or full, it is started again; it cannot be written
(a read-only checkout), nothing is remembered. An engine without a
:attr:`~lockgate.engine.base.Engine.DISTRIBUTION` is always asked.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lockgate.engine.base import Engine, SchemaBinder

log = logging.getLogger(__name__)

FORMAT = 1
#: answers kept at most (the oldest are forgotten first): SQL edited for years stays small
MAX_ENTRIES = 20_000

_ACTIVE: contextvars.ContextVar[DialectMemo | None] = contextvars.ContextVar(
    "lockgate_dialect_memo", default=None
)


class DialectMemo:
    """Remembered answers of engines (by name and driver version) in one JSON file."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._entries: dict[str, Any] = self._read() if path is not None else {}
        self._dirty = False

    # -- the engine's questions ---------------------------------------------------------------
    def syntax_error(
        self, engine: type[Engine], sql_text: str
    ) -> tuple[str, int | None, int | None] | None:
        found = self._ask(engine, "syntax", sql_text, lambda: engine.syntax_error(sql_text))
        return None if found is None else (found[0], found[1], found[2])

    def canonical_type(self, engine: type[Engine], type_name: str) -> str:
        return str(self._ask(engine, "type", type_name, lambda: engine.canonical_type(type_name)))

    def regex_error(self, engine: type[Engine], pattern: str) -> str | None:
        found = self._ask(engine, "regex", pattern, lambda: engine.regex_error(pattern))
        return None if found is None else str(found)

    def binder(self, engine: type[Engine]) -> SchemaBinder | None:
        """A binder answering from memory; the engine's own is opened on the first question
        not remembered (and given the tables added so far)."""
        if _version_key(engine) is None:
            return engine.binder()
        return _MemoBinder(self, engine)

    # -- activation, persistence --------------------------------------------------------------
    @contextlib.contextmanager
    def active(self) -> Iterator[DialectMemo]:
        """Make this memo the one :func:`regex_error` uses (checks validate their regexes
        deep inside model validation); saved when the block ends."""
        token = _ACTIVE.set(self)
        try:
            yield self
        finally:
            _ACTIVE.reset(token)
            self.save()

    def save(self) -> None:
        if not self._dirty or self.path is None:
            return
        entries = self._entries
        if len(entries) > MAX_ENTRIES:
            entries = dict(list(entries.items())[-MAX_ENTRIES:])
        tmp: str | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".dialect-", suffix=".tmp")
            with os.fdopen(fd, "w") as f:
                json.dump({"format": FORMAT, "entries": entries}, f)
            os.replace(tmp, self.path)  # concurrent loaders: the last complete file wins
            self._dirty = False
        except OSError as e:
            log.debug("dialect cache %s not written: %s", self.path, e)
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)

    def _read(self) -> dict[str, Any]:
        assert self.path is not None
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            return {}
        entries = data.get("entries")
        return entries if isinstance(entries, dict) else {}

    def _ask(self, engine: type[Engine], kind: str, question: object, answer: Any) -> Any:
        version = _version_key(engine)
        if version is None:
            return answer()
        key = _key(version, kind, question)
        if key in self._entries:
            return self._entries[key]
        value = answer()
        self._entries[key] = _jsonable(value)
        self._dirty = True
        return self._entries[key]


def regex_error(engine: type[Engine], pattern: str) -> str | None:
    """``engine.regex_error(pattern)``, remembered when a memo is active."""
    memo = _ACTIVE.get()
    if memo is None:
        return engine.regex_error(pattern)
    return memo.regex_error(engine, pattern)


class _MemoBinder:
    """:class:`SchemaBinder` over remembered answers; the engine's binder only on a miss."""

    def __init__(self, memo: DialectMemo, engine: type[Engine]) -> None:
        self._memo = memo
        self._engine = engine
        self._tables: list[tuple[str, dict[str, str]]] = []
        self._real: SchemaBinder | None = None
        self._opened = False

    def _binder(self) -> SchemaBinder | None:
        if not self._opened:
            self._opened = True
            self._real = self._engine.binder()
            if self._real is not None:
                for name, columns in self._tables:
                    self._real.add(name, columns)
        return self._real

    def add(self, name: str, columns: Mapping[str, str]) -> bool:
        cols = dict(columns)
        asked = False

        def answer() -> bool:
            nonlocal asked
            asked = True
            real = self._binder()  # opened now: given the tables added before this one
            return real is not None and real.add(name, cols)

        ok = bool(self._memo._ask(self._engine, "add", [name, cols], answer))
        if ok:
            self._tables.append((name, cols))
            if not asked and self._real is not None:  # opened earlier: keep it complete
                self._real.add(name, cols)
        return ok

    def bind(self, sql: str) -> tuple[dict[str, str] | None, str | None]:
        def answer() -> list[Any]:
            real = self._binder()
            return [None, None] if real is None else list(real.bind(sql))

        found = self._memo._ask(self._engine, "bind", [sql, self._tables], answer)
        return found[0], found[1]

    def close(self) -> None:
        if self._real is not None:
            self._real.close()


def _version_key(engine: type[Engine]) -> str | None:
    if engine.DISTRIBUTION is None:
        return None
    from importlib import metadata

    try:
        return f"{engine.name} {metadata.version(engine.DISTRIBUTION)}"
    except metadata.PackageNotFoundError:
        return None


def _key(version: str, kind: str, question: object) -> str:
    raw = json.dumps([version, kind, question], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value))  # tuples → lists: the same shape as read back
