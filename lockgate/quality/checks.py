"""Check definitions: the vocabulary of declared quality rules.

Each check is a frozen pydantic model discriminated by ``type``. It names its quality
dimension and documents its NULL semantics. The general rule (as in SQL-based tools):
**NULLs are ignored by every check except** ``not_null`` — a row whose checked value is NULL
never fails a validity/accuracy/consistency/timeliness check, and rows with a NULL key are
ignored by ``unique``/``duplicate_rate``/``relationship``/``reference_match``.

Two kinds of check:

* **row-level** (``ROW_LEVEL = True``): a predicate per row. The engine counts the failing
  rows, marks them (one bit per check) and the gate can quarantine them. ``threshold``
  (a count or a percentage of the rows in scope) decides ``passed``.
* **table-level**: a metric of the whole batch (row count, an aggregate, freshness,
  reconciliation, required columns, custom SQL). ``failing_rows`` is 1 when the check fails
  and 0 when it passes (custom SQL: the number of rows its query returned); ``observed``
  holds the metric. ``threshold`` only applies to ``custom_sql``.

``where`` (SQL, DuckDB dialect) restricts a check to the matching rows; a row where the filter
is NULL is out of scope. Percentages and ``fraction`` are relative to the rows in scope.
"""

from __future__ import annotations

import functools
import re
from enum import StrEnum
from typing import Annotated, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from lockgate._duration import parse_seconds

Scalar = str | int | float | bool


def _duration(v: str | int | float) -> str | int | float:
    parse_seconds(v)  # invalid: ValueError naming the accepted forms
    return v


#: ``"30s"``, ``"15m"``, ``"24h"``, ``"3d"``, ``"1w"`` or seconds (checked, kept as given)
Duration = Annotated[str | int | float, AfterValidator(_duration)]


class Dimension(StrEnum):
    COMPLETENESS = "completeness"
    UNIQUENESS = "uniqueness"
    VALIDITY = "validity"
    ACCURACY = "accuracy"
    CONSISTENCY = "consistency"
    TIMELINESS = "timeliness"


class Severity(StrEnum):
    ERROR = "error"  # blocks (or quarantines) the batch
    WARN = "warn"  # reported only


_THRESHOLD_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(%?)\s*$")


def parse_fraction(value: str | int | float) -> float:
    """``0.01`` or ``'1%'`` → 0.01.

    >>> parse_fraction("2.5%")
    0.025
    """
    if isinstance(value, str):
        m = _THRESHOLD_RE.match(value)
        if not m:
            raise ValueError(f"invalid fraction {value!r}: use 0.01 or '1%'")
        num = float(m.group(1))
        return num / 100.0 if m.group(2) == "%" else num
    if value < 0:
        raise ValueError("a fraction must be >= 0")
    return float(value)


@functools.lru_cache(maxsize=256)
def re2_error(pattern: str) -> str | None:
    r"""Why ``pattern`` is not a valid RE2 regular expression (``None``: it is).

    Checked by the engine that runs it: DuckDB's regexp functions use RE2, which accepts
    e.g. ``\pL`` (Python's ``re`` does not) and rejects backreferences and lookaround.

    >>> re2_error(r"\pL+") is None
    True
    >>> re2_error(r"(a)\1") is not None
    True
    """
    from lockgate.engine.base import engine_class  # the models load without the engine
    from lockgate.engine.memo import regex_error

    return regex_error(engine_class(), pattern)


class BaseCheck(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    #: the quality dimension this check measures
    DIMENSION: ClassVar[Dimension]
    #: True: a per-row predicate (counted, marked, quarantinable); False: a batch metric
    ROW_LEVEL: ClassVar[bool] = True

    name: str | None = Field(default=None, description="default: <column>_<type>")
    severity: Severity = Severity.ERROR
    threshold: str | int | float = Field(
        default=0,
        description="failing rows tolerated: a count (10) or a fraction of rows ('0.1%')",
    )
    where: str | None = Field(default=None, description="SQL filter: only rows matching it")
    description: str | None = None

    @field_validator("threshold")
    @classmethod
    def _threshold(cls, v: str | int | float) -> str | int | float:
        if isinstance(v, str) and not _THRESHOLD_RE.match(v):
            raise ValueError(f"invalid threshold {v!r}: use a count (10) or a percentage ('0.1%')")
        if isinstance(v, int | float) and v < 0:
            raise ValueError("threshold must be >= 0")
        return v

    def allowed_failures(self, total_rows: int) -> float:
        """Number of failing rows this check tolerates for a batch of ``total_rows``."""
        v = self.threshold
        if isinstance(v, str):
            m = _THRESHOLD_RE.match(v)
            assert m is not None
            num = float(m.group(1))
            return num / 100.0 * total_rows if m.group(2) == "%" else num
        return float(v)

    def default_name(self) -> str:
        col = getattr(self, "column", None)
        cols = getattr(self, "columns", None)
        t = getattr(self, "type", "check")
        if col:
            return f"{col}_{t}"
        if cols:
            return "_".join(cols) + f"_{t}"
        return str(t)

    @property
    def check_name(self) -> str:
        return self.name or self.default_name()

    @property
    def dimension(self) -> Dimension:
        return self.DIMENSION

    @property
    def row_level(self) -> bool:
        return self.ROW_LEVEL

    def referenced_columns(self) -> list[str]:
        """Columns of the audited table this check reads (``where``/``expr`` excluded)."""
        out: list[str] = []
        for f in ("column", "column_a", "column_b", "reference"):
            v = getattr(self, f, None)
            if isinstance(v, str) and (f != "reference" or v != "now"):
                out.append(v)
        cols = getattr(self, "columns", None)
        if cols and not isinstance(self, RequiredColumns):
            out.extend(cols)
        return out


class _KeyColumns(BaseCheck):
    """Mixin: ``column`` or ``columns`` (exactly one)."""

    column: str | None = None
    columns: tuple[str, ...] | None = None

    @model_validator(mode="after")
    def _one_key(self) -> _KeyColumns:
        if (self.column is None) == (not self.columns):
            raise ValueError("give exactly one of 'column' or 'columns'")
        return self

    @property
    def key(self) -> tuple[str, ...]:
        return (self.column,) if self.column is not None else tuple(self.columns or ())


# ---- completeness --------------------------------------------------------------------------


class NotNull(BaseCheck):
    """completeness: fails each row where ``column`` IS NULL (the only NULL-failing check).
    Floating-point NaN and empty strings are values, not NULLs."""

    DIMENSION = Dimension.COMPLETENESS
    type: Literal["not_null"]
    column: str


class RequiredColumns(BaseCheck):
    """completeness (table-level): every listed column exists in the batch (case-sensitive).
    ``observed`` = the missing columns."""

    DIMENSION = Dimension.COMPLETENESS
    ROW_LEVEL = False
    type: Literal["required_columns"]
    columns: tuple[str, ...] = Field(min_length=1)

    def default_name(self) -> str:
        return "required_columns"


class RowCount(BaseCheck):
    """completeness (table-level): ``min <= count(*) <= max`` (rows matching ``where``)."""

    DIMENSION = Dimension.COMPLETENESS
    ROW_LEVEL = False
    type: Literal["row_count"]
    min: int | None = Field(default=None, ge=0)
    max: int | None = Field(default=None, ge=0)


# ---- uniqueness ----------------------------------------------------------------------------


class Unique(_KeyColumns):
    """uniqueness: fails *every* row whose key occurs more than once (2 rows for a duplicated
    pair). Rows with a NULL in any key column are ignored."""

    DIMENSION = Dimension.UNIQUENESS
    type: Literal["unique"]


class DuplicateRate(_KeyColumns):
    """uniqueness (table-level): ``(rows - distinct keys) / rows <= max`` over rows whose key
    has no NULL; ``observed`` = that rate. ``max`` is a fraction (0.01) or a percentage."""

    DIMENSION = Dimension.UNIQUENESS
    ROW_LEVEL = False
    type: Literal["duplicate_rate"]
    max: str | float = 0

    @field_validator("max")
    @classmethod
    def _max(cls, v: str | float) -> str | float:
        parse_fraction(v)
        return v


# ---- validity ------------------------------------------------------------------------------


class AcceptedValues(BaseCheck):
    """validity: fails rows whose non-null value is not in ``values`` (exact, case-sensitive)."""

    DIMENSION = Dimension.VALIDITY
    type: Literal["accepted_values"]
    column: str
    values: tuple[Scalar, ...] = Field(min_length=1)


class NotAcceptedValues(BaseCheck):
    """validity: fails rows whose non-null value is in ``values``."""

    DIMENSION = Dimension.VALIDITY
    type: Literal["not_accepted_values"]
    column: str
    values: tuple[Scalar, ...] = Field(min_length=1)


class RegexMatch(BaseCheck):
    """validity: fails rows whose non-null value does not match ``pattern`` in full
    (RE2 syntax, case-sensitive, ``regexp_full_match``)."""

    DIMENSION = Dimension.VALIDITY
    type: Literal["regex_match"]
    column: str
    pattern: str

    @field_validator("pattern")
    @classmethod
    def _pattern(cls, v: str) -> str:
        err = re2_error(v)
        if err is not None:
            raise ValueError(
                f"invalid regular expression {v!r} (RE2 syntax, as DuckDB runs it): {err}"
            )
        return v


class LengthBetween(BaseCheck):
    """validity: fails rows whose non-null string length (characters) is outside
    ``[min, max]`` (inclusive; either bound optional)."""

    DIMENSION = Dimension.VALIDITY
    type: Literal["length_between"]
    column: str
    min: int | None = Field(default=None, ge=0)
    max: int | None = Field(default=None, ge=0)


class ParsableAs(BaseCheck):
    """validity: fails rows whose non-null value cannot be cast to ``type`` (``try_cast`` is
    NULL), e.g. ``INTEGER``, ``DOUBLE``, ``DATE``, ``TIMESTAMP``."""

    DIMENSION = Dimension.VALIDITY
    type: Literal["parsable_as"]
    column: str
    as_type: str = Field(alias="as", description="target DuckDB type")

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


# ---- accuracy ------------------------------------------------------------------------------


class Between(BaseCheck):
    """accuracy: fails rows whose non-null value is outside the bounds (inclusive unless
    ``min_exclusive``/``max_exclusive``). Bounds are numbers, or strings for date/time
    columns (cast to the column's type). NaN is above every number, so it fails a ``max``."""

    DIMENSION = Dimension.ACCURACY
    type: Literal["between"]
    column: str
    min: int | float | str | None = None
    max: int | float | str | None = None
    min_exclusive: bool = False
    max_exclusive: bool = False

    @model_validator(mode="after")
    def _bounds(self) -> Between:
        if self.min is None and self.max is None:
            raise ValueError("give 'min', 'max' or both")
        return self


AggName = Literal["mean", "stddev", "sum", "min", "max", "median", "quantile", "distinct_count"]


class AggregateBetween(BaseCheck):
    """accuracy (table-level): ``min <= agg(column) <= max`` over non-null values. A NULL or
    NaN metric (e.g. the mean of no rows) fails. ``stddev`` is the sample standard deviation,
    ``quantile`` the continuous quantile ``q``."""

    DIMENSION = Dimension.ACCURACY
    ROW_LEVEL = False
    type: Literal["aggregate_between"]
    column: str
    agg: AggName
    q: float | None = Field(default=None, ge=0, le=1)
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _q(self) -> AggregateBetween:
        if self.agg == "quantile" and self.q is None:
            raise ValueError("agg 'quantile' needs q (0..1)")
        if self.min is None and self.max is None:
            raise ValueError("give 'min', 'max' or both")
        return self

    def default_name(self) -> str:
        return f"{self.column}_{self.agg}_between"


class ReferenceMatch(BaseCheck):
    """accuracy: compares each row with a trusted reference dataset: the row whose ``key``
    matches a reference row fails when its ``column`` differs from the reference's
    ``to_column`` by more than ``tolerance`` (absolute; 0 = equal). Rows without a
    reference row, and NULL values on either side, are not failing (use ``relationship``
    for existence). The reference key should be unique; if it is not, a row fails when
    it differs from any matching reference row."""

    DIMENSION = Dimension.ACCURACY
    type: Literal["reference_match"]
    column: str
    key: str | tuple[str, ...]
    to: str
    to_key: str | tuple[str, ...] | None = None
    to_column: str | None = None
    tolerance: float = Field(default=0, ge=0)

    @property
    def keys(self) -> tuple[str, ...]:
        return (self.key,) if isinstance(self.key, str) else tuple(self.key)

    @property
    def to_keys(self) -> tuple[str, ...]:
        if self.to_key is None:
            return self.keys
        return (self.to_key,) if isinstance(self.to_key, str) else tuple(self.to_key)

    def referenced_columns(self) -> list[str]:
        return [self.column, *self.keys]


# ---- consistency ---------------------------------------------------------------------------


class Expression(BaseCheck):
    """consistency: ``expr`` is a SQL boolean that must hold for each row; a row fails when it
    is FALSE (NULL = unknown = not failing, as in a SQL CHECK constraint)."""

    DIMENSION = Dimension.CONSISTENCY
    type: Literal["expression"]
    expr: str


CompareOp = Literal["=", "!=", "<", "<=", ">", ">="]


class ColumnPair(BaseCheck):
    """consistency: ``column_a <op> column_b`` must hold; NULL on either side → not failing."""

    DIMENSION = Dimension.CONSISTENCY
    type: Literal["column_pair"]
    column_a: str
    op: CompareOp
    column_b: str

    def default_name(self) -> str:
        return f"{self.column_a}_{self.column_b}_column_pair"


class Relationship(_KeyColumns):
    """consistency: referential integrity: every non-null key exists in ``to`` (its
    ``to_column``/``to_columns``, default: the same names). Rows with a NULL key pass."""

    DIMENSION = Dimension.CONSISTENCY
    type: Literal["relationship"]
    to: str
    to_column: str | None = None
    to_columns: tuple[str, ...] | None = None

    @property
    def to_key(self) -> tuple[str, ...]:
        if self.to_columns:
            return tuple(self.to_columns)
        if self.to_column:
            return (self.to_column,)
        return self.key


class Reconcile(BaseCheck):
    """consistency (table-level): this batch's ``row_count`` or ``sum(column)`` equals the
    same metric of ``to`` (``sum(to_column)``) within ``tolerance`` (a fraction or percentage
    of the reference value; 0 = exact). ``where`` filters this side only."""

    DIMENSION = Dimension.CONSISTENCY
    ROW_LEVEL = False
    type: Literal["reconcile"]
    to: str
    metric: Literal["row_count", "sum"] = "row_count"
    column: str | None = None
    to_column: str | None = None
    tolerance: str | float = 0

    @model_validator(mode="after")
    def _col(self) -> Reconcile:
        if self.metric == "sum" and not self.column:
            raise ValueError("metric 'sum' needs 'column'")
        parse_fraction(self.tolerance)
        return self

    def default_name(self) -> str:
        return f"{self.column + '_' if self.column else ''}{self.metric}_reconcile_{self.to}"


# ---- timeliness ----------------------------------------------------------------------------


class Freshness(BaseCheck):
    """timeliness (table-level): ``max(column) >= now - max_age``. No non-null value fails.
    ``observed`` = the newest timestamp."""

    DIMENSION = Dimension.TIMELINESS
    ROW_LEVEL = False
    type: Literal["freshness"]
    column: str
    max_age: Duration


class Lateness(BaseCheck):
    """timeliness: fails rows whose ``column`` is older than ``reference - max_delay``, where
    ``reference`` is another timestamp column of the row or ``now`` (default). NULL on either
    side → not failing."""

    DIMENSION = Dimension.TIMELINESS
    type: Literal["lateness"]
    column: str
    max_delay: Duration
    reference: str = "now"


# ---- custom --------------------------------------------------------------------------------


class CustomSql(BaseCheck):
    """validity (table-level): ``sql`` is a query returning the *failing rows*. It refers to
    the audited dataset by its name (or ``this``), and to other datasets by theirs.
    ``failing_rows`` = rows returned; passes when within ``threshold``. Failing rows are
    not marked (the query's rows cannot be tied back to batch rows), so under the
    ``quarantine`` policy an error-severity failure blocks the batch."""

    DIMENSION = Dimension.VALIDITY
    ROW_LEVEL = False
    type: Literal["custom_sql"]
    sql: str
    dimension_: Dimension | None = Field(default=None, alias="dimension")

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    @property
    def dimension(self) -> Dimension:
        return self.dimension_ or self.DIMENSION


CheckSpec = Annotated[
    NotNull
    | RequiredColumns
    | RowCount
    | Unique
    | DuplicateRate
    | AcceptedValues
    | NotAcceptedValues
    | RegexMatch
    | LengthBetween
    | ParsableAs
    | Between
    | AggregateBetween
    | ReferenceMatch
    | Expression
    | ColumnPair
    | Relationship
    | Reconcile
    | Freshness
    | Lateness
    | CustomSql,
    Field(discriminator="type"),
]

#: ``type:`` name → model class
CHECK_TYPES: dict[str, type[BaseCheck]] = {
    c.model_fields["type"].annotation.__args__[0]: c  # type: ignore[union-attr]
    for c in (
        NotNull,
        RequiredColumns,
        RowCount,
        Unique,
        DuplicateRate,
        AcceptedValues,
        NotAcceptedValues,
        RegexMatch,
        LengthBetween,
        ParsableAs,
        Between,
        AggregateBetween,
        ReferenceMatch,
        Expression,
        ColumnPair,
        Relationship,
        Reconcile,
        Freshness,
        Lateness,
        CustomSql,
    )
}
