"""YAML reading that remembers where every value came from.

:func:`load_yaml` parses with a ``yaml.SafeLoader`` subclass whose mappings and sequences
are :class:`LineDict` / :class:`LineList`: ordinary containers that also carry the line of
the node, of each key and of each value. :func:`line_of` maps a pydantic error ``loc`` back
to the nearest line; :func:`plain` strips the line bookkeeping before validation.
"""

from __future__ import annotations

from dataclasses import dataclass
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


class _LineLoader(yaml.SafeLoader):
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


def load_yaml(text: str, file: str) -> tuple[Any, list[Problem]]:
    """Parse one YAML document; malformed YAML becomes a Problem with line and column."""
    loader = _LineLoader(text)
    try:
        data = loader.get_single_data()
    except yaml.MarkedYAMLError as e:
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
