"""YAML reading that remembers where every value came from.

:func:`load_yaml` parses with a ``yaml.SafeLoader`` subclass whose mappings and sequences
are :class:`LineDict` / :class:`LineList`: ordinary containers that also carry the line of
the node, of each key and of each value. :func:`line_of` maps a pydantic error ``loc`` back
to the nearest line; :func:`plain` strips the line bookkeeping before validation.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from lockgate.errors import Problem


@dataclass(frozen=True)
class Mark:
    """Where a YAML value starts (1-based) and, for scalars, its style (``|``, ``>``, quotes)."""

    line: int
    column: int
    style: str | None = None


class LineDict(dict[Any, Any]):
    """A mapping from YAML with the line of the mapping, of each key and of each value."""

    line: int = 0
    key_marks: dict[Any, Mark]
    value_marks: dict[Any, Mark]

    def key_line(self, key: Any) -> int:
        mark = self.key_marks.get(key)
        return mark.line if mark else self.line


class LineList(list[Any]):
    """A sequence from YAML with the line of the sequence and of each item."""

    line: int = 0
    item_marks: list[Mark]

    def item_line(self, index: int) -> int:
        if 0 <= index < len(self.item_marks):
            return self.item_marks[index].line
        return self.line


def _mark(node: Node) -> Mark:
    style = node.style if isinstance(node, ScalarNode) else None
    return Mark(node.start_mark.line + 1, node.start_mark.column + 1, style)


# libyaml's C parser and composer when PyYAML has them (4-5x faster on project files; the
# constructor below stays Python), else the pure-Python SafeLoader: same nodes, same marks
_SafeBase: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _LineLoader(_SafeBase):  # type: ignore[valid-type, misc]
    """SafeLoader producing LineDict/LineList and recording duplicate keys."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.duplicate_keys: list[tuple[str, Mark]] = []

    def construct_line_map(self, node: MappingNode) -> Any:
        data = LineDict()
        data.line = node.start_mark.line + 1
        data.key_marks = {}
        data.value_marks = {}
        yield data
        self.flatten_mapping(node)
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=False)
            if isinstance(key, bool) and isinstance(key_node, ScalarNode) and not key_node.style:
                # YAML 1.1 reads a plain `on:`/`yes:`/`off:` key as a boolean; no lockgate key
                # is one, and `enrich: [{on: user_id}]` means the word
                key = key_node.value
            try:
                hash(key)
            except TypeError:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    "found an unhashable key",
                    key_node.start_mark,
                ) from None
            if key in data:
                self.duplicate_keys.append((str(key), _mark(key_node)))
            data[key] = self.construct_object(value_node, deep=False)
            data.key_marks[key] = _mark(key_node)
            data.value_marks[key] = _mark(value_node)

    def construct_line_seq(self, node: SequenceNode) -> Any:
        data = LineList()
        data.line = node.start_mark.line + 1
        data.item_marks = [_mark(n) for n in node.value]
        yield data
        data.extend(self.construct_object(n, deep=False) for n in node.value)


_LineLoader.add_constructor("tag:yaml.org,2002:map", _LineLoader.construct_line_map)
_LineLoader.add_constructor("tag:yaml.org,2002:seq", _LineLoader.construct_line_seq)


#: project files (YAML, SQL) larger than this are refused: they are hand-written config
MAX_FILE_BYTES = 10 * 1024 * 1024
#: nodes that YAML aliases (``*name``) may add when expanded: a few kilobytes of nested
#: aliases ("billion laughs") otherwise expand to millions of values and gigabytes
MAX_ALIAS_NODES = 100_000
#: deepest nesting of mappings/sequences accepted
MAX_DEPTH = 100


def read_text(path: Path, file: str) -> str | Problem:
    """The text of a project file (UTF-8, a leading BOM dropped), or the Problem (naming
    ``file``) why it cannot be used: too large, not UTF-8, unreadable."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            return Problem(
                f"file is too large ({size:,} bytes; the limit is {MAX_FILE_BYTES:,})",
                file=file,
                hint="project files are configuration and queries; keep data in data files",
            )
        raw = path.read_bytes()
    except OSError as e:
        return Problem(f"cannot read file: {e.strerror or e}", file=file)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        return undecodable(raw, e, "file is not UTF-8 text", file, "save the file as UTF-8")


def undecodable(raw: bytes, error: UnicodeDecodeError, what: str, file: str, hint: str) -> Problem:
    """``what``: the byte that cannot be decoded, by line and column of ``file``."""
    line, column = byte_position(raw, error.start)
    return Problem(
        f"{what}: byte 0x{raw[error.start]:02x} at line {line}, column {column} cannot be decoded",
        file=file,
        line=line,
        column=column,
        hint=hint,
    )


def byte_position(raw: bytes, offset: int) -> tuple[int, int]:
    """1-based (line, column in bytes) of ``offset`` in ``raw``."""
    return raw.count(b"\n", 0, offset) + 1, offset - (raw.rfind(b"\n", 0, offset) + 1) + 1


def load_yaml(text: str, file: str) -> tuple[Any, list[Problem]]:
    """Parse one YAML document; malformed YAML becomes a Problem with line and column.

    Documents whose aliases expand beyond :data:`MAX_ALIAS_NODES` nodes, that nest deeper
    than :data:`MAX_DEPTH` or whose aliases are recursive are refused before any value is
    built.
    """
    loader = _LineLoader(text)
    try:
        node = loader.get_single_node()
        refused = _refuse_expansion(node) if node is not None else None
        if refused is not None:
            return None, [refused.located(file)]
        data = loader.construct_document(node) if node is not None else None
    except RecursionError:
        return None, [
            Problem(f"YAML is nested too deeply (more than {MAX_DEPTH} levels)", file=file)
        ]
    except yaml.MarkedYAMLError as e:
        if "maximum nesting depth" in str(e.problem):  # libyaml's own depth limit
            return None, [
                Problem(f"YAML is nested too deeply (more than {MAX_DEPTH} levels)", file=file)
            ]
        mark = e.problem_mark or e.context_mark
        what = " ".join(x for x in (e.context, e.problem) if x) or "invalid YAML"
        return None, [
            Problem(
                f"malformed YAML: {what}",
                file=file,
                line=mark.line + 1 if mark else None,
                column=mark.column + 1 if mark else None,
            )
        ]
    except yaml.YAMLError as e:
        return None, [Problem(f"malformed YAML: {e}", file=file)]
    finally:
        loader.dispose()
    problems = [
        Problem(
            f"duplicate key '{key}' (the later value would silently win)",
            file=file,
            line=mark.line,
            column=mark.column,
            hint="remove one of them",
        )
        for key, mark in loader.duplicate_keys
    ]
    return data, problems


def unsafe_yaml(text: str, file: str) -> Problem | None:
    """Why ``text`` must not be loaded by *any* YAML loader (alias bomb, recursive alias,
    too deep), or None. Malformed YAML is left to the caller's own parser."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        refused = _refuse_expansion(node) if node is not None else None
    except RecursionError:
        return Problem(f"YAML is nested too deeply (more than {MAX_DEPTH} levels)", file=file)
    except yaml.YAMLError:
        return None
    finally:
        loader.dispose()
    return refused.located(file) if refused is not None else None


@dataclass(frozen=True)
class _Refusal:
    message: str
    node: Node

    def located(self, file: str) -> Problem:
        mark = self.node.start_mark
        return Problem(
            self.message,
            file=file,
            line=mark.line + 1,
            column=mark.column + 1,
            hint="write the values out, or use fewer nested aliases (*name)",
        )


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def _refuse_expansion(root: Node) -> _Refusal | None:
    """Why the node graph of a document is refused (None: it is fine).

    Aliases make the composed graph a DAG; its *expanded* size (every alias counted as a
    full copy of its target) is what construction and validation pay for. Computed
    bottom-up with memoisation, so the check itself is linear in the distinct nodes.
    """
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            kids = _children(node)
            size[key] = 1 + sum(size[id(k)] for k in kids)
            depth[key] = 1 + max((depth[id(k)] for k in kids), default=0)
            on_path.discard(key)
            if depth[key] > MAX_DEPTH:
                return _Refusal(f"YAML is nested too deeply (more than {MAX_DEPTH} levels)", node)
            continue
        if key in size:
            continue
        if key in on_path:
            return _Refusal("YAML alias refers to a value that contains it (recursive)", node)
        on_path.add(key)
        stack.append((node, True))
        stack.extend((k, False) for k in _children(node) if id(k) not in size)
    distinct = len(size)
    if size[id(root)] - distinct > MAX_ALIAS_NODES:
        return _Refusal(
            f"YAML aliases expand to {size[id(root)]:,} values from {distinct:,} written ones "
            f"(more than {MAX_ALIAS_NODES:,} added by aliases): refusing an alias bomb",
            root,
        )
    return None


def plain(data: Any) -> Any:
    """A copy of ``data`` made of plain ``dict``/``list`` (no line bookkeeping)."""
    if isinstance(data, dict):
        return {k: plain(v) for k, v in data.items()}
    if isinstance(data, list):
        return [plain(v) for v in data]
    return data


def line_of(data: Any, loc: tuple[int | str, ...]) -> int | None:
    """The line of the deepest value along ``loc`` (a pydantic error location).

    Path elements that are not keys/indexes of the data (union member tags such as
    ``'not_null'`` or ``'SqlTransformSpec'``) are skipped.
    """
    line: int | None = getattr(data, "line", None)
    node = data
    for part in loc:
        if isinstance(node, LineDict) and part in node:
            line = node.key_line(part)
            node = node[part]
        elif isinstance(node, LineList) and isinstance(part, int) and 0 <= part < len(node):
            line = node.item_line(part)
            node = node[part]
        elif isinstance(node, dict | list):
            continue  # a union tag: stay on this node
        else:
            break
    return line
