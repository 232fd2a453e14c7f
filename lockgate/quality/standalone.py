"""``lockgate check TARGET --checks FILE``: run a check file on any table, no project.

Targets (and ``references:`` values):

* a Parquet / CSV / JSON / NDJSON file or a glob of them (by extension; read in place by
  DuckDB, only the columns the checks need);
* a Delta table folder (has ``_delta_log/``; read through ``deltalake`` → Arrow dataset);
* a PostgreSQL table: ``postgresql://user[:pw]@host[:port]/db?table=schema.name``
  (``postgresql+psycopg://`` works too). Streamed with ``COPY … TO STDOUT (FORMAT csv)``
  through psycopg into a temporary CSV file and loaded into DuckDB with the column types
  mapped from PostgreSQL's catalog (DuckDB's postgres extension is not needed).
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import duckdb

from lockgate.errors import ConfigError
from lockgate.quality.checkfile import CheckFile, load_check_file
from lockgate.quality.engine import AuditResult, audit, describe
from lockgate.quality.profile import warn_csv_rejects
from lockgate.quality.targets import register_target
from lockgate.quality.validate import validate_checks

log = logging.getLogger(__name__)

TARGET = "__lg_target"


def run_standalone(
    target: str,
    checks: str | Path | CheckFile,
    *,
    now: datetime | None = None,
    refs: Mapping[str, str] | None = None,
    sample_size: int = 5,
    con: duckdb.DuckDBPyConnection | None = None,
) -> AuditResult:
    """Load the check file, expose ``target`` and the references, validate statically
    (ConfigError, before reading data) and audit in count mode."""
    cf = checks if isinstance(checks, CheckFile) else load_check_file(checks)
    if not cf.raw_checks:
        cf = CheckFile(cf.path, cf.checks, cf.lines, cf.references, cf.dataset, list(cf.checks))
    con = con or duckdb.connect()
    tmp = tempfile.TemporaryDirectory(prefix="lockgate-check-")
    try:
        register_target(con, TARGET, target, tmp.name)
        references: dict[str, str] = {}
        ref_cols: dict[str, dict[str, str]] = {}
        for name, tgt in {**cf.references, **(refs or {})}.items():
            rel = f"__lg_ref_{name}"
            register_target(con, rel, tgt, tmp.name)
            references[name] = rel
            ref_cols[name] = describe(con, rel)
        columns = describe(con, TARGET)
        problems = validate_checks(
            cf.raw_checks, columns, file=cf.path, lines=cf.lines, references=ref_cols
        )
        if problems:
            raise ConfigError(problems)
        dataset = cf.dataset or _stem(target)
        result = audit(
            con,
            TARGET,
            cf.checks,
            references=references,
            mark=False,
            now=now,
            sample_size=sample_size,
            dataset=dataset,
        )
        warn_csv_rejects(con)
        return result
    finally:
        tmp.cleanup()


def _stem(target: str) -> str | None:
    if "://" in target:
        q = parse_qs(urlsplit(target).query).get("table")
        return q[0].split(".")[-1] if q else None
    name = Path(target.rstrip("/")).name
    return name.split(".")[0] if "*" not in name else None
