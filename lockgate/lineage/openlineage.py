"""OpenLineage run events for every step, as a run-event listener.

Each step is an OpenLineage job ``<project>.<dataset>`` (namespace ``lockgate.<project>`` or
``openlineage.namespace``) whose run is a child of the lockgate run (job ``<project>``,
``parent`` facet). A step emits START when it starts and, when it ends, COMPLETE (published
or nothing to do), FAIL (failed, or the quality gate blocked it: ``errorMessage`` says why) or
ABORT (skipped because an upstream step failed). Datasets are Delta tables named by their
folder (namespace ``file``), so the events of one project join into one graph.

Facets of the final event: on the output ``schema``, ``columnLineage`` (from
:mod:`lockgate.lineage`), ``dataQualityAssertions`` (each check: name, type, column,
success), ``dataQualityMetrics`` (row count; null counts where a ``not_null`` check counted
them) and ``outputStatistics`` (rows, bytes of the commit); on inputs their pinned
``version``; on the run the ``lockgate`` facet (run id, batch id, pinned inputs) and
``parent``; on the job ``jobType`` and, for SQL transforms, ``sql``.

Events go through ``openlineage-python``'s client and transports (file: one JSON line per
event, http, console). A transport error is logged and the run goes on.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import attr
from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import (
    DatasetFacet,
    JobFacet,
    RunFacet,
    column_lineage_dataset,
    data_quality_assertions_dataset,
    data_quality_metrics_dataset,
    dataset_version_dataset,
    error_message_run,
    job_type_job,
    output_statistics_output_dataset,
    parent_run,
    schema_dataset,
    sql_job,
)
from openlineage.client.transport import Transport
from openlineage.client.transport.console import ConsoleConfig, ConsoleTransport
from openlineage.client.transport.file import FileConfig, FileTransport
from openlineage.client.transport.http import (
    ApiKeyTokenProvider,
    HttpConfig,
    HttpTransport,
    TokenProvider,
)

from lockgate.lineage.build import build_lineage
from lockgate.lineage.model import LineageGraph
from lockgate.lineage.warehouse import published_columns
from lockgate.project import Project
from lockgate.project.models import (
    OpenLineageConfig,
    OpenLineageConsole,
    OpenLineageFile,
    OpenLineageHttp,
)
from lockgate.redact import redact
from lockgate.runloop.events import RunEvent as LockgateEvent
from lockgate.runloop.events import RunStarted, StepFinished, StepStarted
from lockgate.runloop.results import StepResult

log = logging.getLogger(__name__)

PRODUCER = "https://github.com/lockgate/lockgate"
#: a step's status → the OpenLineage state of its final event
FINAL_STATE = {
    "success": RunState.COMPLETE,
    "noop": RunState.COMPLETE,
    "blocked": RunState.FAIL,
    "failed": RunState.FAIL,
    "upstream_failed": RunState.ABORT,
}


@attr.define
class LockgateRunFacet(RunFacet):
    """lockgate's own run facet: which lockgate run and batch, at which pinned inputs."""

    runId: str
    batchId: str | None = None
    status: str | None = None
    inputs: dict[str, Any] = attr.field(factory=dict)

    @staticmethod
    def _get_schema() -> str:
        return "https://lockgate.dev/spec/facets/1-0-0/LockgateRunFacet.json"


def make_transport(config: OpenLineageConfig, root: Path) -> Transport:
    """The openlineage-python transport ``config`` describes."""
    t = config.transport
    if isinstance(t, OpenLineageFile):
        path = Path(t.path) if Path(t.path).is_absolute() else root / t.path
        path.parent.mkdir(parents=True, exist_ok=True)
        return FileTransport(FileConfig(log_file_path=str(path), append=True))
    if isinstance(t, OpenLineageHttp):
        auth: TokenProvider = TokenProvider({})
        if t.api_key_env:
            auth = ApiKeyTokenProvider({"apiKey": os.environ.get(t.api_key_env, "")})
        retry = {"total": 2, "backoff_factor": 0.1, "status_forcelist": [500, 502, 503, 504]}
        cfg = HttpConfig(url=t.url, endpoint=t.endpoint, timeout=t.timeout, auth=auth, retry=retry)
        return HttpTransport(cfg)
    assert isinstance(t, OpenLineageConsole)
    return ConsoleTransport(ConsoleConfig())


class OpenLineageListener:
    """Turns lockgate run events into OpenLineage run events (a run-event listener)."""

    SKIPPED: ClassVar[frozenset[str]] = frozenset({"planned"})

    def __init__(
        self, project: Project, transport: Transport, namespace: str | None = None
    ) -> None:
        self.project = project
        self.namespace = namespace or f"lockgate.{project.name}"
        self.client = OpenLineageClient(transport=transport)
        self.graph: LineageGraph | None = None
        self.emitted = 0
        self.errors = 0

    def __call__(self, event: LockgateEvent) -> None:
        if isinstance(event, RunStarted):
            self.graph = build_lineage(self.project, published=published_columns(self.project))
        elif isinstance(event, StepStarted):
            self._emit(self._start(event))
        elif (
            isinstance(event, StepFinished)
            and isinstance(event.result, StepResult)
            and event.status not in self.SKIPPED
        ):
            self._emit(self._final(event, event.result))

    def _emit(self, event: RunEvent) -> None:
        try:
            self.client.emit(event)
            self.emitted += 1
        except Exception as e:  # a receiver down must not stop the run, nor the next events
            self.errors += 1
            log.warning("OpenLineage event not sent: %s", redact(str(e)))

    # ---- events --------------------------------------------------------------------------

    def _job(self, dataset: str) -> Job:
        facets: dict[str, JobFacet] = {
            "jobType": job_type_job.JobTypeJobFacet(
                processingType="BATCH", integration="LOCKGATE", jobType="DATASET"
            )
        }
        spec = self.project.dataset(dataset)
        if spec.kind == "sql":
            facets["sql"] = sql_job.SQLJobFacet(
                query=self.project.sql_text(dataset), dialect="duckdb"
            )
        return Job(namespace=self.namespace, name=f"{self.project.name}.{dataset}", facets=facets)

    def _run(self, run_id: str, dataset: str, facets: dict[str, RunFacet] | None = None) -> Run:
        parent = parent_run.ParentRunFacet(
            run=parent_run.Run(runId=str(uuid.UUID(hex=run_id))),
            job=parent_run.Job(namespace=self.namespace, name=self.project.name),
        )
        return Run(runId=step_run_id(run_id, dataset), facets={"parent": parent, **(facets or {})})

    def _start(self, e: StepStarted) -> RunEvent:
        return RunEvent(
            eventType=RunState.START,
            eventTime=_time(e.at),
            run=self._run(e.run_id, e.dataset),
            job=self._job(e.dataset),
            inputs=[InputDataset(namespace="file", name=n) for n in self._input_names(e.dataset)],
            outputs=[OutputDataset(namespace="file", name=self._table(e.dataset))],
            producer=PRODUCER,
        )

    def _final(self, e: StepFinished, r: StepResult) -> RunEvent:
        facets: dict[str, RunFacet] = {
            "lockgate": LockgateRunFacet(
                runId=e.run_id, batchId=r.batch_id, status=e.status, inputs=_jsonable(r.inputs)
            )
        }
        if e.status in ("failed", "blocked"):
            facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
                message=redact(r.error or r.reason or e.status), programmingLanguage="PYTHON"
            )
        return RunEvent(
            eventType=FINAL_STATE.get(e.status, RunState.OTHER),
            eventTime=_time(e.at),
            run=self._run(e.run_id, e.dataset, facets),
            job=self._job(e.dataset),
            inputs=self._inputs(r),
            outputs=[self._output(r)],
            producer=PRODUCER,
        )

    # ---- datasets ------------------------------------------------------------------------

    def _table(self, dataset: str) -> str:
        return str(self.project.warehouse_path.resolve() / dataset)

    def _input_names(self, dataset: str) -> list[str]:
        spec = self.project.dataset(dataset)
        if spec.source is not None:
            return [str(self.project.root.resolve() / getattr(spec.source, "path", dataset))]
        return [self._table(u) for u in self.project.deps.get(dataset, ())]

    def _inputs(self, r: StepResult) -> list[InputDataset]:
        out: list[InputDataset] = []
        for name in self._input_names(r.dataset):
            version = r.inputs.get(Path(name).name)
            facets: dict[str, DatasetFacet] = {}
            if isinstance(version, int):
                facets["version"] = dataset_version_dataset.DatasetVersionDatasetFacet(
                    datasetVersion=str(version)
                )
            out.append(InputDataset(namespace="file", name=name, facets=facets))
        return out

    def _output(self, r: StepResult) -> OutputDataset:
        facets: dict[str, Any] = {}
        columns = dict(r.columns) or {c: "" for c in self._columns(r.dataset)}
        if columns:
            facets["schema"] = schema_dataset.SchemaDatasetFacet(
                fields=[
                    schema_dataset.SchemaDatasetFacetFields(name=c, type=t or None)
                    for c, t in columns.items()
                ]
            )
        lineage = self._column_lineage(r.dataset)
        if lineage is not None:
            facets["columnLineage"] = lineage
        if r.checks:
            facets["dataQualityAssertions"] = self._assertions(r)
        if r.status in ("success", "blocked"):
            facets["dataQualityMetrics"] = self._metrics(r)
        if r.output_version is not None:
            facets["version"] = dataset_version_dataset.DatasetVersionDatasetFacet(
                datasetVersion=str(r.output_version)
            )
        output_facets: dict[str, Any] = {}
        if r.status == "success":
            output_facets["outputStatistics"] = (
                output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
                    rowCount=r.rows_out, size=self._commit_bytes(r)
                )
            )
        return OutputDataset(
            namespace="file",
            name=self._table(r.dataset),
            facets=facets,
            outputFacets=output_facets,
        )

    def _columns(self, dataset: str) -> tuple[str, ...]:
        info = self.graph.datasets.get(dataset) if self.graph is not None else None
        return info.columns if info is not None else ()

    def _column_lineage(
        self, dataset: str
    ) -> column_lineage_dataset.ColumnLineageDatasetFacet | None:
        if self.graph is None:
            self.graph = build_lineage(self.project)
        fields: dict[str, list[column_lineage_dataset.InputField]] = {}
        for column in self._columns(dataset):
            ref = self.graph.column(dataset, column)
            for edge in self.graph.upstream_edges(ref):
                fields.setdefault(column, []).append(
                    column_lineage_dataset.InputField(
                        namespace="file",
                        name=self._table(edge.source.dataset),
                        field=edge.source.column,
                        transformations=[
                            column_lineage_dataset.Transformation(
                                type=edge.kind.value,
                                subtype=edge.subtype.value,
                                description=edge.transformation,
                                masking=False,
                            )
                        ],
                    )
                )
        if not fields:
            return None
        return column_lineage_dataset.ColumnLineageDatasetFacet(
            fields={
                c: column_lineage_dataset.Fields(inputFields=inputs) for c, inputs in fields.items()
            }
        )

    def _assertions(
        self, r: StepResult
    ) -> data_quality_assertions_dataset.DataQualityAssertionsDatasetFacet:
        specs = {c.check_name: c for c in self.project.dataset(r.dataset).checks}
        assertions = []
        for c in r.checks:
            name = str(c.get("name"))
            spec = specs.get(name)
            cols = spec.referenced_columns() if spec is not None else []
            assertions.append(
                data_quality_assertions_dataset.Assertion(
                    assertion=str(c.get("type") or name),
                    success=bool(c.get("passed", True)),
                    column=cols[0] if len(cols) == 1 else None,
                    severity=str(c.get("severity")) if c.get("severity") else None,
                    name=name,
                    actual=None if c.get("failing_rows") is None else str(c.get("failing_rows")),
                )
            )
        return data_quality_assertions_dataset.DataQualityAssertionsDatasetFacet(
            assertions=assertions
        )

    def _metrics(
        self, r: StepResult
    ) -> data_quality_metrics_dataset.DataQualityMetricsDatasetFacet:
        specs = {c.check_name: c for c in self.project.dataset(r.dataset).checks}
        columns: dict[str, data_quality_metrics_dataset.ColumnMetrics] = {}
        for c in r.checks:
            spec = specs.get(str(c.get("name")))
            failing = c.get("failing_rows")
            if (
                spec is not None
                and getattr(spec, "type", "") == "not_null"
                and isinstance(failing, int)
            ):
                column = str(getattr(spec, "column", ""))
                columns[column] = data_quality_metrics_dataset.ColumnMetrics(nullCount=int(failing))
        return data_quality_metrics_dataset.DataQualityMetricsDatasetFacet(
            columnMetrics=columns, rowCount=r.rows_in
        )

    def _commit_bytes(self, r: StepResult) -> int | None:
        """Bytes of the data files the step's commit added (its Delta log entry)."""
        if r.output_version is None:
            return None
        entry = Path(self._table(r.dataset)) / "_delta_log" / f"{r.output_version:020d}.json"
        try:
            lines = entry.read_text(encoding="utf-8").splitlines()
        except OSError:
            return None
        sizes = (json.loads(line).get("add", {}).get("size", 0) for line in lines if line)
        return sum(int(s) for s in sizes)


def step_run_id(run_id: str, dataset: str) -> str:
    """The OpenLineage run id of a step: stable for (lockgate run, dataset)."""
    return str(uuid.uuid5(uuid.UUID(hex=run_id), dataset))


def _time(at: datetime) -> str:
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).isoformat()


def _jsonable(value: Mapping[str, Any]) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(json.dumps(dict(value), default=str))
    return loaded
