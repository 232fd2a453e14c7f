"""Recorded training sets: made once, re-created exactly.

:func:`record` (called by :func:`lockgate.features.training_set`) stores in the state store,
under a new id: the feature refs asked for, each view's definition, dataset, pinned Delta
version and join strategy, the entity rows (SHA-256, and a copy kept under
``.lockgate/training_sets/<id>/`` unless they are a dataset, which is pinned by version), and
the SHA-256 of the result. :func:`replay_training_set` (``lockgate features training-set
--replay ID``) joins the kept entity rows to the pinned versions with the recorded
definitions and strategies — the project's YAML may have moved on — and checks the result's
hash. :func:`lockgate.state.features.pinned_versions` lists what retention must keep.

The result's hash is of a canonical encoding (:func:`table_sha256`): Arrow buffers may hold
arbitrary bytes under NULL slots, and the chunking of a table is not part of its value.
"""

from __future__ import annotations

import hashlib
import shutil
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from lockgate.errors import InputError, UsageError
from lockgate.features.definitions import FeatureViewSpec

if TYPE_CHECKING:
    from lockgate.features.offline import ViewSource
    from lockgate.project import Project
    from lockgate.state.features import TrainingSetRecord

#: the id of a recorded training set, in the result's schema metadata
ID_KEY = b"lockgate.training_set_id"
_ROWS = 65_536


class _Sha256Sink:
    """A write-only file object feeding a SHA-256."""

    def __init__(self) -> None:
        self.h = hashlib.sha256()
        self.closed = False

    def write(self, data: bytes) -> int:
        self.h.update(data)
        return len(data)

    def flush(self) -> None:
        return None

    def close(self) -> None:
        self.closed = True


def table_sha256(table: pa.Table) -> str:
    """SHA-256 of ``table``'s schema (not its metadata) and values, independent of chunking
    and of the bytes under NULL slots: per column, the validity as bytes and the values with
    NULLs filled (numbers, times, booleans: their raw bytes, so ``-0.0`` differs from
    ``0.0``); other types through uncompressed Parquet."""
    top = hashlib.sha256(table.schema.remove_metadata().serialize().to_pybytes())
    for name in table.column_names:
        top.update(_column_sha256(table.column(name)).encode())
    return top.hexdigest()


def _column_sha256(col: pa.ChunkedArray) -> str:
    import pyarrow.compute as pc

    t = col.type
    raw = (
        pa.types.is_integer(t)
        or pa.types.is_floating(t)
        or pa.types.is_boolean(t)
        or pa.types.is_timestamp(t)
        or pa.types.is_duration(t)
    )
    if not raw:
        return _parquet_sha256(col)
    valid, data = hashlib.sha256(), hashlib.sha256()
    zero = pa.scalar(False) if pa.types.is_boolean(t) else pa.scalar(0, pa.int64()).cast(t)
    for chunk in col.chunks:
        if chunk.null_count:
            valid.update(pc.is_valid(chunk).to_numpy(zero_copy_only=False).tobytes())
            chunk = pc.fill_null(chunk, zero)
        else:
            valid.update(b"\x01" * len(chunk))
        data.update(chunk.to_numpy(zero_copy_only=False).tobytes())
    return valid.hexdigest() + data.hexdigest()


def _parquet_sha256(col: pa.ChunkedArray) -> str:
    import pyarrow.parquet as pq

    table = pa.table({"c": col})
    sink = _Sha256Sink()
    with pq.ParquetWriter(
        pa.PythonFile(sink, mode="w"),
        table.schema,
        compression="none",
        use_dictionary=False,
        write_statistics=False,
    ) as w:
        for start in range(0, table.num_rows, _ROWS):
            w.write_table(table.slice(start, _ROWS).combine_chunks(), row_group_size=_ROWS)
    return sink.h.hexdigest()


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _kept_dir(project: Project, id_: str) -> Path:
    return project.work_dir / "training_sets" / id_


def record(
    project: Project,
    refs: Sequence[str],
    options: Mapping[str, Any],
    sources: Sequence[ViewSource],
    described: Mapping[str, Any],
    entities: pa.Table | Path,
    out: pa.Table,
) -> pa.Table:
    """Record ``out`` (see the module docs); returns it with its id in the metadata."""
    from lockgate.state import StateStore
    from lockgate.state.features import TrainingSetRecord, now, record_training_set

    id_ = uuid.uuid4().hex
    meta = out.schema.metadata or {}
    import json

    report = json.loads(meta.get(b"lockgate.feature_versions", b"{}"))
    views = {
        src.spec.name: {
            "dataset": src.spec.dataset,
            "version": src.version,
            "features": list(src.features),
            "strategy": report.get(src.spec.name, {}).get("strategy"),
            "spec": src.spec.model_dump(mode="json"),
        }
        for src in sources
    }
    ent = dict(described)
    if ent["kind"] != "dataset":
        kept = _kept_dir(project, id_)
        kept.mkdir(parents=True, exist_ok=True)
        if isinstance(entities, Path):
            copy = kept / ("entities" + entities.suffix.lower())
            shutil.copyfile(entities, copy)
        else:
            # Arrow IPC, not Parquet: Parquet has no seconds unit (timestamp[s] would come
            # back as [ms]) and would lose other exact types, so the replay would differ
            copy = kept / "entities.arrow"
            with pa.ipc.new_file(copy, entities.schema) as w:
                w.write_table(entities)
        ent["copy"] = str(copy.relative_to(project.root))
        ent["sha256"] = file_sha256(copy)
    out = out.replace_schema_metadata({**meta, ID_KEY: id_.encode()})
    rec = TrainingSetRecord(
        id=id_,
        project=project.name,
        created_at=now(),
        features=list(refs),
        options=dict(options),
        views=views,
        entities=ent,
        rows=out.num_rows,
        result_sha256=table_sha256(out),
    )
    with StateStore.open(project.state_url) as state:
        record_training_set(state, rec)
    return out


@dataclass(frozen=True)
class Replay:
    """A re-created training set: the table, its record, and whether it is identical."""

    table: pa.Table
    record: TrainingSetRecord
    sha256: str

    @property
    def identical(self) -> bool:
        return self.sha256 == self.record.result_sha256


def find_record(project: Project, id_: str) -> TrainingSetRecord:
    from lockgate.state import StateStore
    from lockgate.state.features import get_training_set

    with StateStore.open(project.state_url) as state:
        rec = get_training_set(state, project.name, id_)
    if rec is None:
        raise UsageError(
            f"no training set {id_!r} recorded for project '{project.name}' (or the prefix is "
            "ambiguous)",
            hint="`lockgate features training-sets` lists them",
        )
    return rec


def replay_training_set(project: Project, id_: str) -> Replay:
    """Re-create recorded training set ``id_`` (a unique prefix is enough) from its pinned
    inputs; ``Replay.identical`` says whether the result's hash matches the record."""
    from lockgate.engine.base import engine_for
    from lockgate.features.offline import ViewSource, point_in_time
    from lockgate.storage import DeltaStore

    rec = find_record(project, id_)
    store = DeltaStore(project.warehouse_path)
    sources = []
    for name, info in rec.views.items():
        spec = FeatureViewSpec.model_validate(info["spec"])
        data = _pinned(store, str(info["dataset"]), int(info["version"]), rec.id)
        sources.append(ViewSource(spec, tuple(info["features"]), data, int(info["version"])))
        del name
    entities = _recorded_entities(project, store, rec)
    strategies = {n: i["strategy"] for n, i in rec.views.items() if i.get("strategy")}
    with engine_for(
        project.config.engine,
        work_dir=project.work_dir / "work",
        run_id=f"features-replay-{uuid.uuid4().hex}",
    ) as ses:
        out = point_in_time(
            ses,
            entities,
            sources,
            timestamp_column=str(rec.options["timestamp_column"]),
            full_feature_names=bool(rec.options.get("full_feature_names")),
            strategies=strategies,
        )
    out = out.replace_schema_metadata({**(out.schema.metadata or {}), ID_KEY: rec.id.encode()})
    return Replay(out, rec, table_sha256(out))


def _pinned(store: Any, dataset: str, version: int, id_: str) -> Any:
    try:
        return store.arrow_dataset(dataset, version)
    except Exception as e:
        raise InputError(
            f"training set {id_}: version {version} of dataset '{dataset}' can no longer be "
            f"read ({e})",
            hint="its files were vacuumed or the table was recreated; retention must keep the "
            "versions lockgate.state.features.pinned_versions lists",
        ) from e


def _recorded_entities(project: Project, store: Any, rec: TrainingSetRecord) -> pa.Table | Path:
    from lockgate.features.offline import read_entity_file

    ent = rec.entities
    if ent["kind"] == "dataset":
        return store.read(str(ent["dataset"]), int(ent["version"]))
    copy = project.root / str(ent["copy"])
    if not copy.is_file():
        raise InputError(
            f"training set {rec.id}: the kept entity rows {copy} are missing",
            hint="they are kept under .lockgate/training_sets/<id>/; restore them",
        )
    if file_sha256(copy) != ent["sha256"]:
        raise InputError(
            f"training set {rec.id}: the kept entity rows {copy} changed since it was made "
            "(SHA-256 differs)",
        )
    if copy.suffix == ".parquet":
        return copy
    if copy.suffix == ".arrow":
        with pa.OSFile(str(copy), "rb") as source:  # read into memory, not mapped
            return pa.ipc.open_file(source).read_all()
    return read_entity_file(copy)
