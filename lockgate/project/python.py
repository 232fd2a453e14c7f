"""Python transforms: the ``@transform`` decorator and per-load registration.

A project's ``.py`` files declare transforms with the decorator::

    from lockgate.project import transform

    @transform
    def gold_features(silver_orders, silver_customers):
        return silver_orders.join(silver_customers, "customer_id")

    @transform(name="daily", inputs={"orders": "silver_orders"}, as_="arrow")
    def daily_orders(orders):
        ...

Each parameter names an upstream dataset (or is mapped to one by ``inputs``). The
decorator returns the function unchanged, so it stays callable and testable.

Registration is context-local: :func:`collect_transforms` opens a registry that the
decorator appends to while the loader imports a project's files. Outside it, the
decorator only records the :class:`TransformFunction` on the function
(``func.__lockgate_transform__``), so importing project code never leaks
registrations from one project into another.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import io
import logging
import re
import sys
import tokenize
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, overload

from lockgate._yaml import undecodable
from lockgate.errors import Problem
from lockgate.project.models import name_problem

logger = logging.getLogger(__name__)

InputFormat = Literal["duckdb", "arrow", "polars", "pandas"]
INPUT_FORMATS: tuple[str, ...] = get_args(InputFormat)

F = TypeVar("F", bound=Callable[..., Any])

_REGISTRY: ContextVar[list[TransformFunction] | None] = ContextVar(
    "lockgate_transform_registry", default=None
)


@dataclass(frozen=True)
class TransformFunction:
    """A registered Python transform.

    ``inputs`` maps each parameter of ``func`` to the dataset passed in for it; ``as_`` is
    the type each input arrives as: ``duckdb`` (a ``DuckDBPyRelation``), ``arrow``
    (``pyarrow.Table``), ``polars`` or ``pandas`` (a DataFrame).
    """

    name: str
    func: Callable[..., Any]
    inputs: Mapping[str, str] = field(hash=False)
    as_: InputFormat = "duckdb"
    file: str | None = None
    line: int | None = None
    #: declared column lineage: output column → ``"dataset.column"`` inputs (None: opaque)
    lineage: Mapping[str, tuple[str, ...]] | None = field(default=None, hash=False)

    @property
    def datasets(self) -> tuple[str, ...]:
        """Upstream dataset names, in parameter order, without repeats."""
        return tuple(dict.fromkeys(self.inputs.values()))

    def location(self) -> str:
        return f"{self.file}:{self.line}" if self.file else self.name


@overload
def transform(func: F, /) -> F: ...


@overload
def transform(
    func: None = None,
    /,
    *,
    name: str | None = None,
    inputs: Mapping[str, str] | None = None,
    as_: InputFormat = "duckdb",
    lineage: Mapping[str, str | Sequence[str]] | None = None,
) -> Callable[[F], F]: ...


def transform(
    func: F | None = None,
    /,
    *,
    name: str | None = None,
    inputs: Mapping[str, str] | None = None,
    as_: InputFormat = "duckdb",
    lineage: Mapping[str, str | Sequence[str]] | None = None,
) -> F | Callable[[F], F]:
    """Declare a Python transform (usable bare, ``@transform``, or with options).

    - ``name``: dataset name (default: the function's name);
    - ``inputs``: parameter → dataset for parameters whose name is not the dataset's;
      other parameters name their dataset directly;
    - ``as_``: how inputs are passed: ``"duckdb"`` (default), ``"arrow"``, ``"polars"``,
      ``"pandas"``;
    - ``lineage``: output column → the ``"dataset.column"`` input(s) it is computed from
      (column lineage; without it the transform is reported as opaque, never guessed).

    >>> @transform(inputs={"o": "orders"}, as_="arrow")
    ... def big_orders(o): ...
    >>> big_orders.__lockgate_transform__.inputs
    {'o': 'orders'}
    """

    def decorate(fn: F) -> F:
        tf = make_transform(fn, name=name, inputs=inputs, as_=as_, lineage=lineage)
        fn.__lockgate_transform__ = tf  # type: ignore[attr-defined]
        registry = _REGISTRY.get()
        if registry is not None:
            registry.append(tf)
        return fn

    if func is not None:
        return decorate(func)
    return decorate


def make_transform(
    fn: Callable[..., Any],
    *,
    name: str | None = None,
    inputs: Mapping[str, str] | None = None,
    as_: str = "duckdb",
    lineage: Mapping[str, str | Sequence[str]] | None = None,
) -> TransformFunction:
    """Build the :class:`TransformFunction` for ``fn`` (raises ``TypeError``/``ValueError``)."""
    if not callable(fn):
        raise TypeError(f"@transform decorates a function, got {type(fn).__name__}")
    tname = name if name is not None else getattr(fn, "__name__", "")
    problem = name_problem(tname, "transform name") if isinstance(tname, str) else "no name"
    if problem is not None:
        raise ValueError(problem)
    if as_ not in INPUT_FORMATS:
        raise ValueError(
            f"@transform(as_={as_!r}) of '{tname}': use one of {', '.join(INPUT_FORMATS)}"
        )
    explicit = dict(inputs or {})
    params = inspect.signature(fn).parameters
    mapping: dict[str, str] = {}
    for p in params.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            raise TypeError(
                f"transform '{tname}' has *{p.name}: each parameter must name one input dataset"
            )
        mapping[p.name] = explicit.pop(p.name, p.name)
    if explicit:
        raise TypeError(
            f"@transform(inputs=...) of '{tname}' names parameters it does not have: "
            + ", ".join(sorted(explicit))
        )
    code = getattr(fn, "__code__", None)
    file = code.co_filename if code is not None else None
    line = code.co_firstlineno if code is not None else None
    return TransformFunction(
        name=tname,
        func=fn,
        inputs=mapping,
        as_=as_,  # type: ignore[arg-type]  # checked against INPUT_FORMATS above
        file=file,
        line=line,
        lineage=_declared_lineage(tname, lineage),
    )


def _declared_lineage(
    tname: str, lineage: Mapping[str, str | Sequence[str]] | None
) -> dict[str, tuple[str, ...]] | None:
    """``@transform(lineage=...)`` normalised to column → ``("dataset.column", ...)``."""
    if lineage is None:
        return None
    out: dict[str, tuple[str, ...]] = {}
    for column, inputs in lineage.items():
        refs = (inputs,) if isinstance(inputs, str) else tuple(inputs)
        bad = [r for r in refs if not isinstance(r, str) or r.count(".") < 1]
        if not isinstance(column, str) or bad:
            raise ValueError(
                f"@transform(lineage=...) of '{tname}': map each output column to "
                f"'dataset.column' strings (got {column!r}: {inputs!r})"
            )
        out[column] = refs
    return out


@contextmanager
def collect_transforms() -> Iterator[list[TransformFunction]]:
    """Collect every ``@transform`` applied inside the block (context-local)."""
    registered: list[TransformFunction] = []
    token = _REGISTRY.set(registered)
    try:
        yield registered
    finally:
        _REGISTRY.reset(token)


def module_prefix(root: Path) -> str:
    """A module-name prefix unique to one project folder."""
    digest = hashlib.sha1(str(root.resolve()).encode()).hexdigest()[:12]
    return f"lockgate_project_{digest}"


def import_transforms(
    files: list[Path], *, root: Path
) -> tuple[list[TransformFunction], list[Problem]]:
    """Import each ``.py`` file and return the transforms it registered, plus problems.

    Files are imported as ``lockgate_project_<hash of root>__<relative path>`` (kept in
    ``sys.modules`` so functions pickle, replaced on the next load). An exception while
    importing becomes a :class:`Problem` at the line where it was raised in that file.
    """
    prefix = module_prefix(root)
    transforms: list[TransformFunction] = []
    problems: list[Problem] = []
    for path in files:
        rel = _rel(path, root)
        modname = prefix + "__" + _module_suffix(path, root)
        undecodable = _encoding_problem(path, rel)
        if undecodable is not None:
            problems.append(undecodable)
            continue
        with collect_transforms() as registered:
            try:
                spec = importlib.util.spec_from_file_location(modname, path)
                if spec is None or spec.loader is None:
                    raise ImportError(f"cannot import {path}")
                module = importlib.util.module_from_spec(spec)
                sys.modules[modname] = module
                spec.loader.exec_module(module)
            except (Exception, SystemExit) as e:  # sys.exit() in project code is a problem too
                sys.modules.pop(modname, None)
                problems.append(_import_problem(e, path, rel))
                logger.debug("importing %s failed", path, exc_info=True)
                continue
        for tf in registered:
            # report locations relative to the project, like YAML problems
            same_file = tf.file is not None and Path(tf.file).resolve() == path.resolve()
            transforms.append(
                TransformFunction(
                    name=tf.name,
                    func=tf.func,
                    inputs=tf.inputs,
                    as_=tf.as_,
                    file=rel if same_file else tf.file,
                    line=tf.line,
                    lineage=tf.lineage,
                )
            )
    return transforms, problems


def _encoding_problem(path: Path, rel: str) -> Problem | None:
    """A Problem when the file's bytes are not text in its encoding (UTF-8 unless a PEP 263
    ``# coding:`` line says otherwise). Python itself skips undecodable bytes in comments,
    so a file that imports may still be unreadable to editors, diffs and reviews."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        return Problem(f"cannot read Python file: {e.strerror or e}", file=rel)
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(raw).readline)
    except SyntaxError:  # an unknown coding name, or undecodable bytes in the first lines
        encoding = "utf-8"
    try:
        raw.decode(encoding)
    except UnicodeDecodeError as e:
        return undecodable(
            raw,
            e,
            f"Python file is not {encoding} text",
            rel,
            "save the file as UTF-8 (or declare its encoding: # -*- coding: NAME -*-)",
        )
    return None


def _import_problem(e: BaseException, path: Path, rel: str) -> Problem:
    if isinstance(e, SyntaxError) and e.lineno is not None:
        return Problem(
            f"syntax error in Python file: {e.msg}",
            file=rel,
            line=e.lineno,
            column=e.offset,
        )
    line: int | None = None
    target = str(path.resolve())
    for frame in traceback.extract_tb(e.__traceback__):
        try:
            if str(Path(frame.filename).resolve()) == target:
                line = frame.lineno
        except OSError:  # pragma: no cover - unusual frame file names
            continue
    return Problem(
        f"error importing Python file: {type(e).__name__}: {e}",
        file=rel,
        line=line,
        hint="fix the error; the file is imported when the project loads",
    )


def _rel(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)


def _module_suffix(path: Path, root: Path) -> str:
    rel = Path(_rel(path, root)).with_suffix("")
    return "__".join(re.sub(r"\W", "_", p) for p in rel.parts)
