"""Check files for ``lockgate check`` (no project needed).

```yaml
dataset: orders            # optional: the name custom SQL uses for the checked table
references:                # optional: datasets for relationship/reconcile/reference_match
  customers: data/customers.parquet   # a path/glob, Delta folder or postgresql:// URL
checks:
  - type: not_null
    column: order_id
  - type: between
    column: amount
    min: 0
    max: 10000
    threshold: 0.1%
```

Relative reference paths are resolved against the check file's folder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, SequenceNode

from lockgate._suggest import did_you_mean
from lockgate._yaml import byte_position, unsafe_yaml
from lockgate.errors import ConfigError, InputError, Problem
from lockgate.quality.checks import BaseCheck
from lockgate.quality.validate import parse_checks

_TOP_KEYS = ("checks", "references", "dataset")


@dataclass(frozen=True)
class CheckFile:
    path: str
    checks: list[BaseCheck]
    lines: list[int | None]
    references: dict[str, str] = field(default_factory=dict)
    dataset: str | None = None
    #: the checks as written (validate_checks re-reads them to report every problem at once)
    raw_checks: list[Any] = field(default_factory=list)
    #: problems of individual checks (unknown type, bad fields); not raised by the loader
    problems: list[Problem] = field(default_factory=list)


def load_check_file(path: str | Path) -> CheckFile:
    """Parse a check file. Structural problems (YAML, unknown top-level keys) raise
    ConfigError; problems of single checks are collected in ``problems`` so that they can be
    reported together with the column-level ones (:func:`validate_checks` on ``raw_checks``
    against the data's schema). InputError if the file cannot be read."""
    p = Path(path)
    file = str(p)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except OSError as e:
        raise InputError(f"cannot read check file {str(p)!r}: {e.strerror}") from None
    except UnicodeDecodeError as e:
        line, column = byte_position(e.object, e.start)
        raise ConfigError(
            [Problem(f"check file is not UTF-8 text (line {line}, column {column})", file, line)]
        ) from None
    unsafe = unsafe_yaml(text, file)  # an alias bomb would take minutes and gigabytes
    if unsafe is not None:
        raise ConfigError([unsafe])
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise ConfigError(
            [
                Problem(
                    f"invalid YAML: {getattr(e, 'problem', e)}",
                    file,
                    mark.line + 1 if mark else None,
                )
            ]
        ) from None
    problems: list[Problem] = []
    if not isinstance(data, dict) or not isinstance(node, MappingNode):
        raise ConfigError([Problem("a check file is a mapping with a 'checks:' list", file, 1)])
    key_lines = {k.value: k.start_mark.line + 1 for k, _ in node.value}
    for k in data:
        if k not in _TOP_KEYS:
            problems.append(
                Problem(
                    f"unknown key {k!r}",
                    file,
                    key_lines.get(k),
                    hint=did_you_mean(str(k), _TOP_KEYS) or "keys: " + ", ".join(_TOP_KEYS),
                )
            )
    raw = data.get("checks")
    lines: list[int | None] = []
    if not isinstance(raw, list) or not raw:
        problems.append(
            Problem("'checks:' must be a non-empty list", file, key_lines.get("checks"))
        )
        raw = []
    else:
        seq = next(v for k, v in node.value if k.value == "checks")
        if isinstance(seq, SequenceNode):
            lines = [item.start_mark.line + 1 for item in seq.value]
    refs = data.get("references") or {}
    if not isinstance(refs, dict) or not all(isinstance(v, str) for v in refs.values()):
        problems.append(
            Problem("'references:' maps names to paths or URLs", file, key_lines.get("references"))
        )
        refs = {}
    if problems:
        raise ConfigError(problems)
    parsed, check_problems = parse_checks(raw, file=file, lines=lines)
    base = p.parent
    resolved = {str(k): _resolve(v, base) for k, v in refs.items()}
    ds = data.get("dataset")
    return CheckFile(
        path=file,
        checks=[c for c in parsed if c is not None],
        lines=lines,
        references=resolved,
        dataset=str(ds) if ds else None,
        raw_checks=list(raw),
        problems=check_problems,
    )


def _resolve(target: str, base: Path) -> str:
    if "://" in target or Path(target).is_absolute():
        return target
    return str(base / target)


def dump_check_file(checks: list[dict[str, Any]], references: dict[str, str] | None = None) -> str:
    """YAML text of a check file (used by benchmarks and ``suggest``)."""
    doc: dict[str, Any] = {}
    if references:
        doc["references"] = dict(references)
    doc["checks"] = checks
    return yaml.safe_dump(doc, sort_keys=False)
