"""PII masking as vectorised column expressions (sqlglot), usable on any relation.

``hash``: ``sha256(key || value)`` as hex — a keyed hash whose key is read from the relation
:data:`KEY_RELATION` (one row, column ``k``), so the key never appears in SQL text, logs or
errors; ``redact``: ``'***'``; ``partial``: all but the last ``keep`` characters as ``*``.
NULL stays NULL.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import pyarrow as pa
from sqlglot import exp

from lockgate.engine.base import Engine
from lockgate.errors import ConfigError, Problem
from lockgate.sql import col, ident
from lockgate.streams.config import MaskRule

#: relation holding the hash key (registered by :func:`register_key`)
KEY_RELATION = "__lg_mask_key"
_KEY_COL = "k"


def register_key(con: Engine, env_var: str) -> None:
    """Expose the key from environment variable ``env_var`` as :data:`KEY_RELATION`."""
    key = os.environ.get(env_var)
    if not key:
        msg = f"mask: hash needs a key: set the environment variable {env_var}"
        raise ConfigError([Problem(msg)])
    con.register_arrow(KEY_RELATION, pa.table({_KEY_COL: [key]}))


def mask_expr(column: str, rule: MaskRule, table: str | None = None) -> exp.Expr:
    """The masked value of ``column`` under ``rule`` (aliased to the column's name)."""
    value = exp.cast(col(column, table), exp.DataType.build("VARCHAR"))
    out: exp.Expr
    if rule.method == "hash":
        key = col(_KEY_COL, KEY_RELATION)
        out = exp.func("sha256", exp.DPipe(this=key, expression=value))
    elif rule.method == "redact":
        out = exp.If(
            this=exp.Is(this=col(column, table), expression=exp.null()),
            true=exp.null(),
            false=exp.Literal.string("***"),
        )
    else:
        keep = exp.Literal.number(rule.keep)
        stars = exp.func(
            "repeat",
            exp.Literal.string("*"),
            exp.func(
                "greatest",
                exp.Sub(this=exp.Length(this=value), expression=keep),
                exp.Literal.number(0),
            ),
        )
        out = exp.DPipe(this=stars, expression=exp.func("right", value, keep))
    return exp.alias_(out, ident(column))


def masked_query(
    source: exp.Query, columns: list[str], rules: Mapping[str, MaskRule]
) -> exp.Select:
    """``SELECT`` ``columns`` of ``source`` with the ``rules`` applied."""
    sub = "__lg_masked"
    sel = [mask_expr(c, rules[c], sub) if c in rules else col(c, sub) for c in columns]
    q = exp.select(*sel).from_(source.subquery(sub))
    if any(r.method == "hash" for r in rules.values()):
        q = q.join(exp.to_table(KEY_RELATION), join_type="CROSS")
    return q
