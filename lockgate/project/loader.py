"""Load and validate a project folder, reporting every problem at once.

``lockgate.yaml`` → :class:`ProjectConfig`; ``<datasets_dir>/**/*.yaml|yml`` → dataset
specs; ``**/*.py`` → ``@transform`` functions; ``sql_file`` texts. Every problem (bad YAML,
unknown key, bad value, duplicate name, unknown reference, SQL syntax, cycle, undeclared
column ...) is collected with its file and line, then :func:`load_project` raises one
:class:`ConfigError` carrying them all.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from lockgate._duration import parse_duration
from lockgate._suggest import did_you_mean
from lockgate._yaml import LineDict, LineList, line_of, load_yaml, plain, read_text
from lockgate.engine.base import Engine, engine_class
from lockgate.engine.memo import DialectMemo
from lockgate.errors import ConfigError, Problem
from lockgate.features.definitions import FEATURE_KEYS, FeatureLoader
from lockgate.project.binding import (
    ColumnError,
    SchemaBinder,
    condition_regex_errors,
    regex_errors,
)
from lockgate.project.dag import find_cycles, parse_query, table_refs, topological_order
from lockgate.project.locate import Locator, file_locator, inline_locator
from lockgate.project.models import (
    DatasetSpec,
    ProjectConfig,
    PythonTransformSpec,
    SqlTransformSpec,
)
from lockgate.project.project import WORK_DIR, Project
from lockgate.project.pydantic_errors import LOADER_FIELDS, validation_problems
from lockgate.project.python import TransformFunction, import_transforms
from lockgate.project.targets import select_target, source_problems
from lockgate.streams.config import StreamSpec
from lockgate.streams.definitions import load_streams, stream_table_problems

logger = logging.getLogger(__name__)

CONFIG_FILE = "lockgate.yaml"
_TRANSFORM_KEYS = ("sql", "sql_file", "python")


def load_project(path: str | Path = ".", *, target: str | None = None) -> Project:
    """Load the project in ``path``; raise :class:`ConfigError` listing every problem.

    ``target`` selects an environment of ``targets:`` (default: ``LOCKGATE_TARGET``, then
    ``default_target``; see :mod:`lockgate.project.targets`)."""
    project, problems = _ProjectLoader(Path(path), target).load()
    if problems or project is None:
        raise ConfigError(problems)
    return project


def validate_project(path: str | Path = ".", *, target: str | None = None) -> list[Problem]:
    """Every problem of the project in ``path`` (empty when it loads)."""
    return _ProjectLoader(Path(path), target).load()[1]


@dataclass
class _Entry:
    """A dataset definition while loading."""

    spec: DatasetSpec
    file: str  # relative to the project root
    line: int
    raw: LineDict | None  # None for Python transforms without a YAML entry
    base_dir: Path  # folder of the YAML file (sql_file is relative to it)
    sql: str | None = None
    deps: list[str] = field(default_factory=list)
    tree: Any = None  # the parsed SQL (sqlglot), when it parses
    locate: Locator | None = None  # SQL position -> (file, line, column) to report


class _ProjectLoader:
    def __init__(self, path: Path, target: str | None = None) -> None:
        self.root = path.expanduser().resolve()
        self.target = target
        self.problems: list[Problem] = []
        self.entries: dict[str, _Entry] = {}
        # names of datasets defined anywhere, even invalid ones: references to them are
        # not reported again as unknown
        self.known: dict[str, str] = {}  # lower-case → name
        self._by_lower: dict[str, _Entry] = {}  # lower-case name → its (first) entry
        self.engine: type[Engine] = engine_class()  # the project's, once its config loads
        self.memo = DialectMemo(self.root / WORK_DIR / "cache" / "dialect.json")
        self.features = FeatureLoader()  # feature_views/feature_services of every file
        self.streams: list[StreamSpec] = []

    # ---- entry point ---------------------------------------------------------------------

    def load(self) -> tuple[Project | None, list[Problem]]:
        """The project and its problems; the engine's answers come from the dialect cache
        (see :mod:`lockgate.engine.memo`) when the project's SQL, types and regexes are
        unchanged."""
        with self.memo.active():
            return self._load()

    def _load(self) -> tuple[Project | None, list[Problem]]:
        config = self._load_config()
        if config is None and not (self.root / CONFIG_FILE).is_file():
            return None, self.problems
        target = None
        if config is not None:
            config, target, problems = select_target(config, self._raw_config, self.target)
            self.problems.extend(problems)
            self.engine = engine_class(config.engine)
        datasets_dir = self._datasets_dir(config)
        if datasets_dir is not None:
            yaml_files, py_files = self._discover(datasets_dir)
            for f in yaml_files:
                self._load_dataset_file(f)
            transforms, problems = import_transforms(py_files, root=self.root)
            self.problems.extend(problems)
            python = self._bind_python(transforms)
        else:
            python = {}
        self._resolve_sql()
        self._check_regexes()
        order = self._order()
        schemas = self._bind_sql(order)
        self._check_columns(schemas)
        features = self.features.load({n: schemas.get(n) for n in self.entries})
        self.problems.extend(self.features.problems)
        self.problems.extend(stream_table_problems(self.streams, set(self.entries)))
        if config is not None:
            entries = [(e.spec, e.raw) for e in self.entries.values()]
            self.problems.extend(source_problems(config, entries))
        if self.problems or config is None:
            # lockgate.yaml first, then by file and line (stable: same-line order kept)
            self.problems.sort(
                key=lambda p: (p.file != CONFIG_FILE, p.file or "", p.line or 0, p.column or 0)
            )
            return None, self.problems
        datasets = {n: self.entries[n].spec for n in order}
        return (
            Project(
                root=self.root,
                config=config,
                datasets=datasets,
                deps={n: tuple(self.entries[n].deps) for n in order},
                sql_texts={n: e.sql for n in order if (e := self.entries[n]).sql is not None},
                python_transforms=python,
                features=features,
                target=target,
                streams={st.name: st for st in self.streams},
            ),
            [],
        )

    def add(
        self,
        message: str,
        file: str | None,
        line: int | None = None,
        column: int | None = None,
        hint: str | None = None,
    ) -> None:
        self.problems.append(Problem(message, file=file, line=line, column=column, hint=hint))

    def rel(self, path: Path) -> str:
        try:
            return path.resolve().relative_to(self.root).as_posix()
        except ValueError:
            return str(path)

    # ---- lockgate.yaml -------------------------------------------------------------------

    def _load_config(self) -> ProjectConfig | None:
        if not self.root.is_dir():
            self.add(f"project folder '{self.root}' does not exist", None)
            return None
        cfg = self.root / CONFIG_FILE
        if not cfg.is_file():
            hint = "run `lockgate init` to create a project, or pass --project DIR"
            if (self.root / "lockgate.yml").is_file():
                hint = "rename lockgate.yml to lockgate.yaml"
            self.add(
                f"no {CONFIG_FILE} in '{self.root}': this is not a lockgate project",
                None,
                hint=hint,
            )
            return None
        self._raw_config: Any = None
        text = read_text(cfg, CONFIG_FILE)
        if isinstance(text, Problem):
            self.problems.append(text)
            return None
        data, problems = load_yaml(text, CONFIG_FILE)
        self.problems.extend(problems)
        if data is None and problems:
            return None
        self._raw_config = data
        if not isinstance(data, dict):
            self.add(
                f"{CONFIG_FILE} must be a mapping (name: ..., warehouse: ...)",
                CONFIG_FILE,
                getattr(data, "line", 1),
            )
            return None
        try:
            return ProjectConfig.model_validate(plain(data))
        except ValidationError as e:
            self.problems.extend(validation_problems(e, data, CONFIG_FILE, ProjectConfig, ""))
            return None

    def _datasets_dir(self, config: ProjectConfig | None) -> Path | None:
        value: Any
        if config is not None:
            value = config.datasets_dir
        else:
            raw = getattr(self, "_raw_config", None)
            value = raw.get("datasets_dir") if isinstance(raw, dict) else None
            if not isinstance(value, str) or not value.strip():
                value = "datasets"
        folder = Path(value).expanduser()
        folder = folder if folder.is_absolute() else self.root / folder
        if not folder.is_dir():
            line = None
            raw = getattr(self, "_raw_config", None)
            if isinstance(raw, LineDict) and "datasets_dir" in raw:
                line = raw.key_line("datasets_dir")
            self.add(
                f"datasets folder '{value}' does not exist",
                CONFIG_FILE,
                line,
                hint="create it, or set datasets_dir in lockgate.yaml",
            )
            return None
        return folder

    def _discover(self, folder: Path) -> tuple[list[Path], list[Path]]:
        yaml_files: list[Path] = []
        py_files: list[Path] = []
        for p in sorted(folder.rglob("*")):
            parts = p.relative_to(folder).parts
            if any(x.startswith(".") or x == "__pycache__" for x in parts) or not p.is_file():
                continue
            if p.suffix in (".yaml", ".yml"):
                yaml_files.append(p)
            elif p.suffix == ".py":
                py_files.append(p)
        return yaml_files, py_files

    # ---- dataset YAML --------------------------------------------------------------------

    def _load_dataset_file(self, path: Path) -> None:
        file = self.rel(path)
        text = read_text(path, file)
        if isinstance(text, Problem):
            self.problems.append(text)
            return
        data, problems = load_yaml(text, file)
        self.problems.extend(problems)
        if data is None:
            return  # empty file, or malformed (already reported)
        top = ("datasets", "streams", *FEATURE_KEYS)
        if isinstance(data, LineDict) and "streams" in data:
            streams, problems = load_streams(data["streams"], file, data.key_line("streams"))
            self.streams.extend(streams)
            self.problems.extend(problems)
        if not isinstance(data, LineDict) or not any(k in data for k in top):
            self.add(
                "a dataset file must be a mapping with one key 'datasets:' (a list of datasets)",
                file,
                getattr(data, "line", 1),
            )
            return
        for key in data:
            if key not in top:
                self.add(
                    f"unknown key '{key}' at the top of a dataset file",
                    file,
                    data.key_line(key),
                    hint=did_you_mean(str(key), top) or f"top-level keys: {', '.join(top)}",
                )
        self.features.collect(data, file)
        items = data.get("datasets")
        if items is None:
            return
        if not isinstance(items, LineList):
            self.add(
                "'datasets' must be a list of datasets (- name: ...)",
                file,
                data.key_line("datasets"),
            )
            return
        for i, item in enumerate(items):
            line = items.item_line(i)
            if not isinstance(item, LineDict):
                self.add(
                    f"datasets[{i}] must be a mapping (name: ..., source/transform: ...)",
                    file,
                    line,
                )
                continue
            self._load_dataset(item, file, line, path.parent)

    def _load_dataset(self, raw: LineDict, file: str, line: int, base_dir: Path) -> None:
        name = raw.get("name")
        label = f"dataset '{name}'" if isinstance(name, str) else "dataset"
        if isinstance(name, str):
            self.known.setdefault(name.lower(), name)
        problems: list[Problem] = []
        for key in LOADER_FIELDS:
            if key in raw:
                problems.append(
                    Problem(f"{label}: unknown key '{key}'", file=file, line=raw.key_line(key))
                )
        transform = raw.get("transform")
        skip_transform_errors = False
        if isinstance(transform, LineDict):
            given = [k for k in _TRANSFORM_KEYS if k in transform]
            if len(given) > 1:
                problems.append(
                    Problem(
                        f"{label}: transform has {' and '.join(repr(k) for k in given)}: give "
                        "exactly one of 'sql', 'sql_file' or 'python'",
                        file=file,
                        line=raw.key_line("transform"),
                    )
                )
                skip_transform_errors = True
        sla = raw.get("freshness_sla")
        if isinstance(sla, str):
            try:
                parse_duration(sla)
            except ValueError as err:
                problems.append(
                    Problem(
                        f"{label}: freshness_sla: {err}",
                        file=file,
                        line=raw.key_line("freshness_sla"),
                    )
                )
        data = {k: v for k, v in plain(raw).items() if k not in LOADER_FIELDS}
        try:
            spec = DatasetSpec.model_validate({**data, "defined_in": file, "defined_line": line})
        except ValidationError as e:
            skip = ("transform",) if skip_transform_errors else ()
            errs = validation_problems(e, raw, file, DatasetSpec, label, skip=skip)
            self.problems.extend(problems + errs)
            return
        if problems:
            self.problems.extend(problems)
            return
        self._add_entry(_Entry(spec, file, line, raw, base_dir))

    def _add_entry(self, entry: _Entry) -> bool:
        """Register a dataset; False (and a problem) when its name is already taken."""
        name = entry.spec.name
        first = self.entries.get(name) or self._by_lower.get(name.lower())
        if first is not None:
            where = f"{first.file}:{first.line}"
            if first.spec.name == name:
                message = f"duplicate dataset name '{name}' (first defined at {where})"
            else:
                message = (
                    f"dataset name '{name}' differs only in case from '{first.spec.name}' "
                    f"(defined at {where}); SQL names are case-insensitive, so both would be "
                    "the same table"
                )
            self.add(
                message, entry.file, entry.line, hint="dataset names are unique across the project"
            )
            return False
        self.known.setdefault(name.lower(), name)
        self.entries[name] = entry
        self._by_lower[name.lower()] = entry
        self._check_column_names(entry)
        return True

    def _check_column_names(self, entry: _Entry) -> None:
        """Declared column names that differ only in case name one column in DuckDB."""
        spec, raw = entry.spec, entry.raw
        for loc, declared in (
            (("columns",), spec.columns),
            (("source", "columns"), spec.source.declared_columns() if spec.source else None),
        ):
            seen: dict[str, str] = {}
            for column in declared or {}:
                other = seen.setdefault(column.lower(), column)
                if other != column:
                    self.add(
                        f"dataset '{spec.name}': columns '{other}' and '{column}' differ only "
                        "in case; SQL names are case-insensitive, so they are one column",
                        entry.file,
                        line_of(raw, (*loc, column)) if raw is not None else entry.line,
                        hint="rename or remove one of them",
                    )

    # ---- Python transforms ---------------------------------------------------------------

    def _bind_python(self, transforms: list[TransformFunction]) -> dict[str, TransformFunction]:
        registered: dict[str, TransformFunction] = {}
        for tf in transforms:
            if not self.engine.SUPPORTS_PYTHON_TRANSFORMS:
                self.add(
                    f"Python transform '{tf.name}': engine '{self.engine.name}' does not run "
                    "Python transforms",
                    tf.file,
                    tf.line,
                    hint="write it in SQL, or choose an engine that runs Python (`engine: duckdb`)",
                )
                continue
            other = registered.get(tf.name)
            if other is not None:
                self.add(
                    f"Python transform '{tf.name}' is registered twice (first at "
                    f"{other.location()})",
                    tf.file,
                    tf.line,
                    hint="rename one, or pass @transform(name=...)",
                )
                continue
            registered[tf.name] = tf
        used: set[str] = set()
        bound: dict[str, TransformFunction] = {}
        for name, entry in self.entries.items():
            t = entry.spec.transform
            if not isinstance(t, PythonTransformSpec):
                continue
            used.add(t.python)
            found = registered.get(t.python)
            if found is None:
                line = entry.raw.key_line("transform") if entry.raw is not None else entry.line
                if entry.raw is not None and isinstance(entry.raw.get("transform"), LineDict):
                    line = entry.raw["transform"].key_line("python")
                self.add(
                    f"dataset '{name}': Python transform '{t.python}' is not registered",
                    entry.file,
                    line,
                    hint=did_you_mean(t.python, registered)
                    or "decorate a function in a .py file under the datasets folder with "
                    "@transform",
                )
                continue
            bound[name] = found
        for tf in registered.values():
            if tf.name in used:
                continue
            if tf.name in self.entries:
                e = self.entries[tf.name]
                self.add(
                    f"Python transform '{tf.name}' has no YAML entry and its dataset name "
                    f"is already used by the dataset at {e.file}:{e.line}",
                    tf.file,
                    tf.line,
                    hint="rename the function or pass @transform(name=...)",
                )
                continue
            spec = DatasetSpec(
                name=tf.name,
                transform=PythonTransformSpec(python=tf.name),
                defined_in=tf.file,
                defined_line=tf.line,
            )
            if self._add_entry(_Entry(spec, tf.file or "", tf.line or 0, None, self.root)):
                bound[tf.name] = tf
        for name, tf in bound.items():
            entry = self.entries[name]
            entry.deps = list(tf.datasets)
            for ds in tf.datasets:
                if ds not in self.known.values():
                    canonical = self.known.get(ds.lower())
                    if canonical is not None:  # case differs: DuckDB names are case-insensitive
                        entry.deps[entry.deps.index(ds)] = canonical
                        continue
                    param = next(p for p, d in tf.inputs.items() if d == ds)
                    self.add(
                        f"unknown dataset '{ds}' used as input '{param}' of Python "
                        f"transform '{tf.name}' (dataset '{name}')",
                        tf.file,
                        tf.line,
                        hint=did_you_mean(ds, self.known.values())
                        or "each parameter names an upstream dataset; map others with "
                        "@transform(inputs={param: dataset})",
                    )
        return bound

    # ---- SQL -----------------------------------------------------------------------------

    def _resolve_sql(self) -> None:
        for name, entry in self.entries.items():
            t = entry.spec.transform
            if not isinstance(t, SqlTransformSpec):
                continue
            raw_t = entry.raw.get("transform") if entry.raw is not None else None
            if t.sql_file is not None:
                path = Path(t.sql_file)
                path = path if path.is_absolute() else entry.base_dir / path
                if not path.is_file():
                    line = raw_t.key_line("sql_file") if isinstance(raw_t, LineDict) else None
                    self.add(
                        f"dataset '{name}': sql_file '{t.sql_file}' not found (looked "
                        f"for {self.rel(path)})",
                        entry.file,
                        line or entry.line,
                        hint="sql_file is relative to the folder of the YAML file",
                    )
                    continue
                text = read_text(path, self.rel(path))
                if isinstance(text, Problem):
                    self.problems.append(text)
                    continue
                entry.sql = text
                locate = file_locator(self.rel(path))
            else:
                assert t.sql is not None
                entry.sql = t.sql
                locate = inline_locator(entry.file, entry.line, raw_t)
            tree, err = parse_query(entry.sql)
            if err is not None:
                file, line, col = locate(err.line, err.column)
                self.add(f"dataset '{name}': SQL syntax error: {err.message}", file, line, col)
                continue
            duck_err = self.memo.syntax_error(self.engine, entry.sql)  # stricter than sqlglot
            if duck_err is not None:
                message, sql_line, sql_col = duck_err
                file, line, col = locate(sql_line, sql_col)
                pos = f" (line {sql_line}, column {sql_col} of the query)" if sql_line else ""
                self.add(
                    f"dataset '{name}': SQL syntax error{pos}: {message}",
                    file,
                    line,
                    col,
                    hint="the SQL runs on DuckDB; see duckdb.org/docs/sql/introduction",
                )
                continue
            assert tree is not None
            for bad in regex_errors(tree):
                file, line, col = locate(bad.line, bad.col)
                self.add(
                    f"dataset '{name}': its SQL has an invalid regular expression "
                    f"{bad.pattern!r} (RE2 syntax, as DuckDB runs it): {bad.error}",
                    file,
                    line,
                    col,
                    hint=_RE2_HINT,
                )
            deps: list[str] = []
            for ref in table_refs(tree):
                canonical = None
                if ref.qualifier.lower() in ("", "main"):
                    canonical = self.known.get(ref.name.lower())
                if canonical is not None:
                    if canonical not in deps:
                        deps.append(canonical)
                    continue
                file, line, col = locate(ref.line, ref.column)
                self.add(
                    f"unknown dataset '{ref.full_name}' referenced in SQL of dataset '{name}'",
                    file,
                    line,
                    col,
                    hint=did_you_mean(ref.name, self.known.values())
                    or "a query can read project datasets (and files via read_csv/read_parquet)",
                )
            entry.deps = deps
            entry.tree, entry.locate = tree, locate

    def _check_regexes(self) -> None:
        """Literal regular expressions in checks' ``where``/``expr``/``sql``, compiled by
        RE2 (the engine that runs them) so a bad one is a validate problem, not a failed
        step after the data was read."""
        for name, entry in self.entries.items():
            if entry.raw is None:
                continue
            for i, check in enumerate(entry.spec.checks):
                for key in ("where", "expr", "sql"):
                    text = getattr(check, key, None)
                    if not isinstance(text, str):
                        continue
                    for bad in condition_regex_errors(text):
                        self.add(
                            f"dataset '{name}': check '{check.check_name}': {key} has an "
                            f"invalid regular expression {bad.pattern!r} (RE2 syntax, as "
                            f"DuckDB runs it): {bad.error}",
                            entry.file,
                            line_of(entry.raw, ("checks", i, key)),
                            hint=_RE2_HINT,
                        )

    # ---- SQL bound against the known schemas ----------------------------------------------

    def _bind_sql(self, order: list[str]) -> dict[str, dict[str, str]]:
        """Output schema (column → DuckDB type) of every dataset whose schema is known, in
        DAG order; a SQL transform whose inputs are all known is bound over them, and a
        column no input has is reported (see :mod:`lockgate.project.binding`)."""
        known: dict[str, dict[str, str]] = {}
        binder = SchemaBinder(self.engine.name, self.memo)
        try:
            for name in order:
                schema = self._schema_of(binder, name, known)
                if schema is not None and binder.add(name, schema):
                    known[name] = schema
        finally:
            binder.close()
        return known

    def _schema_of(
        self, binder: SchemaBinder, name: str, known: dict[str, dict[str, str]]
    ) -> dict[str, str] | None:
        entry = self.entries[name]
        spec = entry.spec
        declared = (spec.source.declared_columns() if spec.source else None) or spec.columns
        declared = {
            c: self.memo.canonical_type(self.engine, t) for c, t in (declared or {}).items()
        }
        if spec.kind != "sql":  # a source, or a Python transform: known when declared
            return declared or None
        if entry.tree is None or entry.sql is None or any(d not in known for d in entry.deps):
            return None  # an input's schema is unknown: nothing to bind against
        schema, error = binder.bind(entry.sql, entry.tree)
        if error is not None:
            self._column_error(name, entry, error, known)
        if schema is None:
            return None
        return {c: declared.get(c, t) for c, t in schema.items()}

    def _column_error(
        self, name: str, entry: _Entry, err: ColumnError, known: dict[str, dict[str, str]]
    ) -> None:
        inputs = {c: None for d in entry.deps for c in known[d]}
        assert entry.locate is not None
        file, line, col = entry.locate(err.line, err.col)
        if err.ambiguous:
            self.add(
                f"dataset '{name}': column '{err.column}' in its SQL is ambiguous: more than "
                "one input has it",
                file,
                line,
                col,
                hint="qualify it with its table or alias, e.g. orders.customer_id",
            )
            return
        which = (
            f"'{err.table}' does not have"
            if err.table
            else f"none of its inputs ({', '.join(entry.deps) or 'none'}) has"
        )
        self.add(
            f"dataset '{name}': its SQL uses column '{err.column}', which {which}",
            file,
            line,
            col,
            hint=did_you_mean(err.column, err.candidates)
            or did_you_mean(err.column, inputs)
            or "the inputs' columns are their declared columns (source.columns) and what "
            "their SQL produces; declare the column if the data has it",
        )

    # ---- declared columns ----------------------------------------------------------------

    def _check_columns(self, schemas: dict[str, dict[str, str]]) -> None:
        """Keys, cursor, partitions and checks against the dataset's columns: the declared
        ones, else (SQL transforms) the ones its bound SQL produces."""
        for name, entry in self.entries.items():
            spec, raw = entry.spec, entry.raw
            declared = spec.columns
            if declared is None and spec.source is not None:
                declared = spec.source.declared_columns()
            inferred = declared is None and name in schemas
            if inferred:
                declared = schemas[name]
            if declared is None or raw is None:
                continue
            uses: list[tuple[str, str, tuple[int | str, ...]]] = []
            for i, k in enumerate(spec.write.keys):
                uses.append((k, "write.keys", ("write", "keys", i)))
            for i, k in enumerate(spec.write.partition_by):
                uses.append((k, "write.partition_by", ("write", "partition_by", i)))
            if spec.write.order_by:
                uses.append((spec.write.order_by, "write.order_by", ("write", "order_by")))
            if spec.incremental is not None:
                uses.append(
                    (spec.incremental.cursor, "incremental.cursor", ("incremental", "cursor"))
                )
            for i, check in enumerate(spec.checks):
                col = getattr(check, "column", None)
                if isinstance(col, str):
                    uses.append((col, f"check '{check.check_name}'", ("checks", i, "column")))
                for j, c in enumerate(getattr(check, "columns", None) or ()):
                    uses.append((c, f"check '{check.check_name}'", ("checks", i, "columns", j)))
            self._check_checks(name, entry, declared, schemas)
            lower = {c.lower() for c in declared}
            for column, where, loc in uses:
                if column in declared or (inferred and column.lower() in lower):
                    continue
                self.add(
                    f"dataset '{name}': {where} uses column '{column}', which is not in "
                    + ("the columns its SQL produces" if inferred else "the declared columns"),
                    entry.file,
                    line_of(raw, loc),
                    hint=did_you_mean(column, declared) or f"declared: {', '.join(declared)}",
                )

    def _check_checks(
        self,
        name: str,
        entry: _Entry,
        declared: dict[str, str],
        schemas: dict[str, dict[str, str]],
    ) -> None:
        """The dataset's checks against its columns (unknown columns, type mismatches, bad
        where/expr, ...) and, when every dataset they refer to (``to:``) has a known schema,
        against those too: what the run would reject after staging."""
        from lockgate.quality import validate_checks

        checks = entry.spec.checks
        if not checks:
            return
        columns = {c: self.memo.canonical_type(self.engine, t) for c, t in declared.items()}
        lines = [line_of(entry.raw, ("checks", i)) for i in range(len(checks))]
        targets = {t for c in checks if isinstance(t := getattr(c, "to", None), str)}
        canonical = {t: self.known.get(t.lower()) for t in targets}
        refs = None
        if targets and all(canonical[t] in schemas for t in targets):
            refs = {t: schemas[canonical[t] or ""] for t in targets}
        for p in validate_checks(checks, columns, file=entry.file, lines=lines, references=refs):
            if _CHECK_COLUMN_UNKNOWN.match(p.message):
                continue  # reported (case-exactly, at the column's line) by _check_columns
            self.add(f"dataset '{name}': {p.message}", p.file, p.line, p.column, p.hint)

    # ---- order ---------------------------------------------------------------------------

    def _order(self) -> list[str]:
        # check targets (relationship/reconcile/reference_match `to:`) order the DAG too —
        # the referenced dataset must be published first — but are not inputs of the step
        deps = {n: list(e.deps) + self._check_targets(n) for n, e in self.entries.items()}
        cycles = find_cycles(deps)
        for cycle in cycles:
            first = self.entries[cycle[0]]
            self.add(
                f"dependency cycle: {' -> '.join(cycle)}",
                first.file,
                first.line,
                hint="a dataset cannot read itself, directly or through others",
            )
        if cycles:
            return []
        return topological_order(self.entries, deps)

    def _check_targets(self, name: str) -> list[str]:
        spec = self.entries[name].spec
        out: list[str] = []
        for check in getattr(spec, "checks", None) or ():
            target = getattr(check, "to", None)
            if not isinstance(target, str) or target == name:
                continue
            canonical = self.known.get(target.lower())
            if canonical is None:
                entry = self.entries[name]
                self.add(
                    f"dataset '{name}': check '{check.check_name}' refers to unknown dataset "
                    f"'{target}'",
                    entry.file,
                    entry.line,
                    hint=did_you_mean(target, self.known.values()),
                )
            elif canonical not in out:
                out.append(canonical)
        return out


# ---- SQL error locations ------------------------------------------------------------------

# (line, column) inside a SQL text -> (file, line, column) to report


_RE2_HINT = "RE2 has no backreferences or lookaround; see github.com/google/re2/wiki/Syntax"
_CHECK_COLUMN_UNKNOWN = re.compile(r"check '[^']*': unknown column '[^']*'$")
