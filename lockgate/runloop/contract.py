"""Schema contract: compare the staged schema with the declared/previous one, classify
drift (added, removed, type-changed columns) and apply the dataset's policy.

The result is the projection used to publish: a list of sqlglot select expressions over the
staged table, plus the Delta ``schema_mode`` the publish needs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from sqlglot import exp

from lockgate.errors import SchemaContractError
from lockgate.project.models import SchemaPolicy, WriteMode
from lockgate.sql import ident

# DuckDB types Delta Lake cannot store, and what we store them as.
_DELTA_SAFE: dict[str, str] = {
    "HUGEINT": "DECIMAL(38,0)",
    "UHUGEINT": "DECIMAL(38,0)",
    "UBIGINT": "DECIMAL(20,0)",
    "UINTEGER": "BIGINT",
    "USMALLINT": "INTEGER",
    "UTINYINT": "SMALLINT",
    "TIME": "VARCHAR",
    "TIME WITH TIME ZONE": "VARCHAR",
    "INTERVAL": "VARCHAR",
    "UUID": "VARCHAR",
    "JSON": "VARCHAR",
    "BIT": "VARCHAR",
    "TIMESTAMP_NS": "TIMESTAMP",
    "TIMESTAMP_MS": "TIMESTAMP",
    "TIMESTAMP_S": "TIMESTAMP",
    "NULL": "VARCHAR",
    '"NULL"': "VARCHAR",
}


def delta_safe_type(duck_type: str) -> str:
    """The type a DuckDB column is published as (Delta has no unsigned/huge/time types)."""
    t = duck_type.upper()
    if t.startswith("ENUM("):
        return "VARCHAR"
    return _DELTA_SAFE.get(t, duck_type)


def normalise_type(t: str) -> str:
    """Canonical spelling for comparisons (``VARCHAR(10)`` = ``VARCHAR``, case, spaces)."""
    t = re.sub(r"\s+", " ", t.strip().upper())
    t = re.sub(r"^(VARCHAR|TEXT|STRING|CHAR|BPCHAR)(\(\d+\))?$", "VARCHAR", t)
    aliases = {
        "INT": "INTEGER",
        "INT4": "INTEGER",
        "INT8": "BIGINT",
        "LONG": "BIGINT",
        "FLOAT8": "DOUBLE",
        "FLOAT4": "FLOAT",
        "REAL": "FLOAT",
        "BOOL": "BOOLEAN",
        "TIMESTAMPTZ": "TIMESTAMP WITH TIME ZONE",
        "DATETIME": "TIMESTAMP",
        "NUMERIC": "DECIMAL(18,3)",
        "DECIMAL": "DECIMAL(18,3)",
    }
    t = aliases.get(t, t)
    return t.replace(", ", ",")


@dataclass(frozen=True)
class Drift:
    added: dict[str, str] = field(default_factory=dict)
    removed: dict[str, str] = field(default_factory=dict)
    type_changed: dict[str, tuple[str, str]] = field(default_factory=dict)  # col: (old, new)

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.type_changed)

    def describe(self) -> list[str]:
        out = [f"added column '{c}' {t}" for c, t in self.added.items()]
        out += [f"removed column '{c}' (was {t})" for c, t in self.removed.items()]
        out += [f"column '{c}' changed type {a} -> {b}" for c, (a, b) in self.type_changed.items()]
        return out

    def to_dict(self) -> dict[str, object]:
        return {
            "added": self.added,
            "removed": self.removed,
            "type_changed": {c: list(v) for c, v in self.type_changed.items()},
        }


@dataclass(frozen=True)
class ContractResult:
    projection: list[exp.Expr]
    columns: dict[str, str]  # published column → type
    drift: Drift
    schema_mode: Literal["merge", "overwrite"] | None
    warnings: list[str]


def apply_contract(
    dataset: str,
    staged: dict[str, str],
    *,
    declared: dict[str, str] | None,
    previous: dict[str, str] | None,
    policy: SchemaPolicy,
    mode: WriteMode,
    full_refresh: bool,
) -> ContractResult:
    """Decide the published projection of ``staged`` (column → DuckDB type).

    ``declared`` is the dataset's declared ``columns`` (the contract when given);
    ``previous`` is the schema of the published table (None on first publish).
    """
    staged_safe = {c: delta_safe_type(t) for c, t in staged.items()}
    cast_to: dict[str, str] = {}
    if declared:
        # a declared schema is the contract: cast to the declared types
        for c, t in declared.items():
            if c in staged_safe and normalise_type(staged_safe[c]) != normalise_type(t):
                cast_to[c] = t
        staged_safe = {c: cast_to.get(c, t) for c, t in staged_safe.items()}
    reference = _reference(declared, previous)
    drift = _diff(reference, staged_safe) if reference is not None else Drift()
    warnings: list[str] = []
    schema_mode: Literal["merge", "overwrite"] | None = None
    out_cols: dict[str, str] = dict(staged_safe)
    if drift:
        overwrite = full_refresh or mode == WriteMode.OVERWRITE
        schema_mode = _apply_policy(dataset, drift, policy, overwrite, cast_to, out_cols, warnings)
    projection = _projection(staged, staged_safe, out_cols, cast_to)
    return ContractResult(projection, out_cols, drift, schema_mode, warnings)


def _reference(
    declared: dict[str, str] | None, previous: dict[str, str] | None
) -> dict[str, str] | None:
    """The schema drift is measured against: the declared one, else the table's."""
    if declared and previous:
        # a declared schema that grew is still drift against the table
        return {**previous, **{c: t for c, t in declared.items() if c in previous}}
    return dict(declared) if declared else (dict(previous) if previous else None)


def _apply_policy(
    dataset: str,
    drift: Drift,
    policy: SchemaPolicy,
    overwrite: bool,
    cast_to: dict[str, str],
    out_cols: dict[str, str],
    warnings: list[str],
) -> Literal["merge", "overwrite"] | None:
    """Apply the schema policy to ``drift`` (updates the casts, published columns and
    warnings in place); returns the table store's schema mode."""
    if policy == SchemaPolicy.FREEZE:
        raise SchemaContractError(
            f"schema of dataset '{dataset}' drifted and its policy is 'freeze': "
            + "; ".join(drift.describe()),
            hint="change the producing SQL/source back, or set schema_policy: evolve",
        )
    if overwrite and policy == SchemaPolicy.EVOLVE:
        return "overwrite"
    if policy == SchemaPolicy.EVOLVE:
        for c, (old, _new) in drift.type_changed.items():
            warnings.append(
                f"column '{c}' type change kept as {old} (cast); use --full-refresh to "
                "rebuild the table with the new type"
            )
    else:  # WARN: keep the table's schema
        warnings.extend(drift.describe())
        for c in drift.added:
            out_cols.pop(c, None)
    for c, (old, _new) in drift.type_changed.items():
        cast_to[c] = old
        out_cols[c] = old
    for c, t in drift.removed.items():
        out_cols[c] = t
    return "merge" if policy == SchemaPolicy.EVOLVE and drift.added else None


def _projection(
    staged: dict[str, str],
    staged_safe: dict[str, str],
    out_cols: dict[str, str],
    cast_to: dict[str, str],
) -> list[exp.Expr]:
    projection: list[exp.Expr] = []
    for c, t in out_cols.items():
        if c not in staged:  # removed column: typed NULL keeps the table's shape
            projection.append(
                exp.alias_(
                    exp.Cast(this=exp.Null(), to=exp.DataType.build(t, dialect="duckdb")), ident(c)
                )
            )
            continue
        target = cast_to.get(c) or (staged_safe[c] if staged_safe[c] != staged[c] else None)
        col: exp.Expression = exp.Column(this=ident(c))
        if target is not None:
            col = exp.Cast(this=col, to=exp.DataType.build(target, dialect="duckdb"))
        projection.append(exp.alias_(col, ident(c)))
    return projection


def _diff(reference: dict[str, str], staged: dict[str, str]) -> Drift:
    added = {c: t for c, t in staged.items() if c not in reference}
    removed = {c: t for c, t in reference.items() if c not in staged}
    changed = {
        c: (reference[c], staged[c])
        for c in staged
        if c in reference and normalise_type(reference[c]) != normalise_type(staged[c])
    }
    return Drift(added, removed, changed)
