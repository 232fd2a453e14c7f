"""Check definitions: the vocabulary of declared quality rules.

Each check is a frozen pydantic model discriminated by ``type``. It names its
quality dimension and documents its NULL semantics: NULLs are ignored by every
check except ``not_null`` (as in SQL-based tools).

(Skeleton: the quality engine issue extends this vocabulary.)
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


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


class BaseCheck(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    #: the quality dimension this check measures
    DIMENSION: ClassVar[Dimension]

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


class NotNull(BaseCheck):
    """completeness: fails each row where ``column`` IS NULL."""

    DIMENSION = Dimension.COMPLETENESS
    type: Literal["not_null"]
    column: str


class Unique(BaseCheck):
    """uniqueness: fails every row whose (non-null) key occurs more than once."""

    DIMENSION = Dimension.UNIQUENESS
    type: Literal["unique"]
    column: str | None = None
    columns: tuple[str, ...] | None = None


class AcceptedValues(BaseCheck):
    """validity: fails rows whose non-null value is not in ``values``."""

    DIMENSION = Dimension.VALIDITY
    type: Literal["accepted_values"]
    column: str
    values: tuple[str | int | float | bool, ...]


CheckSpec = Annotated[NotNull | Unique | AcceptedValues, Field(discriminator="type")]
