"""Operations settings of ``lockgate.yaml``: cron schedules, alert targets, freshness SLAs.

Cron expressions and time zones are validated when the project loads, so a typo is a
``lockgate.yaml:LINE`` error, not a scheduler that never fires.

>>> ScheduleSpec(name="hourly", cron="0 * * * *").timezone
'UTC'
>>> ScheduleSpec(name="bad", cron="61 * * * *")
Traceback (most recent call last):
...
pydantic_core._pydantic_core.ValidationError: 1 validation error for ScheduleSpec
...
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from lockgate._duration import parse_seconds


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ScheduleSpec(_Frozen):
    """A cron schedule of a selection: ``lockgate serve`` runs ``select`` at every tick."""

    name: str = Field(description="unique among the schedules; keys the scheduler's state")
    cron: str = Field(description="5-field cron expression, e.g. '0 * * * *' (cronsim syntax)")
    select: tuple[str, ...] = Field(
        default=(), description="datasets to run (same syntax as `lockgate run --select`)"
    )
    timezone: str = Field(default="UTC", description="IANA zone the cron fields are read in")

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, v: str) -> str:
        from cronsim import CronSim, CronSimError

        try:
            CronSim(v, datetime(2000, 1, 1))
        except CronSimError as e:
            raise ValueError(f"invalid cron expression {v!r}: {e}") from None
        return v

    @field_validator("timezone")
    @classmethod
    def _valid_zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {v!r}: use an IANA name like 'Europe/Berlin'"
            ) from None
        return v


class AlertEvent(StrEnum):
    """What an alert target wants to hear about."""

    RUN_FAILED = "run_failed"
    GATE_BLOCKED = "gate_blocked"
    ERROR_CHECK_FAILED = "error_check_failed"
    WARN_CHECK_FAILED = "warn_check_failed"
    FRESHNESS_BREACHED = "freshness_breached"
    SCHEMA_DRIFT = "schema_drift"
    STREAM_LAG = "stream_lag"  # a stream's consumer lag over its alerts.lag_above
    STREAM_DLQ = "stream_dlq"  # a stream's recent DLQ ratio over its alerts.dlq_ratio_above


class AlertKind(StrEnum):
    WEBHOOK = "webhook"  # JSON POST of the alert
    SLACK = "slack"  # Slack incoming webhook ({"text": ...})
    EMAIL = "email"  # SMTP


class AlertSpec(_Frozen):
    """One alert target. Secrets (webhook URLs hold tokens, SMTP passwords) come from the
    environment: ``url_env`` / ``password_env`` name the variable; they are never stored."""

    name: str
    type: AlertKind
    url: str | None = Field(default=None, description="webhook URL (prefer url_env)")
    url_env: str | None = Field(default=None, description="environment variable with the URL")
    events: tuple[AlertEvent, ...] = Field(
        default=tuple(AlertEvent), description="events this target receives (default: all)"
    )
    datasets: tuple[str, ...] = Field(default=(), description="only these datasets (default all)")
    smtp_host: str | None = None
    smtp_port: int = 25
    sender: str | None = None
    to: tuple[str, ...] = ()
    password_env: str | None = None

    @model_validator(mode="after")
    def _where_to(self) -> AlertSpec:
        if self.type == AlertKind.EMAIL:
            if not (self.smtp_host and self.sender and self.to):
                raise ValueError(f"alert '{self.name}': email needs smtp_host, sender and to")
        elif (self.url is None) == (self.url_env is None):
            raise ValueError(f"alert '{self.name}': set exactly one of 'url' or 'url_env'")
        return self


class FreshnessSpec(_Frozen):
    """A freshness SLA: how old the newest publish may get (durations like '2h')."""

    warn_after: str | float | None = None
    error_after: str | float | None = None

    @field_validator("warn_after", "error_after")
    @classmethod
    def _duration(cls, v: str | float | None) -> str | float | None:
        if v is not None:
            parse_seconds(v)  # ValueError names the accepted forms
        return v

    @model_validator(mode="after")
    def _order(self) -> FreshnessSpec:
        if self.warn_after is None and self.error_after is None:
            raise ValueError("freshness needs warn_after and/or error_after")
        w, e = self.warn_seconds, self.error_seconds
        if w is not None and e is not None and w > e:
            raise ValueError("freshness: warn_after must not exceed error_after")
        return self

    @property
    def warn_seconds(self) -> float | None:
        return None if self.warn_after is None else parse_seconds(self.warn_after)

    @property
    def error_seconds(self) -> float | None:
        return None if self.error_after is None else parse_seconds(self.error_after)


class RetrySpec(_Frozen):
    """A dataset's retry policy for transient errors (overrides the project's defaults)."""

    retries: int = Field(default=2, ge=0, description="retries after the first attempt")
    backoff_seconds: float = Field(default=1.0, ge=0, description="first delay; doubles")


class PartitionSpec(_Frozen):
    """A time-partitioned dataset: every run processes its *due* intervals — whole intervals
    of ``grain`` from ``start`` up to ``now - lag`` not done yet — and replaces each one it
    publishes (re-running an interval is idempotent). Checks and the gate apply per interval.

    >>> PartitionSpec(column="ts", grain="day", start="2024-01-01").lag_seconds
    0.0
    >>> PartitionSpec(column="ts", grain="week", start="2024-01-01")
    Traceback (most recent call last):
    ...
    pydantic_core._pydantic_core.ValidationError: 1 validation error for PartitionSpec
    ...
    """

    column: str = Field(description="the timestamp or date column that places a row in time")
    grain: Literal["hour", "day", "month"] = Field(description="interval width (UTC)")
    start: str = Field(description="first interval (ISO date or timestamp, UTC)")
    lag: str | float = Field(
        default="0s",
        description="an interval is due this long after it ends (late data settles): '2h'",
    )

    @field_validator("start")
    @classmethod
    def _start(cls, v: str) -> str:
        from lockgate.ops.intervals import parse_time

        parse_time(v)  # ValueError names the accepted forms
        return v

    @field_validator("lag")
    @classmethod
    def _lag(cls, v: str | float) -> str | float:
        if parse_seconds(v) < 0:
            raise ValueError("lag must not be negative")
        return v

    @property
    def lag_seconds(self) -> float:
        return float(parse_seconds(self.lag))

    @property
    def start_epoch(self) -> int:
        from lockgate.ops.intervals import floor, parse_time

        return floor(parse_time(self.start), self.grain)


class SensorSpec(_Frozen):
    """A condition a dataset's step waits for before it runs, up to ``deadline``:

    - ``file``: files matching ``path`` (a glob, relative to the project) exist and their
      fingerprint (names, sizes, times) changed since the dataset last published;
    - ``table``: dataset ``dataset`` has a version newer than the one seen at the last publish
      (or at least ``min_version``);
    - ``sql``: ``sql`` (DuckDB, the project's datasets readable by name) returns a true first
      value.

    Past the deadline the step fails, saying which sensor was not met.

    >>> SensorSpec(type="file", path="in/*.csv", deadline="10m").deadline_seconds
    600.0
    """

    type: Literal["file", "table", "sql"]
    name: str | None = Field(default=None, description="names it in messages (default: type)")
    path: str | None = Field(default=None, description="file: glob relative to the project")
    dataset: str | None = Field(default=None, description="table: the dataset to wait for")
    min_version: int | None = Field(default=None, ge=0, description="table: at least this")
    sql: str | None = Field(default=None, description="sql: a query; true first value = go")
    deadline: str | float = Field(default="1h", description="give up after this long")
    poll: str | float = Field(default="30s", description="time between checks")

    @model_validator(mode="after")
    def _fields(self) -> SensorSpec:
        need = {"file": "path", "table": "dataset", "sql": "sql"}[self.type]
        if getattr(self, need) is None:
            raise ValueError(f"a {self.type} sensor needs '{need}'")
        parse_seconds(self.deadline)
        if parse_seconds(self.poll) <= 0:
            raise ValueError("sensor poll must be positive")
        return self

    @property
    def label(self) -> str:
        return self.name or f"{self.type}:{self.path or self.dataset or 'sql'}"

    @property
    def deadline_seconds(self) -> float:
        return float(parse_seconds(self.deadline))

    @property
    def poll_seconds(self) -> float:
        return float(parse_seconds(self.poll))
