"""Pydantic validation errors → :class:`Problem` s located in the YAML (file:line), with
"did you mean" hints for unknown keys and union tags."""

from __future__ import annotations

import re
import types
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from lockgate._suggest import did_you_mean
from lockgate._yaml import line_of
from lockgate.errors import Problem

LOADER_FIELDS = ("defined_in", "defined_line")

_QUOTED = re.compile(r"'([^']*)'")


def validation_problems(
    err: ValidationError,
    raw: Any,
    file: str,
    model: type[BaseModel],
    label: str,
    *,
    skip: tuple[str, ...] = (),
) -> list[Problem]:
    """One Problem per pydantic error, located via ``raw`` (skip errors under ``skip`` keys)."""
    problems: list[Problem] = []
    for e in _prune_union_branches(err.errors(), raw):
        loc = tuple(e["loc"])
        if loc and loc[0] in skip:
            continue
        etype = e["type"]
        msg = e["msg"]
        for prefix in ("Value error, ", "Assertion failed, "):
            msg = msg.removeprefix(prefix)
        hint: str | None = None
        if etype == "extra_forbidden":
            key = str(loc[-1])
            where = _path_text(raw, loc[:-1])
            fields = _fields_at(model, loc[:-1])
            message = f"unknown key '{key}'" + (f" in {where}" if where else "")
            if fields:
                hint = did_you_mean(key, fields) or f"valid keys: {', '.join(fields)}"
        elif etype == "missing":
            where = _path_text(raw, loc[:-1])
            message = f"missing required key '{loc[-1]}'" + (f" in {where}" if where else "")
        elif etype == "union_tag_invalid":
            ctx = e.get("ctx") or {}
            expected = _QUOTED.findall(str(ctx.get("expected_tags", "")))
            disc = str(ctx.get("discriminator", "type")).strip("'")
            message = f"{_path_text(raw, loc)}: unknown {disc} '{ctx.get('tag')}'"
            hint = did_you_mean(str(ctx.get("tag")), expected) or f"one of: {', '.join(expected)}"
        elif etype == "union_tag_not_found":
            disc = str((e.get("ctx") or {}).get("discriminator", "type")).strip("'")
            tags = _tags_at(model, loc, disc)
            message = f"{_path_text(raw, loc)}: missing key '{disc}'"
            hint = f"add {disc}: {tags[0]}" if len(tags) == 1 else f"one of: {', '.join(tags)}"
        else:
            where = _path_text(raw, loc)
            message = f"{where}: {msg}" if where else msg
            if etype in ("enum", "literal_error"):
                expected = _QUOTED.findall(str((e.get("ctx") or {}).get("expected", "")))
                value = e.get("input")
                message = f"{where}: invalid value {value!r}: {msg}"
                hint = did_you_mean(str(value), expected)
        if label:
            message = f"{label}: {message}"
        problems.append(Problem(message, file=file, line=line_of(raw, loc), hint=hint))
    return problems


def _is_tag(node: Any, part: int | str) -> bool:
    return isinstance(node, dict) and isinstance(part, str) and part not in node


def _walk(raw: Any, loc: tuple[int | str, ...]) -> list[tuple[int | str, bool]]:
    """Pair each loc element with whether it is a union tag (not a key of the data)."""
    out: list[tuple[int | str, bool]] = []
    node = raw
    for part in loc:
        if _is_tag(node, part):
            out.append((part, True))
            continue
        out.append((part, False))
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            node = None
    return out


def _path_text(raw: Any, loc: tuple[int | str, ...]) -> str:
    text = ""
    for part, is_tag in _walk(raw, loc):
        if is_tag:
            continue
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _prune_union_branches(errors: list[Any], raw: Any) -> list[Any]:
    """Keep, for each value matched against a plain union, only the closest branch's errors."""
    groups: dict[tuple[Any, ...], dict[str, list[Any]]] = {}
    for e in errors:
        for i, (part, is_tag) in enumerate(_walk(raw, tuple(e["loc"]))):
            if is_tag and isinstance(part, str) and not part.islower():  # class-name tags
                groups.setdefault(tuple(e["loc"][:i]), {}).setdefault(part, []).append(e)
                break
    drop: set[int] = set()
    for branches in groups.values():
        if len(branches) < 2:
            continue
        best = min(branches.values(), key=len)
        for errs in branches.values():
            if errs is not best:
                drop.update(id(x) for x in errs)
    return [e for e in errors if id(e) not in drop]


def _candidates(tp: Any) -> list[Any]:
    origin = get_origin(tp)
    if origin is Annotated:
        return _candidates(get_args(tp)[0])
    if origin is Union or origin is types.UnionType:
        return [c for a in get_args(tp) for c in _candidates(a)]
    if tp is type(None):
        return []
    return [tp]


def _types_at(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[Any]:
    cands: list[Any] = [model]
    for part in loc:
        nxt: list[Any] = []
        for c in cands:
            if isinstance(c, type) and issubclass(c, BaseModel):
                if isinstance(part, str) and part in c.model_fields:
                    nxt += _candidates(c.model_fields[part].annotation)
                elif isinstance(part, str) and _tag_matches(c, part):
                    nxt.append(c)
            elif get_origin(c) in (tuple, list) and isinstance(part, int):
                nxt += _candidates(get_args(c)[0])
            elif get_origin(c) is dict and isinstance(part, str):
                nxt += _candidates(get_args(c)[1])
        if not nxt:
            return []
        cands = nxt
    return cands


def _tag_matches(model: type[BaseModel], tag: str) -> bool:
    if tag == model.__name__ or tag.endswith(f" {model.__name__}]"):
        return True
    field_info = model.model_fields.get("type")
    if field_info is not None and get_origin(field_info.annotation) is Literal:
        return tag in get_args(field_info.annotation)
    return False


def _fields_at(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    models = [c for c in _types_at(model, loc) if isinstance(c, type) and issubclass(c, BaseModel)]
    if len(models) != 1:
        return []
    return [f for f in models[0].model_fields if f not in LOADER_FIELDS]


def _tags_at(model: type[BaseModel], loc: tuple[int | str, ...], disc: str) -> list[str]:
    tags: list[str] = []
    for c in _types_at(model, loc):
        if isinstance(c, type) and issubclass(c, BaseModel) and disc in c.model_fields:
            ann = c.model_fields[disc].annotation
            if get_origin(ann) is Literal:
                tags += [str(a) for a in get_args(ann)]
    return tags
