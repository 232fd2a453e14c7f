"""``lockgate check TARGET --checks FILE``: run a check file on any table, no project.

Targets (and ``references:`` values):

* a Parquet file or glob (read in place by DuckDB, only the columns the checks need);
* a CSV / JSON / NDJSON file or glob (by extension, ``.gz``/``.zst`` allowed), read record
  by record by the project file-source reader: a record that cannot be read (a value that
  does not convert, a malformed line) is *rejected* — counted and sampled with its file,
  line and reason in :attr:`StandaloneResult.rejected` — never silently left out, and the
  counts do not depend on which columns the checks read;
* a Delta table folder (has ``_delta_log/``; read through ``deltalake`` → Arrow dataset);
* a PostgreSQL table: ``postgresql://user[:pw]@host[:port]/db?table=schema.name``
  (``postgresql+psycopg://`` works too). Streamed with ``COPY … TO STDOUT (FORMAT csv)``
  through psycopg into a temporary CSV file and loaded into DuckDB with the column types
  mapped from PostgreSQL's catalog (DuckDB's postgres extension is not needed).
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

from lockgate.engine.session import as_engine, duckdb_connection
from lockgate.errors import ConfigError
from lockgate.quality.checkfile import CheckFile, load_check_file
from lockgate.quality.engine import AuditResult, audit, describe
from lockgate.quality.validate import validate_checks
from lockgate.sources.targets import TargetRead, register_target, target_label

if TYPE_CHECKING:
    from lockgate.engine.session import EngineLike

log = logging.getLogger(__name__)

TARGET = "__lg_target"


@dataclass
class StandaloneResult(AuditResult):
    """An :class:`AuditResult` plus what reading the inputs rejected.

    ``total_rows`` counts the rows the checks saw; ``rejected`` the target's records that
    could not be read (so ``records = total_rows + rejected``); ``reference_rejected`` the
    same per reference. The result passes only when no error-severity check failed *and*
    at most ``max_rejected`` records (target and references together) were rejected.
    """

    target: str = ""
    rejected: TargetRead | None = None
    reference_rejected: dict[str, TargetRead] = field(default_factory=dict)
    max_rejected: int = 0

    @property
    def records(self) -> int:
        return self.total_rows + self.rejected_count

    @property
    def rejected_count(self) -> int:
        return self.rejected.rejected if self.rejected else 0

    @property
    def all_rejected(self) -> int:
        return self.rejected_count + sum(r.rejected for r in self.reference_rejected.values())

    @property
    def passed(self) -> bool:
        return super().passed and self.all_rejected <= self.max_rejected


def run_standalone(
    target: str,
    checks: str | Path | CheckFile,
    *,
    now: datetime | None = None,
    refs: Mapping[str, str] | None = None,
    sample_size: int = 5,
    con: EngineLike | None = None,
    max_rejected: int = 0,
) -> StandaloneResult:
    """Load the check file, expose ``target`` and the references, validate statically
    (ConfigError, before reading data) and audit in count mode.

    Records of the target or a reference that cannot be read (see
    :func:`~lockgate.sources.targets.register_target`) are counted in the result's
    ``rejected`` and fail it when there are more than ``max_rejected``."""
    cf = checks if isinstance(checks, CheckFile) else load_check_file(checks)
    if not cf.raw_checks:
        cf = CheckFile(cf.path, cf.checks, cf.lines, cf.references, cf.dataset, list(cf.checks))
    eng = as_engine(con)
    raw = duckdb_connection(eng)  # the target readers are DuckDB's
    tmp = tempfile.TemporaryDirectory(prefix="lockgate-check-")
    try:
        read = register_target(raw, TARGET, target, tmp.name)
        references: dict[str, str] = {}
        ref_cols: dict[str, dict[str, str]] = {}
        ref_reads: dict[str, TargetRead] = {}
        for name, tgt in {**cf.references, **(refs or {})}.items():
            rel = f"__lg_ref_{name}"
            ref_read = register_target(raw, rel, tgt, tmp.name)
            if ref_read.rejected:
                ref_reads[name] = ref_read
            references[name] = rel
            ref_cols[name] = describe(eng, rel)
        columns = describe(eng, TARGET)
        problems = validate_checks(
            cf.raw_checks, columns, file=cf.path, lines=cf.lines, references=ref_cols
        )
        if problems:
            raise ConfigError(problems)
        dataset = cf.dataset or _stem(target)
        result = audit(
            eng,
            TARGET,
            cf.checks,
            references=references,
            mark=False,
            now=now,
            sample_size=sample_size,
            dataset=dataset,
        )
        fields = {f.name: getattr(result, f.name) for f in dataclasses.fields(AuditResult)}
        return StandaloneResult(
            **fields,
            target=target_label(target),
            rejected=read,
            reference_rejected=ref_reads,
            max_rejected=max_rejected,
        )
    finally:
        tmp.cleanup()
        if con is None:
            eng.close()


def _stem(target: str) -> str | None:
    if "://" in target:
        q = parse_qs(urlsplit(target).query).get("table")
        return q[0].split(".")[-1] if q else None
    name = Path(target.rstrip("/")).name
    return name.split(".")[0] if "*" not in name else None
