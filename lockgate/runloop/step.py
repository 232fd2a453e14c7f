"""One step of the run loop: materialise one dataset.

resolve inputs (pinned) → stage → contract → audit → gate → publish → (record: runner)
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import duckdb
import pyarrow as pa
from sqlglot import exp

from lockgate._suggest import did_you_mean
from lockgate.engine.session import Session, ident, table_ref
from lockgate.engine.transforms import stage_python, stage_sql
from lockgate.errors import GateBlocked, TerminalError
from lockgate.project.models import DatasetSpec, PythonTransformSpec, WriteMode, WriteSpec
from lockgate.runloop import incremental, merge_keys
from lockgate.runloop.contract import apply_contract
from lockgate.runloop.results import AccountingError, StepResult, StepStatus
from lockgate.runloop.trust import verify_published
from lockgate.storage.scan import native_scan

log = logging.getLogger(__name__)

BATCH_ROWS = 122_880  # DuckDB → Arrow batch size (DuckDB's row-group size)
Reporter = Callable[[str, str], None]  # (dataset, phase)


@dataclass
class StepContext:
    """What every step of one run shares."""

    project: Any  # lockgate.project.Project
    session: Session
    store: Any  # lockgate.storage.DeltaStore
    state: Any  # lockgate.state.StateStore
    run_id: str
    run_seq: int
    full_refresh: bool = False
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    report: Reporter = lambda dataset, phase: None
    lease: Any = None  # lock lease: aborts before publishing if lost
    project_id: str | None = None  # the warehouse's identity (runloop.identity)


def stage_name(dataset: str) -> str:
    return f"__lg_stage_{dataset}"


# --------------------------------------------------------------------------------------------
# resolve


def definition_hash(ctx: StepContext, spec: DatasetSpec) -> str:
    """Changes when anything that shapes the output changes (config, SQL, Python code)."""
    h = hashlib.sha256(spec.model_dump_json().encode())
    if spec.kind == "sql":
        h.update(ctx.project.sql_text(spec.name).encode())
    elif spec.kind == "python":
        tf = ctx.project.python_transform(spec.name)
        try:
            h.update(inspect.getsource(tf.func).encode())
        except (OSError, TypeError):
            h.update(tf.name.encode())
    return h.hexdigest()[:16]


def resolve_inputs(ctx: StepContext, spec: DatasetSpec) -> dict[str, Any]:
    """Pinned inputs: upstream Delta versions, or the source files' fingerprint."""
    if spec.kind == "source":
        from lockgate.sources import fingerprint

        return {"source": fingerprint(spec, ctx.project.root)}
    return {up: ctx.store.version(up) for up in ctx.project.deps.get(spec.name, ())}


def batch_id_for(def_hash: str, inputs: dict[str, Any]) -> str:
    """Identity of a batch: the definition and the pinned inputs. The watermark is not part
    of it — the same inputs under the same definition can yield nothing new."""
    payload = json.dumps({"def": def_hash, "inputs": inputs}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:24]


def current_watermark(ctx: StepContext, spec: DatasetSpec) -> Any:
    """The stored watermark; rebuilt from the table's commit metadata when newer there
    (a crash between publish and record)."""
    if spec.incremental is None or ctx.full_refresh:
        return None
    # the table's newest lockgate commit is the truth about what was published: it is ahead
    # of the state store after a crash between commit and record, and it has *no* watermark
    # after a full refresh that published nothing (the old stored one must not survive that)
    # (no table, no watermark: the state store's copy is not evidence of what the warehouse
    # holds — another project's, or a deleted table's)
    last = ctx.store.last_commit(spec.name)
    if last is not None:
        text, _, kind = str(last.watermark or "").rpartition("|")
        return incremental.decode(text, kind) if text else None
    return None


# --------------------------------------------------------------------------------------------
# the step


def run_step(ctx: StepContext, spec: DatasetSpec) -> StepResult:
    """Materialise ``spec``; raises LockgateError subclasses on failure (runner retries)."""
    t0 = time.perf_counter()
    name = spec.name
    # the project's default write mode applies where the dataset does not set one
    spec = spec.model_copy(update={"write": ctx.project.effective_write(name)})
    ses = ctx.session
    stage = stage_name(name)
    ses.drop(stage, stage + "__rejects")

    ctx.report(name, "resolving inputs")
    verify_published(ctx, name)  # state and warehouse agree (or: fail this dataset)
    inputs = resolve_inputs(ctx, spec)
    watermark = current_watermark(ctx, spec)
    lowest = incremental.min_cursor(spec.incremental, watermark) if spec.incremental else None
    def_hash = definition_hash(ctx, spec)
    batch_id = batch_id_for(def_hash, inputs)
    res = StepResult(
        dataset=name,
        status=StepStatus.SUCCESS,
        batch_id=batch_id,
        inputs={**inputs, "definition": def_hash},
    )

    last = ctx.store.last_commit(name)
    if not ctx.full_refresh and last is not None and last.batch_id == batch_id:
        res.status = StepStatus.NOOP
        res.reason = f"inputs unchanged since version {last.version}"
        res.output_version = last.version
        res.duration_s = time.perf_counter() - t0
        return res

    # -- stage ----------------------------------------------------------------------------------
    ctx.report(name, "staging")
    rejects = _stage(ctx, spec, stage, inputs, lowest, def_hash)
    res.rows_in = ses.count(stage) + rejects
    rereads = _settle_rereads(ctx, spec, stage, watermark, lowest, res)
    rejects -= rereads.known_rejects
    staged_rows = ses.count(stage)
    if (
        staged_rows == 0
        and rejects == 0
        and rereads.late == 0
        and spec.incremental is not None
        and ctx.store.exists(name)
        and not ctx.full_refresh
    ):
        # nothing new (files already published, rows read again already there): before
        # looking at columns — an input with no files to read stages no real schema
        res.reason = "no new rows beyond the watermark"
        res.output_version = ctx.store.version(name)
        res.duration_s = time.perf_counter() - t0
        res.check_accounting(0)
        ses.drop(stage, stage + "__rejects")
        return res
    staged_cols = ses.columns(stage)
    checks = list(spec.checks) + merge_keys.implicit_checks(spec)
    references = _register_references(ctx, checks)
    _validate_checks(ctx, spec, checks, staged_cols, references)

    # -- contract -------------------------------------------------------------------------------
    ctx.report(name, "checking schema contract")
    previous = _published_columns(ctx, name)
    contract = apply_contract(
        name,
        staged_cols,
        declared=spec.columns,
        previous=previous,
        policy=ctx.project.effective_schema_policy(name),
        mode=spec.write.mode,
        full_refresh=ctx.full_refresh,
    )
    res.warnings.extend(contract.warnings)
    if contract.drift:
        res.drift = contract.drift.to_dict()

    # -- audit + gate ---------------------------------------------------------------------------
    ctx.report(name, f"auditing {staged_rows:,} rows")
    from lockgate.quality import audit, gate

    result = audit(
        ses,
        stage,
        checks,
        references=references,
        mark=True,
        now=ctx.now,
        key_columns=spec.write.keys,
        dataset=name,
    )
    decision = gate(result, ctx.project.effective_gate(name))
    res.checks = [_check_dict(c) for c in result.results]
    from lockgate.quality.scores import compute_scores

    res.scores = compute_scores(result.results, total_rows=result.total_rows)
    if decision.action == "block":
        blocked = GateBlocked(
            f"quality gate blocked dataset '{name}': {decision.reason}",
            hint=f"see `lockgate show {name}` for the failing checks; nothing was published",
        )
        blocked.step_result = res  # type: ignore[attr-defined]
        raise blocked

    # -- publish --------------------------------------------------------------------------------
    _abort_if_lease_lost(ctx)
    marked = result.marked_table or stage
    quarantine_split = decision.action == "publish_passing"
    split: Any = decision  # which failed checks send a row to quarantine
    if decision.action == "publish_all":
        # even when the gate publishes everything (warn), a row with a NULL merge key cannot
        # be upserted — it would be inserted again on every re-read — so it is quarantined
        key_checks = merge_keys.key_checks(spec)
        null_keys = [
            c.bit
            for c in result.results
            if c.name in key_checks and c.failing_rows and c.bit is not None
        ]
        if null_keys:
            quarantine_split, split = True, null_keys
    ctx.report(name, "publishing")
    source_q = _publish_query(spec, marked, contract.projection, result, split, quarantine_split)
    expected_out = _count_publish(ses, spec, source_q, res)

    if quarantine_split or rejects or rereads.late or ctx.full_refresh:
        res.rows_quarantined = _publish_quarantine(
            ctx, spec, result, split, marked, quarantine_split, rejects, rereads, batch_id, res
        )
    # every record read is published, quarantined or skipped by name: checked before the
    # dataset's commit (a failure here is a bug in lockgate, never published as success)
    res.check_accounting(expected_out)

    wm_value = None
    if spec.incremental is not None:
        batch_max = _max_cursor(ses, source_q, spec.incremental.cursor)
        wm_value = incremental.advance(watermark, batch_max)
    enc = incremental.encode(wm_value)
    wm_meta = f"{enc[0]}|{enc[1]}" if enc else None
    res.watermark = enc[0] if enc else None

    write = spec.write
    schema_mode = contract.schema_mode
    if ctx.full_refresh:
        write = write.model_copy(update={"mode": WriteMode.OVERWRITE})
        schema_mode = "overwrite"
    partition_values = None
    if write.mode == WriteMode.OVERWRITE_PARTITIONS:
        # the distinct partitions of the batch (a cheap pass on DuckDB's side) let the
        # store stream the batch straight into one replace-these-partitions commit
        cols = [exp.Column(this=ident(c)) for c in write.partition_by]
        cur = ses.execute(exp.select(*cols).distinct().from_(source_q.subquery("__p")))
        partition_values = [
            dict(zip(write.partition_by, row, strict=True)) for row in cur.fetchall()
        ]
    ses.settle()
    _abort_if_lease_lost(ctx)  # again: the quarantine write took time
    # DuckDB writes the Parquet files itself where the write mode allows (append/overwrite),
    # otherwise the query's Arrow batches stream into delta-rs
    pub = ctx.store.publish_query(
        name,
        ses,
        source_q,
        write=write,
        run_id=ctx.run_id,
        run_seq=ctx.run_seq,
        batch_id=batch_id,
        watermark=wm_meta,
        schema_mode=schema_mode,
        partition_values=partition_values,
        batch_rows=BATCH_ROWS,
    )
    res.output_version = pub.version
    res.rows_out = pub.rows
    if pub.already_committed:
        # this run already committed a *different* batch to this table (an earlier attempt
        # whose commit landed, then the inputs changed): recording success and the new
        # watermark would claim rows that were never published
        raise TerminalError(
            f"dataset '{name}': this run already published a different batch to the table "
            f"({pub.reason}); its inputs changed between attempts",
            hint="run again: the next run picks up the new inputs",
        )
    if pub.skipped:
        res.reason = pub.reason
    if pub.rows != expected_out:
        raise AccountingError(
            f"dataset '{name}': the publish query had {expected_out} rows but the store "
            f"wrote {pub.rows} (version {pub.version})"
        )
    res.duration_s = time.perf_counter() - t0
    res.columns = contract.columns
    res.watermark_type = enc[1] if enc else None
    ses.drop(stage, stage + "__rejects", stage + "__late")
    ses.drop(*[t for t in result.created_tables if t != stage])
    return res


# --------------------------------------------------------------------------------------------
# helpers


def _stage(
    ctx: StepContext,
    spec: DatasetSpec,
    stage: str,
    inputs: dict[str, Any],
    lowest: Any,
    def_hash: str,
) -> int:
    """Create the staging table (and ``<stage>__rejects`` for sources); returns the number
    of unreadable records. A source stages every row of the files it reads — no cursor
    filter: rows at or below the watermark are classified by :func:`_settle_rereads`."""
    if spec.kind == "source":
        from lockgate.sources import stage_source

        skip = _already_published_files(ctx, spec, def_hash) if _rereading(ctx, spec) else []
        staged = stage_source(ctx.session.con, spec, ctx.project.root, stage, skip_files=skip)
        return staged.rejected
    views = _register_inputs(ctx, spec, inputs, lowest, def_hash)
    where = spec.defined_in or "?"
    if spec.defined_line:
        where += f":{spec.defined_line}"
    if isinstance(spec.transform, PythonTransformSpec):
        stage_python(ctx.session, spec.name, ctx.project.python_transform(spec.name), stage, views)
    else:
        stage_sql(ctx.session, spec.name, ctx.project.sql_text(spec.name), stage, where)
    return 0


def _rereading(ctx: StepContext, spec: DatasetSpec) -> bool:
    """An incremental step adding to a table that exists: some rows may be read again."""
    return spec.incremental is not None and not ctx.full_refresh and ctx.store.exists(spec.name)


def _settle_rereads(
    ctx: StepContext, spec: DatasetSpec, stage: str, watermark: Any, lowest: Any, res: StepResult
) -> incremental.Rereads:
    """Take rows already published/quarantined, superseded or late out of the batch — and
    unreadable records already in the quarantine out of the rejects — each counted in
    ``res`` under its reason (see :func:`incremental.settle_rereads`)."""
    inc = spec.incremental
    ses = ctx.session
    rows = ses.count(stage)
    if inc is None:
        return incremental.Rereads()
    if rows:
        _require_cursor(spec, inc.cursor, ses.columns(stage))
    if not _rereading(ctx, spec):
        return incremental.Rereads()
    target = f"__lg_target_{spec.name}"
    qname = spec.name + "__quarantine"
    quarantine = None
    if ctx.store.exists(qname):
        quarantine = (f"__lg_target_{qname}", _register_columns(ctx, f"__lg_target_{qname}", qname))
    out = incremental.Rereads()
    if rows:
        tables = incremental.Tables((target, _register_columns(ctx, target, spec.name)), quarantine)
        out = incremental.settle_rereads(
            ses,
            stage,
            spec=inc,
            mode=spec.write.mode,
            keys=spec.write.keys,
            watermark=watermark,
            lowest=lowest,
            tables=tables,
        )
    if spec.kind == "source" and quarantine is not None:
        known = incremental.settle_rejects(ses, stage + "__rejects", quarantine)
        if known:
            out.skipped["already_quarantined"] = out.skipped.get("already_quarantined", 0) + known
            out.known_rejects = known
    for reason, n in out.skipped.items():
        res.skip(reason, n)
    if out.late:
        res.warnings.append(
            f"{out.late:,} late row(s) quarantined ({inc.cursor} older than the watermark"
            f"{' - lookback' if inc.lookback is not None else ''}; incremental.late)"
        )
    return out


def _require_cursor(spec: DatasetSpec, cursor: str, columns: dict[str, str]) -> None:
    if cursor not in columns:
        raise TerminalError(
            f"dataset '{spec.name}': incremental cursor column '{cursor}' is not in its "
            f"data (columns: {', '.join(list(columns)[:20])})",
            hint=did_you_mean(cursor, columns) or "fix incremental.cursor",
        )


def _register_columns(ctx: StepContext, rel: str, dataset: str) -> dict[str, str]:
    _register_table(ctx, rel, dataset, None)
    return ctx.session.columns(rel)


def _last_inputs(ctx: StepContext, spec: DatasetSpec, def_hash: str) -> dict[str, Any]:
    """Pinned inputs of the last successful step of this (unchanged) definition, or {}."""
    for step in ctx.state.dataset_steps(
        ctx.project.config.name, spec.name, limit=20, project_id=ctx.project_id
    ):
        if str(step.status) not in ("success", "noop"):
            continue
        inputs = step.input_versions or {}
        return dict(inputs) if inputs.get("definition") == def_hash else {}
    return {}


def _already_published_files(
    ctx: StepContext, spec: DatasetSpec, def_hash: str
) -> list[tuple[str, int, int]]:
    """Files the last successful step of this (unchanged) definition published: an
    incremental source need not read them again. Only an optimisation — the cursor filter
    and the publish de-duplication keep a re-read correct."""
    files = (_last_inputs(ctx, spec, def_hash).get("source") or {}).get("files") or []
    return [(f["path"], int(f["size"]), int(f["mtime_ns"])) for f in files]


def _register_inputs(
    ctx: StepContext, spec: DatasetSpec, inputs: dict[str, Any], lowest: Any, def_hash: str
) -> dict[str, str]:
    """Register each upstream dataset under its own name at its pinned version (an
    incremental transform: only rows past its cursor filter, or in files added since)."""
    views: dict[str, str] = {}
    cursor = spec.incremental.cursor if spec.incremental else None
    previous = _last_inputs(ctx, spec, def_hash) if cursor and lowest is not None else {}
    for up, version in inputs.items():
        if version is None:
            raise TerminalError(
                f"dataset '{spec.name}' reads '{up}', which has never been published",
                hint=f"run it first: lockgate run --select +{spec.name}",
            )
        if cursor and lowest is not None:
            path = ctx.store.path(up)
            scan = incremental.incremental_scan(path, version, previous.get(up), cursor, lowest)
            if scan is not None:
                ctx.session.execute(
                    exp.Create(this=table_ref(up), kind="VIEW", expression=scan, replace=True)
                )
                views[up] = up
                continue
        raw = f"__lg_in_{up}"
        columns = _register_table(ctx, raw, up, version)
        where = None
        if cursor and lowest is not None and cursor in columns:
            where = incremental.input_filter(cursor, lowest)
        ctx.session.register_filtered(up, raw, where)
        views[up] = up
    return views


def _register_references(ctx: StepContext, checks: Sequence[Any]) -> dict[str, str]:
    refs: dict[str, str] = {}
    for c in checks:
        target = getattr(c, "to", None)
        if not isinstance(target, str) or target in refs:
            continue
        if ctx.store.exists(target):
            rel = f"__lg_ref_{target}"
            _register_table(ctx, rel, target, None)
            refs[target] = rel
    return refs


def _register_table(ctx: StepContext, rel: str, dataset: str, version: int | None) -> list[str]:
    """Expose a published table version to DuckDB as ``rel``; returns its column names.

    Plain tables are scanned by DuckDB's own Parquet reader over the version's files (lower
    memory, parallel); others through a pyarrow dataset (see lockgate.storage.scan)."""
    ses = ctx.session
    scan = native_scan(ctx.store.path(dataset), version)
    ses.settle()
    with contextlib.suppress(duckdb.Error):
        ses.con.unregister(rel)
    if scan is not None:
        ses.execute(exp.Create(this=table_ref(rel), kind="VIEW", expression=scan, replace=True))
        return [e.alias_or_name for e in scan.expressions]
    ses.execute(exp.Drop(tables=[table_ref(rel)], kind="VIEW", exists=True))
    ds = ctx.store.arrow_dataset(dataset, version=version)
    ses.register_arrow(rel, ds)
    return list(ds.schema.names)


def _validate_checks(
    ctx: StepContext,
    spec: DatasetSpec,
    checks: Sequence[Any],
    columns: dict[str, str],
    references: dict[str, str],
) -> None:
    """Every problem of the dataset's checks against the staged columns, at once — before
    the audit reads a row. A check naming a column the data does not have is a config error."""
    from lockgate.quality import validate_checks

    ref_cols = {name: ctx.session.columns(rel) for name, rel in references.items()}
    problems = validate_checks(checks, columns, file=spec.defined_in, references=ref_cols)
    if not problems:
        return
    n = len(problems)
    where = spec.defined_in or "the dataset's YAML"
    raise TerminalError(
        f"dataset '{spec.name}' has {n} invalid check{'s' if n != 1 else ''} "
        f"({where}): "
        + "; ".join(p.message + (f" ({p.hint})" if p.hint else "") for p in problems),
        hint=f"fix the checks in {where} (staged columns: {', '.join(list(columns)[:20])}"
        f"{', …' if len(columns) > 20 else ''}); nothing was published. Declaring `columns:` "
        "lets `lockgate validate` catch this before running",
    )


def _published_columns(ctx: StepContext, name: str) -> dict[str, str] | None:
    schema = ctx.store.schema(name)
    if schema is None:
        return None
    tmp = f"__lg_schema_{name}"
    ctx.session.register_arrow(tmp, schema.empty_table())
    try:
        return ctx.session.columns(tmp)
    finally:
        ctx.session.settle()
        ctx.session.con.unregister(tmp)


def _publish_query(
    spec: DatasetSpec,
    marked: str,
    projection: list[exp.Expr],
    result: Any,
    decision: Any,
    quarantine_split: bool,
) -> exp.Select:
    q = exp.select(*projection).from_(table_ref(marked))
    if quarantine_split:
        q = q.where(result.passing_predicate(decision))
    keys = list(spec.write.keys)
    if keys and spec.write.mode == WriteMode.MERGE:
        # de-duplicate the batch by key: latest by order_by, else by the incremental cursor
        # (the dropped rows are counted by _count_publish)
        latest = spec.write.order_by or (spec.incremental.cursor if spec.incremental else None)
        order = (
            [exp.Ordered(this=exp.Column(this=ident(latest)), desc=True, nulls_first=False)]
            if latest
            else [exp.Ordered(this=exp.Column(this=ident(k))) for k in keys]
        )
        rn = exp.Window(
            this=exp.RowNumber(),
            partition_by=[exp.Column(this=ident(k)) for k in keys],
            order=exp.Order(expressions=order),
        )
        q = q.qualify(exp.EQ(this=rn, expression=exp.Literal.number(1)))
    return q


def _count_publish(ses: Session, spec: DatasetSpec, q: exp.Select, res: StepResult) -> int:
    """Rows ``q`` will publish; for merge, the rows the per-key de-duplication drops are
    counted as skipped (``duplicate_in_window``)."""
    total = exp.Count(this=exp.Star())
    qualify = q.args.get("qualify")
    if qualify is None:
        row = ses.execute(exp.select(total).from_(q.subquery("__c"))).fetchone()
        return int(row[0]) if row else 0
    passing = q.copy()
    passing.set("qualify", None)
    both = exp.select(
        exp.select(total.copy()).from_(passing.subquery("__a")).subquery(),
        exp.select(total.copy()).from_(q.subquery("__b")).subquery(),
    )
    row = ses.execute(both).fetchone()
    n_pass, n_out = (int(row[0]), int(row[1])) if row else (0, 0)
    res.skip("duplicate_in_window", n_pass - n_out)
    return n_out


def _publish_quarantine(
    ctx: StepContext,
    spec: DatasetSpec,
    result: Any,
    decision: Any,
    marked: str,
    quarantine_split: bool,
    rejects: int,
    rereads: incremental.Rereads,
    batch_id: str,
    res: StepResult,
) -> int:
    """Failing rows (with check names), unparseable records and late rows go to
    ``<name>__quarantine``. Written before the dataset's own commit; skipped if this batch
    is already there."""
    qname = f"{spec.name}__quarantine"
    # a full refresh rebuilds the dataset from all input, so its quarantine is rebuilt too
    # (appending would list every old bad row twice)
    replace = ctx.full_refresh and ctx.store.exists(qname)
    last = ctx.store.last_commit(qname)
    if not ctx.full_refresh and last is not None and last.batch_id == batch_id:
        return int(getattr(last, "rows", 0) or 0)
    ses = ctx.session
    meta = [
        exp.alias_(exp.Literal.string(ctx.run_id), "_lg_run_id"),
        exp.alias_(
            exp.Cast(
                this=exp.Literal.string(ctx.now.isoformat()), to=exp.DataType.build("TIMESTAMPTZ")
            ),
            "_lg_quarantined_at",
        ),
    ]
    parts: list[exp.Select] = []
    if quarantine_split:
        fq = result.failing_rows_query(bits=decision)
        parts.append(exp.select(exp.Star(), *meta).from_(fq.subquery("__f")))
    if rejects:
        rj = stage_name(spec.name) + "__rejects"
        parts.append(
            exp.select(
                exp.Star(),
                exp.alias_(
                    exp.Array(expressions=[exp.Literal.string("parse_error")]),
                    "_lg_failed_checks",
                ),
                *meta,
            ).from_(table_ref(rj))
        )
    if rereads.late_table is not None:
        parts.append(_late_part(spec, rereads.late_table, meta))
    if not parts:
        if replace:
            schema = ctx.store.schema(qname)
            _replace_quarantine(
                ctx, qname, pa.RecordBatchReader.from_batches(schema, []), batch_id, res
            )
        return 0
    tmp = f"__lg_q_{spec.name}"
    first, *rest = parts
    ses.drop(tmp)
    ses.execute(exp.Create(this=table_ref(tmp), kind="TABLE", expression=first))
    for p in rest:
        _insert_by_name(ses, tmp, p)
    n = ses.count(tmp)
    if n or replace:
        raw_reader = ses.reader(exp.select("*").from_(table_ref(tmp)), BATCH_ROWS)
        try:
            if replace:
                _replace_quarantine(ctx, qname, _cast_reader_for_delta(raw_reader), batch_id, res)
            else:
                pub = ctx.store.publish_quarantine(
                    spec.name,
                    _cast_reader_for_delta(raw_reader),
                    run_id=ctx.run_id,
                    run_seq=ctx.run_seq,
                    batch_id=batch_id,
                )
                res.quarantine_version = pub.version
        finally:
            raw_reader.close()
    ses.drop(tmp)
    return n


def _late_part(spec: DatasetSpec, late_table: str, meta: list[exp.Expr]) -> exp.Select:
    assert spec.incremental is not None
    inc = spec.incremental
    older = "the watermark" if inc.lookback is None else f"watermark - lookback ({inc.lookback})"
    return exp.select(
        exp.Star(),
        exp.alias_(exp.Array(expressions=[exp.Literal.string("late")]), "_lg_failed_checks"),
        exp.alias_(
            exp.Literal.string(f"late: {inc.cursor} older than {older}"),
            "_lg_reason",
        ),
        *[m.copy() for m in meta],
    ).from_(table_ref(late_table))


def _replace_quarantine(
    ctx: StepContext, qname: str, data: pa.RecordBatchReader, batch_id: str, res: StepResult
) -> None:
    pub = ctx.store.publish(
        qname,
        data,
        write=WriteSpec(mode=WriteMode.OVERWRITE),
        run_id=ctx.run_id,
        run_seq=ctx.run_seq,
        batch_id=batch_id,
        watermark=None,
        schema_mode="overwrite",
    )
    res.quarantine_version = pub.version


def _insert_by_name(ses: Session, table: str, query: exp.Select) -> None:
    """INSERT INTO t BY NAME <query>, adding any columns the query has and t lacks."""
    have = ses.columns(table)
    probe = f"__lg_probe_{table}"
    ses.execute(exp.Create(this=table_ref(probe), kind="VIEW", expression=query, replace=True))
    for c, t in ses.columns(probe).items():
        if c not in have:
            ses.execute(
                exp.Alter(
                    this=table_ref(table),
                    kind="TABLE",
                    actions=[
                        exp.ColumnDef(this=ident(c), kind=exp.DataType.build(t, dialect="duckdb"))
                    ],
                )
            )
    ses.execute(
        exp.Insert(
            this=table_ref(table),
            expression=exp.select("*").from_(table_ref(probe)),
            by_name=True,
        )
    )
    ses.execute(exp.Drop(tables=[table_ref(probe)], kind="VIEW", exists=True))


def _max_cursor(ses: Session, q: exp.Select, cursor: str) -> Any:
    rows = ses.execute(
        exp.select(exp.Max(this=exp.Column(this=ident(cursor)))).from_(q.subquery("__w"))
    ).fetchall()
    return rows[0][0] if rows else None


def _cast_reader_for_delta(reader: pa.RecordBatchReader) -> pa.RecordBatchReader:
    """Arrow types Delta cannot store directly (string_view, etc.) → storable ones."""
    schema = reader.schema
    fields = []
    changed = False
    for f in schema:
        t = f.type
        if pa.types.is_string_view(t) or pa.types.is_large_string(t):
            t, changed = pa.string(), True
        elif pa.types.is_binary_view(t):
            t, changed = pa.binary(), True
        elif pa.types.is_timestamp(t) and t.unit == "ns":
            t, changed = pa.timestamp("us", tz=t.tz), True
        fields.append(pa.field(f.name, t, nullable=True))
    if not changed:
        return reader
    target = pa.schema(fields)
    return pa.RecordBatchReader.from_batches(target, (b.cast(target) for b in reader))


def _check_dict(c: Any) -> dict[str, Any]:
    d = c.to_dict() if hasattr(c, "to_dict") else dict(vars(c))
    for k, v in list(d.items()):
        if hasattr(v, "value"):
            d[k] = v.value
    return d


def _abort_if_lease_lost(ctx: StepContext) -> None:
    """Raise LeaseLost (the runner ends the run as interrupted) unless the lock is ours."""
    if ctx.lease is not None:
        ctx.lease.check()
