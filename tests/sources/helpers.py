"""Stage a file dataset straight from its DatasetSpec (what the run loop does, minus the loop)."""

from __future__ import annotations

from pathlib import Path

import duckdb
from pydantic import JsonValue

from lockgate.project.models import DatasetSpec
from lockgate.project.project import source_request
from lockgate.sources import ResumeToken, Source, StagedSource
from lockgate.sources import source_for as _source_for
from lockgate.sources.files import FileSource


def source_for(spec: DatasetSpec, root: Path) -> Source:
    return _source_for(source_request(spec, root))


def stage_source(
    con: duckdb.DuckDBPyConnection,
    spec: DatasetSpec,
    root: Path,
    table: str,
    *,
    min_cursor: object | None = None,
    resume: ResumeToken = None,
) -> StagedSource:
    source = source_for(spec, root)
    assert isinstance(source, FileSource)
    return source.stage_files(con, table, min_cursor=min_cursor, resume=resume)


def fingerprint(spec: DatasetSpec, root: Path) -> JsonValue:
    return source_for(spec, root).fingerprint()
