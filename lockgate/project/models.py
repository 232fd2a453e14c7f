"""Definitions: immutable values parsed from ``lockgate.yaml`` and dataset YAML files.

Execution takes these in and returns results; nothing here touches data.
Every model is frozen and rejects unknown keys, so a typo in YAML is an error
(with a "did you mean" hint from the loader), never silently ignored.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator, model_validator

from lockgate._duration import parse_duration as parse_duration  # re-exported
from lockgate._duration import parse_seconds
from lockgate._suggest import did_you_mean
from lockgate.features.store_config import OnlineStoreConfig, SQLiteOnlineConfig
from lockgate.masking import MaskRule, MaskValue, is_text_type, rule_of
from lockgate.project.ops_models import (
    AlertSpec,
    FreshnessSpec,
    PartitionSpec,
    RetrySpec,
    ScheduleSpec,
    SensorSpec,
)
from lockgate.quality.checks import CheckSpec
from lockgate.sources import SourceConfig, on_register, source_configs
from lockgate.sources.files import FileFormat, FileSourceSpec  # noqa: F401  (re-exported)

NAME_RE = r"^[A-Za-z_][A-Za-z0-9_]*$"
#: Longest dataset/project name. A name becomes a DuckDB view, a Delta folder (plus
#: suffixes such as ``__quarantine``) and a key in the state store; 63 is PostgreSQL's
#: identifier limit and keeps every derived file name far below the 255-byte limit.
NAME_MAX_LENGTH = 63
#: a dataset name may not end with these: the warehouse derives other tables from them
RESERVED_SUFFIXES = ("__quarantine",)
_NAME = re.compile(NAME_RE)


def name_problem(name: str, what: str = "name") -> str | None:
    """Why ``name`` cannot name a dataset or project (``None``: it can).

    >>> name_problem("orders") is None
    True
    >>> name_problem("x" * 64)
    'name is too long (64 characters; at most 63)'
    """
    if not _NAME.match(name):
        return f"invalid {what} {name!r}: use letters, digits and '_', not starting with a digit"
    if len(name) > NAME_MAX_LENGTH:
        return f"{what} is too long ({len(name)} characters; at most {NAME_MAX_LENGTH})"
    for suffix in RESERVED_SUFFIXES:
        if name.lower().endswith(suffix):
            return f"{what} {name!r} ends with '{suffix}', which is reserved for lockgate's tables"
    return None


def _check_name(value: str) -> str:
    problem = name_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


_NAME_SCHEMA: dict[str, JsonValue] = {"pattern": NAME_RE, "maxLength": NAME_MAX_LENGTH}


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class WriteMode(StrEnum):
    APPEND = "append"
    OVERWRITE = "overwrite"
    OVERWRITE_PARTITIONS = "overwrite_partitions"
    MERGE = "merge"


class SchemaPolicy(StrEnum):
    EVOLVE = "evolve"  # accept added columns and widening; record a new schema version
    FREEZE = "freeze"  # any drift fails the step, nothing published
    WARN = "warn"  # publish, keep the table schema, report drift as a warning


class GatePolicy(StrEnum):
    QUARANTINE = "quarantine"  # publish passing rows, keep failing rows with reasons
    BLOCK = "block"  # any error-severity failure: publish nothing, skip downstream
    WARN = "warn"  # publish everything, report failures


class IncrementalSpec(Frozen):
    """Process only rows whose cursor is beyond the stored watermark."""

    cursor: str = Field(description="column whose maximum is the watermark")
    lookback: str | int | float | None = Field(
        default=None,
        description=(
            "re-read this much before the watermark to catch late records: a duration "
            "('2h', '3d') for time cursors or a number for numeric cursors"
        ),
    )
    late: Literal["quarantine", "accept", "skip"] = Field(
        default="quarantine",
        description=(
            "records older than watermark - lookback that were never published: "
            "'quarantine' them (reason 'late'), 'accept' (publish) them, or 'skip' them "
            "(counted as skipped: late)"
        ),
    )


class WriteSpec(Frozen):
    mode: WriteMode = Field(default=WriteMode.APPEND, description="how a batch lands in the table")
    keys: tuple[str, ...] = Field(
        default=(), description="key columns: required for merge, used for de-duplication"
    )
    order_by: str | None = Field(
        default=None,
        description="when the batch has several rows per key, keep the one with the greatest "
        "value of this column (merge and de-duplication)",
    )
    partition_by: tuple[str, ...] = Field(default=(), description="Delta partition columns")

    @model_validator(mode="after")
    def _keys_for_merge(self) -> WriteSpec:
        if self.mode == WriteMode.MERGE and not self.keys:
            raise ValueError("write.mode 'merge' needs write.keys (the columns to upsert on)")
        if self.mode == WriteMode.OVERWRITE_PARTITIONS and not self.partition_by:
            raise ValueError("write.mode 'overwrite_partitions' needs write.partition_by")
        return self


def _source_union() -> Any:
    """``source:``: a union of every registered adapter's config, tagged by ``type``."""
    configs = tuple(source_configs())
    return Annotated[Union[configs], Field(discriminator="type")]  # noqa: UP007  (runtime tuple)


if TYPE_CHECKING:
    SourceSpec = SourceConfig
else:
    #: the ``source:`` union as of import time (:func:`_refresh_source_union` keeps it current)
    SourceSpec = _source_union()


class SqlTransformSpec(Frozen):
    sql: str | None = Field(default=None, description="SQL (DuckDB dialect) inline")
    sql_file: str | None = Field(default=None, description="path to a .sql file")

    @model_validator(mode="after")
    def _one_of(self) -> SqlTransformSpec:
        if (self.sql is None) == (self.sql_file is None):
            raise ValueError("give exactly one of 'sql' or 'sql_file'")
        return self


class PythonTransformSpec(Frozen):
    python: str = Field(
        description="name of a function decorated with @lockgate.transform in the project's "
        ".py files"
    )


TransformSpec = SqlTransformSpec | PythonTransformSpec


class DatasetSpec(Frozen):
    """A named table produced by a source or a transform, with its contract."""

    name: str = Field(
        json_schema_extra=_NAME_SCHEMA,
        description="unique in the project, ignoring case: letters, digits and '_'",
    )
    description: str | None = None
    owner: str | None = None
    tags: tuple[str, ...] = ()
    pii: tuple[str, ...] = Field(
        default=(), description="columns holding personal data (true: every column)"
    )
    mask: dict[str, MaskValue] = Field(
        default_factory=dict,
        description="columns masked in the published table (checks see the clear values): "
        "hash, redact (whole or {pattern}), partial ({keep}), tokenize (FF1, {alphabet})",
    )
    mask_key_env: str = Field(
        default="LOCKGATE_MASK_KEY",
        description="environment variable holding the key of hash/tokenize (never the key)",
    )
    source: SourceSpec | None = Field(
        default=None, description="where the data comes from; 'type' picks the adapter"
    )
    transform: TransformSpec | None = None
    columns: dict[str, str] | None = Field(
        default=None, description="declared output schema (column: SQL type); cast on staging"
    )
    write: WriteSpec = Field(default_factory=WriteSpec)
    incremental: IncrementalSpec | None = None
    schema_policy: SchemaPolicy | None = Field(default=None, description="default: project's")
    gate: GatePolicy | None = Field(default=None, description="default: project's")
    checks: tuple[CheckSpec, ...] = ()
    freshness_sla: str | None = Field(default=None, description="e.g. '24h'")
    freshness: FreshnessSpec | None = Field(
        default=None, description="SLA on the newest publish's age: {warn_after, error_after}"
    )
    timeout: str | float | None = Field(
        default=None, description="a step running longer fails, its query interrupted: '30m'"
    )
    retry: RetrySpec | None = Field(
        default=None, description="retries on transient errors (default: the project's)"
    )
    partition: PartitionSpec | None = Field(
        default=None,
        description="time-partitioned: each run processes the due intervals, checks and "
        "gates each interval, and replaces the intervals it publishes",
    )
    sensors: tuple[SensorSpec, ...] = Field(
        default=(), description="conditions the step waits for (file, table, sql), up to a deadline"
    )
    # where it was defined, filled in by the loader (not user-settable in YAML)
    defined_in: str | None = Field(default=None, exclude=True)
    defined_line: int | None = Field(default=None, exclude=True)

    _name = field_validator("name")(_check_name)

    @model_validator(mode="before")
    @classmethod
    def _pii_true(cls, data: Any) -> Any:
        """``pii: true`` = every column is personal (the ``pii`` tag); ``false`` = none."""
        if isinstance(data, dict) and isinstance(data.get("pii"), bool):
            data = dict(data)
            if data.pop("pii"):
                tags = data.get("tags") or ()
                tags = [tags] if isinstance(tags, str) else list(tags)
                data["tags"] = [*tags, "pii"]
        return data

    @field_validator("timeout")
    @classmethod
    def _timeout(cls, v: str | float | None) -> str | float | None:
        if v is not None and parse_seconds(v) <= 0:
            raise ValueError("timeout must be positive")
        return v

    @model_validator(mode="after")
    def _exactly_one_producer(self) -> DatasetSpec:
        if (self.source is None) == (self.transform is None):
            raise ValueError(f"dataset '{self.name}' needs exactly one of 'source' or 'transform'")
        if self.partition is not None and self.incremental is not None:
            raise ValueError(
                f"dataset '{self.name}': 'partition' and 'incremental' both pick the rows a run "
                "processes; use one (partition: due time intervals; incremental: a cursor)"
            )
        if self.partition is not None and self.write.mode == WriteMode.MERGE:
            raise ValueError(
                f"dataset '{self.name}': a partitioned dataset replaces each interval it "
                "publishes; write.mode 'merge' does not apply (remove it)"
            )
        self._check_mask()
        self._check_personal_metrics()
        return self

    def _check_personal_metrics(self) -> None:
        """An anomaly check keeps each batch's metric in the state store as its baseline; of a
        personal column, ``min``/``max`` is one person's value (``freshness_lag``: the newest
        one, to the second), which the store must not hold (:mod:`lockgate.pii`)."""
        tagged = any(t.lower() == "pii" for t in self.tags) and not self.pii
        personal = {c.lower() for c in (*self.pii, *self.mask)}
        for c in self.checks:
            metric, column = getattr(c, "metric", None), getattr(c, "column", None)
            if c.type != "anomaly" or metric not in ("min", "max", "freshness_lag") or not column:
                continue
            if tagged or column.lower() in personal:
                raise ValueError(
                    f"anomaly metric {metric}({column}) of a personal column would record "
                    "one person's value with every run; use mean, sum, "
                    "stddev, null_rate or distinct_count of it, or an aggregate_between check "
                    "(its value is not recorded)"
                )

    def _check_mask(self) -> None:
        if not self.mask:
            return
        where = f"dataset '{self.name}': mask"
        if self.partition is not None:
            raise ValueError(f"{where} is not supported on a time-partitioned dataset yet")
        lower = {c.lower(): rule_of(r) for c, r in self.mask.items()}
        for c in self.write.keys:
            rule = lower.get(c.lower())
            if rule is not None and not rule.deterministic:
                raise ValueError(
                    f"{where}: merge key '{c}' masked with '{rule.method}' would merge unequal "
                    "rows; use hash or tokenize (equal values stay equal)"
                )
        fixed = [*self.write.partition_by]
        if self.incremental is not None:
            fixed.append(self.incremental.cursor)
        for c in fixed:
            if c.lower() in lower:
                raise ValueError(
                    f"{where}: '{c}' picks partitions or the cursor; it can't be masked"
                )
        for c, typ in (self.columns or {}).items():
            if c.lower() in lower and not is_text_type(typ):
                raise ValueError(
                    f"{where}: '{c}' is {typ}; masked values are text — declare it VARCHAR"
                )

    def mask_rules(self) -> dict[str, MaskRule]:
        return {c: rule_of(r) for c, r in self.mask.items()}

    @property
    def kind(self) -> Literal["source", "sql", "python"]:
        if self.source is not None:
            return "source"
        return "sql" if isinstance(self.transform, SqlTransformSpec) else "python"


def _refresh_source_union() -> None:
    """A source registered after import (an adapter outside the package) joins the union."""
    DatasetSpec.model_fields["source"].annotation = _source_union() | None
    DatasetSpec.model_rebuild(force=True)


on_register(_refresh_source_union)


class ConnectionSpec(BaseModel):
    """A named connection: ``type`` plus the adapter's fields (``url``, ``host``, ``user``,
    ``password``…). A value may reference secrets — ``${ENV_VAR}`` anywhere in it, or the
    whole value ``file:/path`` — resolved only when a source connects."""

    model_config = ConfigDict(frozen=True, extra="allow")

    type: str = Field(description="the kind of system, e.g. postgres")

    @model_validator(mode="after")
    def _scalar_fields(self) -> ConnectionSpec:
        for key, value in (self.model_extra or {}).items():
            if not isinstance(value, str | int | float | bool):
                raise ValueError(f"field '{key}' must be a string, a number or true/false")
        return self

    def fields(self) -> dict[str, str | int | float | bool]:
        """The fields other than ``type``, unresolved."""
        return dict(self.model_extra or {})


def _engine_names(schema: dict[str, JsonValue]) -> None:
    """The JSON Schema of ``engine:`` lists the engines registered when it is generated."""
    from lockgate.engine.base import registered_engines

    schema["enum"] = list(registered_engines())


def _registered_engine(v: str | None) -> str | None:
    from lockgate.engine.base import registered_engines

    known = registered_engines()
    if v is not None and v not in known:
        hint = did_you_mean(v, known) or "registered engines: " + ", ".join(known)
        raise ValueError(f"unknown engine {v!r}; {hint}")
    return v


class TargetSpec(Frozen):
    """An environment (``--target NAME``): what it overrides in ``lockgate.yaml``."""

    warehouse: str | None = Field(default=None, description="folder of Delta tables")
    state: str | None = Field(default=None, description="state store SQLAlchemy URL")
    engine: str | None = Field(default=None, json_schema_extra=_engine_names)
    connections: dict[str, ConnectionSpec] = Field(
        default_factory=dict, description="connections replaced (or added) in this target"
    )
    memory_limit: str | None = None
    threads: int | None = Field(default=None, ge=1)
    online_store: OnlineStoreConfig | None = Field(
        default=None, description="the feature online store of this target"
    )

    _engine = field_validator("engine")(_registered_engine)


class Defaults(Frozen):
    write_mode: WriteMode = WriteMode.APPEND
    schema_policy: SchemaPolicy = SchemaPolicy.EVOLVE
    gate: GatePolicy = GatePolicy.QUARANTINE
    retries: int = Field(default=2, ge=0, description="retries of a step on transient errors")
    retry_backoff_seconds: float = Field(default=1.0, ge=0)


class OpenLineageFile(Frozen):
    """Append each event as one JSON line (NDJSON) to a file."""

    type: Literal["file"] = "file"
    path: str = Field(
        default=".lockgate/openlineage.ndjson", description="relative to the project folder"
    )


class OpenLineageHttp(Frozen):
    """POST each event to an OpenLineage HTTP endpoint (Marquez or any receiver)."""

    type: Literal["http"] = "http"
    url: str = Field(description="base URL, e.g. http://localhost:5000")
    endpoint: str = Field(default="api/v1/lineage", description="path under the URL")
    timeout: float = Field(default=5.0, gt=0, description="seconds per request")
    api_key_env: str | None = Field(
        default=None, description="name of the environment variable holding a bearer token"
    )


class OpenLineageConsole(Frozen):
    """Log each event (logger ``openlineage.client.transport.console``)."""

    type: Literal["console"] = "console"


class OpenLineageConfig(Frozen):
    """``openlineage:`` in ``lockgate.yaml``: emit OpenLineage run events for every step."""

    transport: Annotated[
        OpenLineageFile | OpenLineageHttp | OpenLineageConsole, Field(discriminator="type")
    ] = Field(default_factory=OpenLineageFile)
    namespace: str | None = Field(
        default=None, description="job namespace (default: lockgate.<project name>)"
    )


class RetentionSpec(Frozen):
    """How long the state store keeps run history."""

    days: int = Field(
        ge=1,
        description="runs (with their steps, attempts, check results and scores) that started "
        "more than this many days ago are deleted; daily score and check aggregates stay, and "
        "each dataset's newest published step is always kept (its resume token)",
    )


class ProjectConfig(Frozen):
    """``lockgate.yaml``."""

    name: str = Field(json_schema_extra=_NAME_SCHEMA)
    warehouse: str = Field(default="warehouse", description="folder of Delta tables")
    store: str = Field(
        default="delta",
        description="table store adapter holding the warehouse's tables (a kind registered "
        "with lockgate.storage.register_store)",
    )
    state: str = Field(
        default="sqlite:///.lockgate/state.db",
        description="state store SQLAlchemy URL: sqlite:///path (relative to the project) or "
        "postgresql://user@host/db",
    )
    engine: str = Field(
        default="duckdb",
        description="SQL engine adapter (registered with lockgate.engine.register_engine)",
        json_schema_extra=_engine_names,
    )
    datasets_dir: str = Field(default="datasets", description="folder of dataset YAML/SQL/.py")
    defaults: Defaults = Field(default_factory=Defaults)
    memory_limit: str | None = Field(default=None, description="DuckDB memory limit, e.g. '4GB'")
    threads: int | None = Field(default=None, ge=1)
    connections: dict[str, ConnectionSpec] = Field(
        default_factory=dict,
        description="named connections that sources use with 'connection: NAME'",
    )
    targets: dict[str, TargetSpec] = Field(
        default_factory=dict,
        description="environments (dev, prod…) selected with --target NAME or LOCKGATE_TARGET",
    )
    default_target: str | None = Field(
        default=None, description="the target used when none is selected"
    )
    schedules: tuple[ScheduleSpec, ...] = Field(
        default=(), description="cron schedules `lockgate serve` runs"
    )
    alerts: tuple[AlertSpec, ...] = Field(
        default=(), description="where alerts go (webhook, Slack, email)"
    )
    openlineage: OpenLineageConfig | None = Field(
        default=None, description="emit OpenLineage events (file, http or console transport)"
    )
    online_store: OnlineStoreConfig = Field(
        default_factory=SQLiteOnlineConfig,
        description="where `lockgate features materialize` writes feature vectors (sqlite, redis)",
    )
    retention: RetentionSpec | None = Field(
        default=None,
        description="prune run history older than this (`lockgate prune`; `lockgate serve` "
        "daily); daily aggregates are kept",
    )

    _name = field_validator("name")(_check_name)

    def with_target(self, name: str) -> ProjectConfig:
        """This config with target ``name``'s overrides applied (``KeyError`` if unknown)."""
        target = self.targets[name]
        update: dict[str, Any] = {
            k: v
            for k in ("warehouse", "state", "engine", "memory_limit", "threads", "online_store")
            if (v := getattr(target, k)) is not None
        }
        update["connections"] = {**self.connections, **target.connections}
        return self.model_copy(update=update)

    _engine = field_validator("engine")(_registered_engine)

    @field_validator("schedules", "alerts")
    @classmethod
    def _unique_names(cls, v: tuple[ScheduleSpec | AlertSpec, ...]) -> tuple[Any, ...]:
        seen = [s.name for s in v]
        dup = sorted({n for n in seen if seen.count(n) > 1})
        if dup:
            raise ValueError(f"names must be unique; repeated: {', '.join(dup)}")
        return v

    @field_validator("warehouse", "datasets_dir")
    @classmethod
    def _not_empty(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be empty")
        return v
