"""PII masking as vectorised column transforms, shared by streams and batch datasets.

A rule per column (``mask: {email: hash, phone: {method: tokenize}}``):

``hash``
    ``sha256(key || value)`` as hex: a keyed, deterministic token (the same value gives the
    same token in every dataset, so masked columns still join). The key is read from the
    relation :data:`KEY_RELATION`, never written into SQL text, logs or errors.
``redact``
    the whole value becomes ``replace`` (``'***'``); with ``pattern`` (a regular expression,
    RE2 syntax) only the matches are replaced: ``{method: redact, pattern: '\\d{4}'}``.
``partial``
    all but the last ``keep`` characters become ``*``.
``tokenize``
    format-preserving encryption (NIST FF1, AES-256, via ``fastfpe``): the characters of
    ``alphabet`` (digits by default) are encrypted in place, the others (``-``, spaces…) kept,
    so ``4111-1111-1111-1111`` becomes another 16-digit number with the same dashes and can
    be turned back by :func:`detokenize` with the key. A value with fewer alphabet
    characters than FF1 allows (6 digits; fewer for larger alphabets), or with characters
    that are neither in the alphabet nor separators, is replaced one way by keyed
    pseudo-random characters of the alphabet, same length (never kept in the clear; it
    cannot be detokenized; distinct such values may get the same token — a stream whose
    dedup key is tokenized sends those events to its DLQ rather than merge them).

NULL stays NULL. The key comes from an environment variable named by ``mask_key_env``
(default ``LOCKGATE_MASK_KEY``), a secret reference, never from configuration text.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import os
import re
from collections.abc import Callable, Collection, Mapping
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlglot import exp

from lockgate.errors import ConfigError, Problem
from lockgate.sql import col, ident

if TYPE_CHECKING:
    import pyarrow as pa

    from lockgate.engine.base import Engine
    from lockgate.storage.base import TableStore

#: relation holding the hash key (registered by :func:`register_masking`)
KEY_RELATION = "__lg_mask_key"
_KEY_COL = "k"
#: what ``tokenize`` keeps in place without encrypting it
SEPARATORS = " -./()+:_"
#: NIST SP 800-38G: radix ** length must be at least a million
_FF1_DOMAIN = 1_000_000

Method = Literal["hash", "redact", "partial", "tokenize"]

_TEXT_TYPE = re.compile(r"\s*(VARCHAR|TEXT|STRING|CHAR|BPCHAR)\b", re.IGNORECASE)


def is_text_type(sql_type: str) -> bool:
    """A column of this SQL type can hold masked values (they are text).

    >>> is_text_type("varchar(20)"), is_text_type("BIGINT")
    (True, False)
    """
    return _TEXT_TYPE.match(sql_type) is not None


class MaskRule(BaseModel):
    """How one column is masked (see the module's text for each method)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    method: Method
    #: partial: characters left visible at the end
    keep: int = Field(default=4, ge=0)
    #: redact: replace only what this regular expression matches (default: the whole value)
    pattern: str | None = None
    #: redact: the replacement
    replace: str = "***"
    #: tokenize: the characters encrypted in place (its length is FF1's radix)
    alphabet: str = "0123456789"

    @field_validator("pattern")
    @classmethod
    def _pattern(cls, v: str | None) -> str | None:
        if v is not None:
            if not v:
                raise ValueError("pattern must not be empty")
            try:
                re.compile(v)
            except re.error as e:
                raise ValueError(f"pattern {v!r} is not a regular expression: {e}") from None
        return v

    @field_validator("alphabet")
    @classmethod
    def _alphabet(cls, v: str) -> str:
        if len(set(v)) != len(v) or len(v) < 2:
            raise ValueError("alphabet needs at least 2 characters, each once")
        if set(v) & set(SEPARATORS):
            raise ValueError(f"alphabet must not contain the separators {SEPARATORS!r}")
        return v

    @property
    def needs_key(self) -> bool:
        return self.method in ("hash", "tokenize")

    @property
    def deterministic(self) -> bool:
        """Equal values give equal masked values (a masked merge key still merges)."""
        return self.method in ("hash", "tokenize")


MaskValue = Method | MaskRule


def rule_of(value: MaskValue) -> MaskRule:
    return value if isinstance(value, MaskRule) else MaskRule(method=value)


def _key(env_var: str) -> str:
    key = os.environ.get(env_var)
    if not key:
        msg = f"mask: hash/tokenize need a key: set the environment variable {env_var}"
        raise ConfigError([Problem(msg, hint="a secret of 32+ random characters")])
    return key


def register_masking(con: Engine, env_var: str, rules: Mapping[str, MaskRule]) -> None:
    """Make ``rules`` runnable on ``con``: the key relation for ``hash``, one function per
    ``tokenize`` alphabet. Nothing is registered when no rule needs the key."""
    if not any(r.needs_key for r in rules.values()):
        return
    key = _key(env_var)
    import pyarrow as pa

    con.register_arrow(KEY_RELATION, pa.table({_KEY_COL: [key]}))
    for alphabet in sorted({r.alphabet for r in rules.values() if r.method == "tokenize"}):
        fn = tokenizer(key, alphabet)
        con.register_function(_function_name(alphabet), fn, ["VARCHAR"], "VARCHAR")


def _function_name(alphabet: str) -> str:
    return "__lg_tokenize_" + hashlib.sha256(alphabet.encode()).hexdigest()[:12]


def mask_expr(column: str, rule: MaskRule, table: str | None = None) -> exp.Expr:
    """The masked value of ``column`` under ``rule`` (aliased to the column's name)."""
    value = exp.cast(col(column, table), exp.DataType.build("VARCHAR"))
    out: exp.Expr
    if rule.method == "hash":
        key = col(_KEY_COL, KEY_RELATION)
        out = exp.func("sha256", exp.DPipe(this=key, expression=value))
    elif rule.method == "tokenize":
        out = exp.Anonymous(this=_function_name(rule.alphabet), expressions=[value])
    elif rule.method == "redact" and rule.pattern is not None:
        out = exp.RegexpReplace(
            this=value,
            expression=exp.Literal.string(rule.pattern),
            replacement=exp.Literal.string(rule.replace.replace("\\", "\\\\")),
            modifiers=exp.Literal.string("g"),
        )
    elif rule.method == "redact":
        out = exp.If(
            this=exp.Is(this=col(column, table), expression=exp.null()),
            true=exp.null(),
            false=exp.Literal.string(rule.replace),
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
        # right(v, 0) is the whole value in DuckDB: keep nothing explicitly
        tail = exp.func("right", value, keep) if rule.keep else exp.Literal.string("")
        out = exp.DPipe(this=stars, expression=tail)
    return exp.alias_(out, ident(column))


def masked_query(
    source: exp.Query, columns: list[str], rules: Mapping[str, MaskRule]
) -> exp.Select:
    """``SELECT`` ``columns`` of ``source`` with the ``rules`` applied (matched by name,
    ignoring case)."""
    sub = "__lg_masked"
    by_lower = {c.lower(): r for c, r in rules.items()}
    sel = [
        mask_expr(c, by_lower[c.lower()], sub) if c.lower() in by_lower else col(c, sub)
        for c in columns
    ]
    q = exp.select(*sel).from_(source.subquery(sub))
    if any(r.method == "hash" for r in rules.values()):
        q = q.join(exp.to_table(KEY_RELATION), join_type="CROSS")
    return q


# -- tokenize (FF1) ---------------------------------------------------------------------------
def _aes_key(key: str) -> str:
    """The AES-256 key (hex) FF1 uses, derived from the mask key."""
    return hmac.new(key.encode(), b"lockgate-tokenize-ff1", hashlib.sha256).hexdigest()


def _min_length(radix: int) -> int:
    return max(2, math.ceil(math.log(_FF1_DOMAIN) / math.log(radix)))


def _one_way(key: str, alphabet: str, value: str) -> str:
    """Keyed pseudo-random characters of ``alphabet``, as long as ``value`` (not reversible)."""
    out: list[str] = []
    counter = 0
    while len(out) < len(value):
        block = hmac.new(key.encode(), f"{counter}\0{value}".encode(), hashlib.sha256).digest()
        out.extend(alphabet[b % len(alphabet)] for b in block)
        counter += 1
    return "".join(out[: len(value)])


def _ff1_takes(value: str, body: str, allowed: frozenset[str], shortest: int) -> bool:
    return len(body) >= shortest and allowed.issuperset(value)


def tokenizable(values: pa.Array | pa.ChunkedArray, alphabet: str = "0123456789") -> pa.Array:
    """Per value: does ``tokenize`` encrypt it with FF1 (one-to-one, reversible) rather than
    replace it one way (which maps distinct values to the same token)? NULL: True.

    >>> import pyarrow as pa
    >>> tokenizable(pa.array(["4000-0000-0000-0001", "e1", None])).to_pylist()
    [True, False, True]
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    letters = frozenset(alphabet)
    allowed = letters | frozenset(SEPARATORS)
    shortest = _min_length(len(alphabet))
    distinct = pc.unique(values).drop_null()
    ok = [
        _ff1_takes(v, "".join(ch for ch in v if ch in letters), allowed, shortest)
        for v in distinct.to_pylist()
    ]
    takes = pc.index_in(values, value_set=distinct.filter(pa.array(ok, pa.bool_())))
    return pc.or_(pc.is_valid(takes), pc.is_null(values))


def tokenizer(key: str, alphabet: str, cache_size: int = 200_000) -> Callable[[pa.Array], pa.Array]:
    """A vectorised ``tokenize``: an Arrow string array in, its tokens out. Each distinct
    value is encrypted once per call, and remembered across calls (the engine calls it per
    vector of ~2k rows) up to ``cache_size`` values."""
    from fastfpe import ff1

    aes = _aes_key(key)
    letters = frozenset(alphabet)
    allowed = letters | frozenset(SEPARATORS)
    shortest = _min_length(len(alphabet))
    seen: dict[str, str] = {}

    def one(value: str) -> str:
        body = "".join(ch for ch in value if ch in letters)
        if not _ff1_takes(value, body, allowed, shortest):
            return _one_way(key, alphabet, value)
        if len(body) == len(value):
            return str(ff1.encrypt(aes, "", alphabet, body))
        enc = iter(ff1.encrypt(aes, "", alphabet, body))
        return "".join(next(enc) if ch in letters else ch for ch in value)

    def run(values):  # type: ignore[no-untyped-def]  # (DuckDB resolves annotations)
        import pyarrow as pa
        import pyarrow.compute as pc

        if isinstance(values, pa.ChunkedArray):
            values = values.combine_chunks()
        distinct = pc.unique(values).drop_null()
        if len(seen) + len(distinct) > cache_size:
            seen.clear()
        out = []
        for v in distinct.to_pylist():
            t = seen.get(v)
            if t is None:
                t = seen[v] = one(v)
            out.append(t)
        tokens = pa.array(out, type=pa.string())
        return pc.take(tokens, pc.index_in(values, value_set=distinct))

    return run


def detokenize(value: str, key: str, alphabet: str = "0123456789") -> str:
    """The clear value of a ``tokenize`` token (the inverse of FF1 with the same key).

    >>> t = tokenizer("k" * 32, "0123456789")
    >>> import pyarrow as pa
    >>> token = t(pa.array(["4111-1111-1111-1111"]))[0].as_py()
    >>> token != "4111-1111-1111-1111" and token[4] == "-" and len(token) == 19
    True
    >>> detokenize(token, "k" * 32)
    '4111-1111-1111-1111'
    """
    from fastfpe import ff1

    letters = set(alphabet)
    body = "".join(ch for ch in value if ch in letters)
    if len(body) < _min_length(len(alphabet)):
        raise ValueError("too short to be an FF1 token (it was masked one way)")
    dec = iter(ff1.decrypt(_aes_key(key), "", alphabet, body))
    return "".join(next(dec) if ch in letters else ch for ch in value)


def refuse_newly_masked(store: TableStore, table: str, masked: Collection[str], who: str) -> None:
    """Raise unless every column in ``masked`` was masked in the rows ``table`` already
    holds: a column masked now but written in the clear before would keep those clear values
    beside the masked ones (``mask:`` promises none). Known from the ``masked`` columns each
    writer records in its commits; a table whose last commit recorded none (written before
    lockgate recorded them) is not judged."""
    snap = store.snapshot(table)
    last = snap.last_commit if snap is not None else None
    if last is None or last.masked is None:
        return
    before = {c.lower() for c in last.masked}
    new = sorted(c for c in masked if c.lower() not in before)
    if new:
        cols = ", ".join(f"'{c}'" for c in new)
        raise ConfigError(
            [
                Problem(
                    f"{who}: mask: {cols} written unmasked into table '{table}' before "
                    f"(version {last.version}); going on would keep those clear values "
                    "beside the masked ones",
                    hint=f"point the stream at a new table (sink: {{dataset: …}}) or take "
                    f"'{table}' out of the warehouse first; `lockgate vacuum {table} "
                    "--retain-hours 0` deletes files of older versions that hold clear values",
                )
            ]
        )
