"""``streams:`` definitions: frozen values parsed from dataset YAML files (next to
``datasets:``), validated by the project loader with file:line errors.

A stream pulls micro-batches from a broker, parses them with its declared ``columns``,
de-duplicates on ``dedup.key`` within ``dedup.window``, runs the same ``checks`` as datasets
(failing events go to the DLQ), masks PII columns and commits each batch into
``sink.dataset`` exactly once (see :mod:`lockgate.streams.runner`).
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from lockgate._duration import parse_duration
from lockgate.masking import MaskRule, MaskValue, rule_of
from lockgate.quality.checks import CheckSpec


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _check_name(value: str) -> str:
    # imported here: lockgate.project imports this module (a cycle when streams load first)
    from lockgate.project.models import _check_name as check

    return check(value)


def _duration(value: str | float) -> str | float:
    try:
        d = parse_duration(value)  # raises ValueError with the reason
    except OverflowError:
        raise ValueError(f"duration {value!r} is too large") from None
    if d < timedelta(0):
        raise ValueError(f"duration {value!r} is negative")
    return value


class RedisStreamSource(_Frozen):
    """A Redis stream read through a consumer group (``XREADGROUP``)."""

    type: Literal["redis"]
    url: str = "redis://127.0.0.1:6379"
    stream: str
    group: str = "lockgate"
    consumer: str = "lockgate-1"
    #: field of the stream entry that holds the event's JSON
    field: str = "data"


class NatsStreamSource(_Frozen):
    """A NATS JetStream subject read through a durable pull consumer (``fetch``)."""

    type: Literal["nats"]
    url: str = "nats://127.0.0.1:4222"
    stream: str
    subject: str
    durable: str = "lockgate"
    #: ``ndjson``: each JetStream message is an envelope of many events, one JSON per line
    #: (the per-message client cost is paid once per envelope); ``none``: one event each
    envelope: Literal["none", "ndjson"] = "none"


class KafkaStreamSource(_Frozen):
    """A Kafka topic read through a consumer group (confluent-kafka / librdkafka).

    The table holds one position per partition (its own application transaction), so a
    multi-partition topic commits all its partitions' positions in one Delta commit. At
    start and at every rebalance each assigned partition is sought to the table's position;
    the group's committed offsets are written after each Delta commit (for monitoring
    tools) but never trusted; a partition the table holds no position for is read from
    its earliest retained message."""

    type: Literal["kafka"]
    #: ``host:port[,host:port…]`` of the brokers (no credentials here)
    bootstrap: str
    topic: str
    group: str = "lockgate"
    #: the group member's session timeout: a consumer killed without leaving the group holds
    #: its partitions this long before a restarted one gets them
    session_timeout: str | float = "45s"

    _session = field_validator("session_timeout")(_duration)


StreamSourceSpec = Annotated[
    RedisStreamSource | NatsStreamSource | KafkaStreamSource, Field(discriminator="type")
]


class DedupSpec(_Frozen):
    key: tuple[str, ...] = Field(min_length=1)
    window: str | float = "10m"

    _window = field_validator("window")(_duration)

    @property
    def window_delta(self) -> timedelta:
        return parse_duration(self.window)


class SinkSpec(_Frozen):
    dataset: str
    partition_by: tuple[str, ...] = ()
    #: compact the sink, DLQ and late table's small files every this many batches (0: never;
    #: see ``lockgate optimize``)
    compact_every: int = Field(default=1000, ge=0)
    #: the DLQ rows of this many batches are committed together (logged locally until then,
    #: exactly-once; 1: a DLQ commit before each sink commit that has some)
    dlq_commit_every: int = Field(default=20, ge=1)
    #: ... or sooner, once they hold this many bytes
    dlq_buffer_bytes: int = Field(default=8_000_000, ge=0)

    _dataset = field_validator("dataset")(_check_name)


class EnrichSpec(_Frozen):
    """Columns looked up in a project dataset (the reference table, re-read when its
    version changes) by equal ``on`` columns: a LEFT JOIN on one row per key."""

    dataset: str
    #: column(s) present in both the stream and the reference dataset
    on: str | tuple[str, ...]
    #: the reference columns to add: names, or name → SQL type (typed: checks can use them)
    columns: tuple[str, ...] | dict[str, str] = Field(min_length=1)
    #: an event without a match: ``keep`` it (the columns are NULL; counted as
    #: ``enrich_missed``) or send it to the DLQ (reason ``enrich: no match in <dataset>``)
    missing: Literal["keep", "dlq"] = "keep"
    #: how often the reference table's version is looked at (a duration or seconds)
    refresh: str | float = "60s"

    _dataset = field_validator("dataset")(_check_name)
    _refresh = field_validator("refresh")(_duration)

    @property
    def keys(self) -> tuple[str, ...]:
        return (self.on,) if isinstance(self.on, str) else self.on

    @property
    def column_types(self) -> dict[str, str]:
        """Added column → SQL type (``VARCHAR`` when not given)."""
        if isinstance(self.columns, dict):
            return dict(self.columns)
        return dict.fromkeys(self.columns, "VARCHAR")


class EventTimeSpec(_Frozen):
    """Event time: the watermark is the newest event time published so far minus
    ``allowed_lateness``; an event older than the watermark is late and goes to the DLQ
    (reason ``late: …``) or, with ``late: <dataset>``, to that table — counted, never
    dropped. The watermark is stored in each sink commit, so it survives a crash."""

    column: str
    allowed_lateness: str | float = "0s"
    late: str = "dlq"

    _lateness = field_validator("allowed_lateness")(_duration)

    @field_validator("late")
    @classmethod
    def _late(cls, value: str) -> str:
        return value if value == "dlq" else _check_name(value)

    @property
    def lateness(self) -> timedelta:
        return parse_duration(self.allowed_lateness)


#: ``count`` or ``fn(column)`` with fn one of these (Arrow group-by aggregations)
AGG_FUNCTIONS = {
    "sum": "sum",
    "min": "min",
    "max": "max",
    "avg": "mean",
    "count": "count",
    "count_distinct": "count_distinct",
}
_MEASURE = re.compile(r"^\s*(\w+)\s*\(\s*(\w+)\s*\)\s*$")


def parse_measure(text: str) -> tuple[str, str | None]:
    """``"sum(amount)"`` → ``("sum", "amount")``; ``"count"`` → ``("count", None)``.

    >>> parse_measure("avg( amount )"), parse_measure("count")
    (('avg', 'amount'), ('count', None))
    """
    if text.strip().lower() in ("count", "count(*)"):
        return "count", None
    m = _MEASURE.match(text)
    if m is None or m.group(1).lower() not in AGG_FUNCTIONS:
        known = ", ".join(f"{f}(column)" for f in AGG_FUNCTIONS)
        raise ValueError(f"measure {text!r}: expected count or one of {known}")
    return m.group(1).lower(), m.group(2)


class AggregateSpec(_Frozen):
    """Event-time window aggregates of the published events into another dataset.

    Windows are ``size`` long and start every ``slide`` (tumbling when ``slide`` is not
    given; hopping when it is smaller, ``size`` a multiple of it), aligned on the epoch. A
    window is written once, when the stream's watermark passes its end (events after that
    are late: to the DLQ or the late table, counted). Each commit carries the end of the
    newest closed window as its position: after a crash the missing windows are computed
    again from the sink, never twice."""

    dataset: str
    size: str | float
    slide: str | float | None = None
    group_by: tuple[str, ...] = ()
    #: output column → ``count`` / ``sum(col)`` / ``min`` / ``max`` / ``avg`` / ``count_distinct``
    measures: dict[str, str] = Field(min_length=1)

    _dataset = field_validator("dataset")(_check_name)
    _size = field_validator("size")(_duration)

    @field_validator("slide")
    @classmethod
    def _slide(cls, value: str | float | None) -> str | float | None:
        return None if value is None else _duration(value)

    @field_validator("measures")
    @classmethod
    def _measures(cls, value: dict[str, str]) -> dict[str, str]:
        for m in value.values():
            parse_measure(m)
        return value

    @property
    def size_us(self) -> int:
        return _micros(self.size)

    @property
    def slide_us(self) -> int:
        return self.size_us if self.slide is None else _micros(self.slide)


def _micros(value: str | float) -> int:
    return int(parse_duration(value).total_seconds() * 1_000_000)


class BatchSpec(_Frozen):
    max_events: int = Field(default=50_000, ge=1)
    #: a duration (``"1s"``) or seconds (``0.1``)
    max_latency: str | float = "1s"
    #: fetch the next batch on the I/O thread while this one is processed (the broker's
    #: network wait overlaps the work). Off, the client's decoding (hiredis replies,
    #: nats-py) does not compete with the batch for the GIL — lower processing latency on a
    #: busy host, but the fetch is then waited for (benchmarks/RESULTS.md, Streams #14).
    prefetch: bool = True

    _latency = field_validator("max_latency")(_duration)


class StreamAlertSpec(_Frozen):
    """Thresholds that alert the project's ``alerts:`` targets (events ``stream_lag`` and
    ``stream_dlq``), once when crossed and once when cleared."""

    #: consumer lag (messages behind the end of the stream) above which to alert
    lag_above: int | None = Field(default=None, ge=0)
    #: share of messages sent to the DLQ over the last ``window_batches`` batches
    dlq_ratio_above: float | None = Field(default=None, ge=0, le=1)
    window_batches: int = Field(default=10, ge=1)


class StreamSpec(_Frozen):
    """A named stream: broker source, schema, dedup, checks, masking and its sink table."""

    name: str
    description: str | None = None
    source: StreamSourceSpec
    format: Literal["json"] = "json"
    columns: dict[str, str] = Field(min_length=1)
    dedup: DedupSpec | None = None
    enrich: tuple[EnrichSpec, ...] = ()
    event_time: EventTimeSpec | None = None
    #: window aggregates into other datasets (needs ``event_time``)
    aggregates: tuple[AggregateSpec, ...] = ()
    mask: dict[str, MaskValue] = Field(default_factory=dict)
    #: environment variable holding the HMAC key of ``mask: hash`` (never the key itself)
    mask_key_env: str = "LOCKGATE_MASK_KEY"
    checks: tuple[CheckSpec, ...] = ()
    sink: SinkSpec
    batch: BatchSpec = Field(default_factory=BatchSpec)
    #: a run + step is recorded in the state store this often (and when the stream stops)
    record_every: str | float = "60s"
    #: whether ``lockgate serve`` runs this stream (restarting it after an error)
    serve: bool = True
    #: a message larger than this goes to the DLQ unparsed (reason ``too large``)
    max_message_bytes: int = Field(default=1_000_000, ge=1)
    alerts: StreamAlertSpec | None = None
    defined_in: str | None = Field(default=None, exclude=True)
    defined_line: int | None = Field(default=None, exclude=True)

    _name = field_validator("name")(_check_name)

    @model_validator(mode="after")
    def _dedup_on_masked(self) -> StreamSpec:
        """A masked dedup key is compared on its masked values (what the sink holds, so the
        window rebuilt at start matches): only a one-to-one method keeps keys apart."""
        if self.dedup is None:
            return self
        for c in self.dedup.key:
            if c in self.mask and self.mask_rule(c).method not in ("hash", "tokenize"):
                raise ValueError(
                    f"dedup key column {c!r} is masked with {self.mask_rule(c).method!r}, "
                    "which maps different values to the same one (distinct events would be "
                    "dropped as duplicates): mask it with hash or tokenize, or dedup on "
                    "another column"
                )
        return self

    @property
    def all_columns(self) -> dict[str, str]:
        """Declared columns plus the enriched ones (name → SQL type)."""
        out = dict(self.columns)
        for e in self.enrich:
            out.update(e.column_types)
        return out

    def mask_rule(self, column: str) -> MaskRule:
        return rule_of(self.mask[column])
