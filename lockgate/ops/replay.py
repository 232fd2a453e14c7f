"""``lockgate replay RUN_ID``: rebuild what a past run published, from exactly the input
versions it pinned and the definitions as they were (kept by hash when the run published),
into a scratch warehouse; then compare, table by table, the content of the rebuilt batch with
what that run published.

The comparison is a content hash independent of row order: ``count(*)`` and the sum of the
rows' hashes (a multiset: a duplicated row changes it), over the columns in name order, both
sides read back from Delta tables so types match. What "the run published" is depends on the
write: an ``overwrite`` is the table at the run's version; an ``append`` the files that version
added; a partitioned dataset the table's rows in the intervals the run replaced; a ``merge``
(or ``overwrite_partitions``) the table's rows with the rebuilt batch's keys (partitions).

Replayed: SQL and Python transforms (a Python transform only while its code is unchanged),
file sources whose files are still exactly the ones the run read (the pinned fingerprint:
every file's path, size and modification time), and incremental transforms from the state the
run found: the table and quarantine at their versions before the run, the watermark of the
table's lockgate commit then, and the step history before the run (which upstream versions
were read already). Not replayed, and said so per table with status ``cannot``: a file source
whose files changed since (which ones, and how), a source with no pinned version (a database
or API read as it was then), incremental sources, and an incremental transform whose table
before the run is gone. An input version that is
gone (vacuumed, or its log cleaned up) is an error naming ``dataset@version``. A table is
``identical`` only when the rebuilt content hash equals the published one.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from sqlglot import exp

from lockgate.errors import LockgateError, TerminalError, UsageError

if TYPE_CHECKING:
    from lockgate.engine.session import Session
    from lockgate.project import Project
    from lockgate.project.models import DatasetSpec
    from lockgate.project.python import TransformFunction
    from lockgate.state import StateStore
    from lockgate.state.records import StepInfo
    from lockgate.storage.base import TableStore

log = logging.getLogger(__name__)

_NOT_INPUTS = ("definition", "intervals", "published", "resume", "source")


class InputVacuumed(TerminalError):
    """A pinned input version of the run is no longer in the warehouse."""


@dataclass
class ReplayedTable:
    dataset: str
    status: str  # identical / different / skipped / cannot / error
    version: int | None = None  # the version the run published
    recorded_rows: int | None = None
    replayed_rows: int | None = None
    recorded_hash: str | None = None
    replayed_hash: str | None = None
    reason: str = ""

    def to_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


@dataclass
class ReplayResult:
    run_id: str
    into: Path
    tables: list[ReplayedTable] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No table rebuilt differently or failed (``cannot`` says why it was not rebuilt)."""
        return all(t.status in ("identical", "skipped", "cannot") for t in self.tables)

    def to_dict(self) -> dict[str, object]:
        return {
            "run_id": self.run_id,
            "into": str(self.into),
            "ok": self.ok,
            "tables": [t.to_dict() for t in self.tables],
        }


class _RecordedProject:
    """The project as a step reads it, with the recorded definitions of replayed datasets."""

    def __init__(self, project: Project, specs: dict[str, tuple[DatasetSpec, dict[str, Any]]]):
        self._p = project
        self._specs = specs

    def __getattr__(self, name: str) -> Any:
        return getattr(self._p, name)

    def sql_text(self, name: str) -> str:
        if name in self._specs and self._specs[name][1].get("sql") is not None:
            return str(self._specs[name][1]["sql"])
        return self._p.sql_text(name)

    def python_transform(self, name: str) -> TransformFunction:
        return self._p.python_transform(name)

    def effective_write(self, name: str) -> Any:
        return self._specs[name][0].write if name in self._specs else self._p.effective_write(name)

    def effective_gate(self, name: str) -> Any:
        spec = self._specs[name][0] if name in self._specs else None
        if spec is not None and spec.gate is not None:
            return spec.gate
        return self._p.effective_gate(name)

    def effective_schema_policy(self, name: str) -> Any:
        return self._p.effective_schema_policy(name)


class _OneSession:
    """The replay's one engine session, as the run loop's session source."""

    opened = True

    def __init__(self, ses: Session) -> None:
        self._ses = ses

    def current(self) -> Session:
        return self._ses


def replay(
    project: Project,
    run_id: str,
    *,
    select: Sequence[str] = (),
    into: Path | None = None,
) -> ReplayResult:
    """Rebuild the datasets run ``run_id`` published (``select``: only these) into ``into``
    (default: a new folder under ``.lockgate/replay/``) and compare each with the original."""
    from lockgate.engine.session import open_session
    from lockgate.runloop.runner import open_backends
    from lockgate.storage import store_for

    state, store = open_backends(project)
    try:
        detail = state.get_run(run_id, project.config.name)
        if detail is None:
            raise UsageError(
                f"no run {run_id!r} in project '{project.config.name}'",
                hint="`lockgate runs` lists the runs and their ids",
            )
        rid = detail.run.run_id
        if into is None:
            base = project.work_dir / "replay"
            base.mkdir(parents=True, exist_ok=True)
            into = Path(tempfile.mkdtemp(prefix=f"{rid[:12]}_", dir=base))
        into.mkdir(parents=True, exist_ok=True)
        wanted = set(project.select(list(select))) if select else None
        out = ReplayResult(rid, into)
        scratch = store_for("delta", into)
        ses = open_session(project.config.engine, into / ".work", f"replay{rid[:8]}")
        try:
            for step in detail.steps:
                if wanted is not None and step.dataset not in wanted:
                    continue
                if step.status != "success" or step.output_version is None or not step.rows_out:
                    continue
                try:
                    out.tables.append(
                        _replay_step(project, state, store, scratch, ses, step, detail.run)
                    )
                except LockgateError as e:
                    out.tables.append(
                        ReplayedTable(step.dataset, "error", step.output_version, reason=e.message)
                    )
                    if isinstance(e, InputVacuumed):
                        raise
        finally:
            ses.close()
        return out
    finally:
        state.close()


def _replay_step(
    project: Project,
    state: StateStore,
    store: TableStore,
    scratch: TableStore,
    ses: Session,
    step: StepInfo,
    run: Any,
) -> ReplayedTable:
    from lockgate.project.models import DatasetSpec
    from lockgate.state.intervals import load_definition

    name, version = step.dataset, step.output_version
    inputs = dict(step.input_versions or {})
    def_hash = inputs.get("definition")
    body = load_definition(state, project.config.name, str(def_hash)) if def_hash else None
    if body is None:
        return ReplayedTable(
            name,
            "skipped",
            version,
            reason="its definition was not recorded (a run before definitions were kept by hash)",
        )
    spec = DatasetSpec.model_validate(body["spec"])
    assert version is not None
    start = _start_of(store, spec, version, run) if spec.incremental is not None else None
    blocker = start if isinstance(start, str) else None
    if blocker is None and spec.kind == "source":
        blocker = _incremental_blocker(spec) or _source_changed(project, spec, inputs.get("source"))
    if blocker is not None:
        return ReplayedTable(name, "cannot", version, reason=blocker)
    assert start is None or isinstance(start, _AtStart)
    if spec.kind == "python" and not _same_python(project, name, body):
        return ReplayedTable(
            name,
            "skipped",
            version,
            reason="its Python transform changed since the run "
            "(the recorded source is kept; only unchanged Python code is replayed)",
        )
    pins = {k: int(v) for k, v in inputs.items() if k not in _NOT_INPUTS and isinstance(v, int)}
    for up, v in pins.items():
        _require_version(store, up, v, step.run_id)
    batch = _rebuild(project, state, store, ses, spec, body, pins, inputs, run, start)
    # the rebuilt batch into the scratch warehouse, then both sides hashed the same way
    from lockgate.storage.base import CommitTag, TableWrite

    pub = scratch.publish_query(
        name,
        ses,
        batch,
        write=TableWrite("overwrite", schema_mode="overwrite"),
        tag=CommitTag("replay", 1, "replay"),
    )
    rebuilt = _register(ses, scratch, "__lg_rp_new", name, pub.version)
    recorded = _recorded(ses, store, spec, name, version, inputs, rebuilt)
    cols = sorted(set(ses.columns(rebuilt)) & set(ses.columns("__lg_rp_old_all")))
    new_n, new_h = _content_hash(ses, rebuilt, cols)
    old_n, old_h = _content_hash(ses, recorded, cols)
    same = (new_n, new_h) == (old_n, old_h)
    why = "" if same else _difference(ses, rebuilt, recorded, cols)
    return ReplayedTable(
        name, "identical" if same else "different", version, old_n, new_n, old_h, new_h, why
    )


def _incremental_blocker(spec: DatasetSpec) -> str | None:
    """Why an incremental *source* cannot be replayed (None: it is not incremental)."""
    if spec.incremental is None:
        return None
    return (
        f"an incremental source (cursor {spec.incremental.cursor}): which records it read "
        "depended on its resume token and files at the run's start, not pinned by a replay"
    )


@dataclass(frozen=True)
class _AtStart:
    """An incremental dataset as the run found it: its table and quarantine versions before
    the run's commits (None: none yet) and the watermark of the table's lockgate commit."""

    table: int | None
    quarantine: int | None
    watermark: object
    started_at: datetime
    run_id: str


def _start_of(store: TableStore, spec: DatasetSpec, version: int, run: Any) -> _AtStart | str:
    """The incremental dataset's state at the run's start, or why it cannot be rebuilt."""
    from lockgate.runloop import incremental

    name, qname = spec.name, spec.name + "__quarantine"
    before = version - 1 if version > 0 else None
    watermark: object = None
    if before is not None:
        try:
            _require_version(store, name, before, run.run_id)
        except InputVacuumed:
            return (
                f"incremental: its table as the run found it (version {before}) is no longer "
                "in the warehouse (vacuumed, or its log cleaned up), so the rows and watermark "
                "the run's batch depended on cannot be read"
            )
        older = [h for h in store.history(name, limit=None) if h["version"] <= before]
        mine = next((h for h in older if h["lockgate"].get("run_id")), None)
        text, _, kind = str((mine or {}).get("lockgate", {}).get("watermark") or "").rpartition("|")
        watermark = incremental.decode(text, kind) if text else None
    seqs = [
        h["version"]
        for h in store.history(qname, limit=None)
        if int(h["lockgate"].get("run_seq") or 0) < int(run.seq)
    ]
    return _AtStart(before, max(seqs, default=None), watermark, run.started_at, run.run_id)


class _StoreAtStart:
    """The table store as an incremental step found it: the dataset's table and quarantine
    at their versions before the run (a relation of ``None``: the version then)."""

    def __init__(self, store: TableStore, pins: dict[str, int | None]) -> None:
        self._s, self._pins = store, pins

    def __getattr__(self, name: str) -> Any:
        return getattr(self._s, name)

    def scan(self, name: str, version: int | None = None) -> Any:
        if version is None and name in self._pins:
            pinned = self._pins[name]
            if pinned is None:
                raise TerminalError(f"table '{name}' did not exist at the run's start")
            version = pinned
        return self._s.scan(name, version)

    def snapshot(self, name: str) -> Any:
        if name in self._pins and self._pins[name] is None:
            return None
        return self._s.snapshot(name)


class _HistoryBefore:
    """The state store as the run found it: a dataset's steps before the run."""

    def __init__(self, state: StateStore, start: _AtStart) -> None:
        self._s, self._start = state, start

    def __getattr__(self, name: str) -> Any:
        return getattr(self._s, name)

    def dataset_steps(self, *args: Any, **kwargs: Any) -> list[Any]:
        steps = self._s.dataset_steps(*args, **{**kwargs, "limit": 200})
        t0 = self._start.started_at
        return [s for s in steps if s.run_id != self._start.run_id and s.started_at < t0][:20]


def _source_changed(project: Project, spec: DatasetSpec, pinned: object) -> str | None:
    """Why source ``spec`` cannot be read as the run read it (None: its files are the
    same: same paths, sizes and modification times)."""
    from lockgate.sources import source_for

    kind = str(getattr(spec.source, "type", "?"))
    if not isinstance(pinned, dict) or not isinstance(pinned.get("files"), list):
        return (
            f"a {kind} source has no pinned version: it was read as it was during the run "
            "(only file sources are pinned, by their files' fingerprint)"
        )
    try:
        now = source_for(project.source_request(spec)).fingerprint()
    except LockgateError as e:
        return f"its source cannot be read as the run read it: {e.message}"
    files = now.get("files") if isinstance(now, dict) else None
    if not isinstance(files, list):
        return f"a {kind} source has no fingerprint now: cannot check its files"
    return _files_changed(pinned["files"], files)


def _files_changed(before: list[Any], after: list[Any]) -> str | None:
    """``source files changed since the run: a.csv (size 10 -> 12), b.csv gone, +1 new``."""

    def by_path(files: list[Any]) -> dict[str, tuple[object, object]]:
        return {
            str(f.get("path")): (f.get("size"), f.get("mtime_ns"))
            for f in files
            if isinstance(f, dict)
        }

    old, new = by_path(before), by_path(after)
    notes: list[str] = []
    for path, (size, mtime) in old.items():
        if path not in new:
            notes.append(f"{path} gone")
        elif new[path][0] != size:
            notes.append(f"{path} (size {size} -> {new[path][0]})")
        elif new[path][1] != mtime:
            notes.append(f"{path} (modified since)")
    added = sorted(set(new) - set(old))
    if added:
        notes.append(f"{len(added)} new file(s), e.g. {added[0]}")
    if not notes:
        return None
    more = f" and {len(notes) - 5} more" if len(notes) > 5 else ""
    return "source files changed since the run: " + ", ".join(notes[:5]) + more


def _same_python(project: Project, name: str, body: dict[str, Any]) -> bool:
    import inspect

    try:
        now = inspect.getsource(project.python_transform(name).func)
    except (OSError, TypeError, KeyError, LockgateError):
        return False
    return body.get("python") is not None and now == body["python"]


def _require_version(store: TableStore, dataset: str, version: int, run_id: str) -> None:
    """The pinned version is readable and every data file of it exists."""
    import os

    where = f"'{dataset}'@{version}"
    try:
        scan = store.scan(dataset, version)
    except LockgateError as e:
        raise InputVacuumed(
            f"run {run_id[:12]} read input {where}, which is no longer in the warehouse "
            f"({e.message})",
            hint="a replay needs the versions the run read: keep them longer (vacuum "
            "retention) or replay a newer run",
        ) from e
    gone = [f for f in scan.files if not os.path.exists(f.removeprefix("file://"))]
    if gone:
        raise InputVacuumed(
            f"run {run_id[:12]} read input {where}, whose data files were removed "
            f"(vacuumed: {len(gone)} of {len(scan.files)} missing, e.g. {Path(gone[0]).name})",
            hint="a replay needs the versions the run read: keep them longer (vacuum "
            "retention) or replay a newer run",
        )


def _rebuild(
    project: Project,
    state: StateStore,
    store: TableStore,
    ses: Session,
    spec: DatasetSpec,
    body: dict[str, Any],
    pins: dict[str, int],
    inputs: dict[str, Any],
    run: Any,
    start: _AtStart | None = None,
) -> exp.Select:
    """The stages of a step up to the publish query, over the pinned inputs (an incremental
    step: from the table, quarantine, watermark and history as the run found them)."""
    from lockgate.runloop.context import Stage, StepContext, StepState, stage_name
    from lockgate.runloop.results import StepResult, StepStatus
    from lockgate.runloop.stages.audit import audit
    from lockgate.runloop.stages.contract import contract, validate_checks
    from lockgate.runloop.stages.gate import gate
    from lockgate.runloop.stages.partitions import audit_intervals, bucket
    from lockgate.runloop.stages.split import split
    from lockgate.runloop.stages.stage import stage
    from lockgate.runloop.stages.stamp import stamp

    name = spec.name
    view = _RecordedProject(project, {name: (spec, body)})
    if start is not None:
        pins_then = {name: start.table, name + "__quarantine": start.quarantine}
        store = cast("TableStore", _StoreAtStart(store, pins_then))
        state = cast("StateStore", _HistoryBefore(state, start))
    ctx = StepContext(
        project=view,  # a ProjectView by delegation
        sessions=_OneSession(ses),
        store=store,
        state=state,
        run_id="replay",
        run_seq=0,
        now=run.started_at if isinstance(run.started_at, datetime) else datetime.now(UTC),
    )
    st = StepState(
        spec=spec,
        result=StepResult(dataset=name, status=StepStatus.SUCCESS),
        stage=stage_name(name),
        upstream=dict(pins),
        definition=str(inputs.get("definition")),
    )
    if start is not None and spec.incremental is not None:
        from lockgate.runloop import incremental

        st.table = store.snapshot(name) if start.table is not None else None
        st.watermark = start.watermark
        st.lowest = incremental.min_cursor(spec.incremental, start.watermark)
    if spec.partition is not None:
        st.intervals = [(int(a), int(b)) for a, b in inputs.get("published") or []]
        stages: tuple[Stage, ...] = (
            stage,
            stamp,
            validate_checks,
            contract,
            bucket,
            audit_intervals,
        )
    else:
        stages = (stage, stamp, validate_checks, contract, audit, gate, split)
    for s in stages:
        s(ctx, st)
        if st.done:
            break
    if st.publish_query is None:
        raise TerminalError(
            f"dataset '{name}': the replay did not publish ({st.result.reason})",
            hint="the run published it: its inputs or checks behave differently now",
        )
    return st.publish_query


def _register(ses: Session, store: TableStore, rel: str, name: str, version: int | None) -> str:
    from lockgate.engine.session import table_ref
    from lockgate.storage.scan import scan_select

    pinned = store.scan(name, version)
    q = scan_select(pinned)
    ses.unregister(rel)
    if q is not None:
        ses.execute(exp.Create(this=table_ref(rel), kind="VIEW", expression=q, replace=True))
    else:
        ses.execute(exp.Drop(tables=[table_ref(rel)], kind="VIEW", exists=True))
        ses.register_arrow(rel, pinned.dataset)
    return rel


def _recorded(
    ses: Session,
    store: TableStore,
    spec: DatasetSpec,
    name: str,
    version: int,
    inputs: dict[str, Any],
    rebuilt: str,
) -> str:
    """A relation of the rows the run published (see the module docstring)."""
    from lockgate.engine.session import ident, table_ref
    from lockgate.runloop.stages.partitions import column_kind, in_ranges
    from lockgate.storage.base import TableScan
    from lockgate.storage.scan import scan_select

    whole = _register(ses, store, "__lg_rp_old_all", name, version)
    mode = str(spec.write.mode)
    rel = "__lg_rp_old"
    q: exp.Select = exp.select("*").from_(table_ref(whole))
    if spec.partition is not None:
        spans = [(int(a), int(b)) for a, b in inputs.get("published") or []]
        kind = column_kind(spec.partition, name, ses.columns(whole))
        q = q.where(in_ranges(spec.partition.column, spans, kind))
    elif mode == "append" and version > 0:
        added = store.added_files(name, version - 1, version)
        pinned = store.scan(name, version)
        sel = scan_select(TableScan(name, version, pinned.columns, tuple(added))) if added else None
        if sel is not None:
            q = sel
    elif mode in ("merge", "overwrite_partitions"):
        keys = spec.write.keys if mode == "merge" else spec.write.partition_by
        cond = exp.and_(
            *[
                exp.EQ(
                    this=exp.column(ident(k), table="__o"),
                    expression=exp.column(ident(k), table="__n"),
                )
                for k in keys
            ]
        )
        sub = exp.select("1").from_(exp.alias_(table_ref(rebuilt), "__n")).where(cond)
        q = (
            exp.select("__o.*")
            .from_(exp.alias_(table_ref(whole), "__o"))
            .where(exp.Exists(this=sub))
        )
    ses.execute(exp.Create(this=table_ref(rel), kind="VIEW", expression=q, replace=True))
    return rel


def _content_hash(ses: Session, rel: str, cols: list[str]) -> tuple[int, str]:
    """(rows, hash): the sum of the rows' hashes, order-independent, duplicates counted."""
    from lockgate.engine.session import ident, table_ref

    row = exp.func("hash", *[exp.column(ident(c)) for c in cols]) if cols else exp.Literal.number(0)
    q = exp.select(
        exp.Count(this=exp.Star()),
        exp.Sum(this=exp.cast(row, exp.DataType.build("HUGEINT", dialect="duckdb"))),
    ).from_(table_ref(rel))
    got = ses.execute(q).fetchone()
    n, total = (int(got[0]), int(got[1] or 0)) if got else (0, 0)
    digest = hashlib.sha256(f"{n}:{total % (1 << 64)}".encode()).hexdigest()[:16]
    return n, digest


def _difference(ses: Session, new: str, old: str, cols: list[str]) -> str:
    """How the two sides differ, briefly: rows only in one of them."""
    from lockgate.engine.session import ident, table_ref

    def count(a: str, b: str) -> int:
        proj = [exp.column(ident(c)) for c in cols]
        q = exp.select(exp.Count(this=exp.Star())).from_(
            exp.except_(
                exp.select(*proj).from_(table_ref(a)),
                exp.select(*[p.copy() for p in proj]).from_(table_ref(b)),
                distinct=False,
            ).subquery("__d")
        )
        got = ses.execute(q).fetchone()
        return int(got[0]) if got else 0

    return (
        f"{count(new, old)} row(s) only in the replay, {count(old, new)} only in what the run "
        "published"
    )
