"""resolve: pin the step's inputs and decide whether there is anything to do.

The warehouse is checked first (:func:`~lockgate.runloop.trust.verify_published`), then the
table is read once (its version, schema and newest lockgate commit), the inputs are pinned
(upstream versions, or the source's fingerprint) and the batch gets its identity: the same
definition over the same inputs is the same batch, already published — the step is a no-op."""

from __future__ import annotations

import hashlib
import inspect
import json

from lockgate.project.models import DatasetSpec
from lockgate.runloop import incremental
from lockgate.runloop.context import StepContext, StepState
from lockgate.runloop.ports import ProjectView
from lockgate.runloop.results import StepStatus
from lockgate.runloop.trust import verify_published
from lockgate.sources import Source, source_for
from lockgate.storage.delta import CommitInfo


def resolve(ctx: StepContext, state: StepState) -> None:
    spec = state.spec
    ctx.drop_work(state.stage, state.stage + "__rejects")  # an earlier attempt's
    ctx.report(spec.name, "resolving inputs")
    verify_published(ctx, spec.name)  # state and warehouse agree (or: fail this dataset)
    state.table = table = ctx.store.snapshot(spec.name)
    inputs = resolve_inputs(ctx, spec)
    if spec.kind != "source":
        state.upstream = {k: v if isinstance(v, int) else None for k, v in inputs.items()}
    last = table.last_commit if table is not None else None
    state.watermark = watermark_of(ctx, spec, last)
    if spec.incremental is not None:
        state.lowest = incremental.min_cursor(spec.incremental, state.watermark)
    state.definition = definition_hash(ctx, spec)
    res = state.result
    res.batch_id = batch_id_for(state.definition, inputs)
    res.inputs = {**inputs, "definition": state.definition}
    if spec.partition is not None:
        return  # what is due decides (stages.partitions.due), not the inputs alone
    if not ctx.full_refresh and last is not None and last.batch_id == res.batch_id:
        res.output_version = last.version
        if spec.kind == "source":  # carried: the next step resumes from the same point
            res.inputs["resume"] = last_inputs(ctx, state).get("resume")
        state.end(StepStatus.NOOP, f"inputs unchanged since version {last.version}")


def definition_hash(ctx: StepContext, spec: DatasetSpec) -> str:
    """Changes when anything that shapes the output changes (config, SQL, Python code)."""
    # fields added later are left out while unset: existing definitions keep their hash
    unset: dict[str, bool | set[str]] = {
        f: True for f in ("partition", "sensors") if not getattr(spec, f)
    }
    if spec.partition is not None:
        unset["partition"] = {"on_change"}  # a policy, not part of the output
    config = spec.model_dump_json(exclude=unset).encode()
    return hashlib.sha256(config + _code(ctx.project, spec)).hexdigest()[:16]


#: settings that do not change what a published interval holds: editing them makes no
#: interval due again (``partition.on_change``)
_NOT_CONTENT: dict[str, bool | set[str]] = {
    "description": True,
    "owner": True,
    "tags": True,
    "pii": True,
    "freshness_sla": True,
    "freshness": True,
    "timeout": True,
    "retry": True,
    "sensors": True,
    "partition": {"start", "lag", "on_change"},
}


def content_hash(project: ProjectView, spec: DatasetSpec) -> str:
    """The definition as far as it shapes an interval's rows: its source or SQL/Python,
    columns, effective write and gate, checks, partition column and grain (not its
    description, owner, SLA, retries or partition window). Done intervals are recorded
    under it."""
    name = spec.name
    eff = {"write": project.effective_write(name), "gate": project.effective_gate(name)}
    dump = spec.model_copy(update=eff).model_dump_json(exclude=_NOT_CONTENT)
    return hashlib.sha256(b"content\0" + dump.encode() + _code(project, spec)).hexdigest()[:16]


def _code(project: ProjectView, spec: DatasetSpec) -> bytes:
    """The SQL text or the Python transform's source (what the YAML does not hold)."""
    if spec.kind == "sql":
        return project.sql_text(spec.name).encode()
    if spec.kind == "python":
        tf = project.python_transform(spec.name)
        try:
            return inspect.getsource(tf.func).encode()
        except (OSError, TypeError):
            return tf.name.encode()
    return b""


def definition_body(ctx: StepContext, spec: DatasetSpec) -> dict[str, object]:
    """What :func:`definition_hash` hashes, as a JSON value (kept for ``lockgate replay``)."""
    body: dict[str, object] = {"spec": spec.model_dump(mode="json"), "kind": spec.kind}
    if spec.kind == "sql":
        body["sql"] = ctx.project.sql_text(spec.name)
    elif spec.kind == "python":
        tf = ctx.project.python_transform(spec.name)
        try:
            body["python"] = inspect.getsource(tf.func)
        except (OSError, TypeError):
            body["python"] = None
    return body


def resolve_inputs(ctx: StepContext, spec: DatasetSpec) -> dict[str, object]:
    """Pinned inputs: upstream Delta versions, or the source files' fingerprint."""
    if spec.kind == "source":
        planned = ctx.planned_sources.pop(spec.name, None)
        if planned is not None:
            return {"source": planned}
        source = open_source(ctx, spec)
        fp = source.fingerprint() if source.SUPPORTS_FINGERPRINT else None
        if fp is None:  # no cheap "unchanged" (for this config): every run reads it
            return {"source": {"type": source.TYPE, "run": ctx.run_id}}
        return {"source": fp}
    return {up: ctx.store.version(up) for up in ctx.project.deps.get(spec.name, ())}


def open_source(ctx: StepContext, spec: DatasetSpec) -> Source:
    """The source adapter of source dataset ``spec``."""
    return source_for(ctx.project.source_request(spec))


def last_inputs(ctx: StepContext, state: StepState) -> dict[str, object]:
    """Pinned inputs of the last successful step of this (unchanged) definition, or {}."""
    steps = ctx.state.dataset_steps(
        ctx.project.name, state.name, limit=20, project_id=ctx.project_id
    )
    for step in steps:
        if str(step.status) not in ("success", "noop"):
            continue
        inputs = step.input_versions or {}
        return dict(inputs) if inputs.get("definition") == state.definition else {}
    return {}


def batch_id_for(def_hash: str, inputs: dict[str, object]) -> str:
    """Identity of a batch: the definition and the pinned inputs. The watermark is not part
    of it — the same inputs under the same definition can yield nothing new."""
    payload = json.dumps({"def": def_hash, "inputs": inputs}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:24]


def current_watermark(ctx: StepContext, spec: DatasetSpec) -> object:
    """The published watermark of ``spec`` (reads the table; a step uses its snapshot)."""
    if spec.incremental is None or ctx.full_refresh:
        return None
    return watermark_of(ctx, spec, ctx.store.last_commit(spec.name))


def watermark_of(ctx: StepContext, spec: DatasetSpec, last: CommitInfo | None) -> object:
    """The watermark in the table's newest lockgate commit: the truth about what was
    published — ahead of the state store after a crash between commit and record, and
    *absent* after a full refresh that published nothing (an old stored one must not survive
    that). No table, no watermark: the state store's copy is not evidence of what the
    warehouse holds (another project's, or a deleted table's)."""
    if spec.incremental is None or ctx.full_refresh or last is None:
        return None
    text, _, kind = str(last.watermark or "").rpartition("|")
    return incremental.decode(text, kind) if text else None
