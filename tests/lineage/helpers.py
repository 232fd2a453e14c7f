"""A small project with every kind of dataset, for lineage tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.run.helpers import csv_source, make_project, sql

RAW = """\
id,amount,status,cust
1,10.0,ok,a
2,20.0,ok,b
3,,ok,c
4,5.0,x,a
"""

PY = """\
import lockgate

@lockgate.transform(as_="arrow", lineage={"score": "clean.amount_eur", "id": ["clean.id"]})
def feat(clean):
    import pyarrow as pa
    return pa.table({"id": clean.column("id"), "score": clean.column("amount_eur")})

@lockgate.transform(as_="arrow")
def opaque_py(clean):
    return clean
"""


def lineage_datasets() -> list[dict[str, Any]]:
    """raw (CSV) → clean (SQL) → daily (SQL); clean → feat (Python, declared) → on_feat
    (SQL over it); clean → opaque_py (Python, no lineage)."""
    return [
        csv_source(
            "raw",
            "data/raw.csv",
            columns={"id": "BIGINT", "amount": "DOUBLE", "status": "VARCHAR", "cust": "VARCHAR"},
            checks=[{"type": "not_null", "column": "amount", "severity": "warn"}],
        ),
        sql(
            "clean",
            "select id, amount * 1.1 as amount_eur, status from raw where status <> 'x'",
            checks=[{"type": "between", "column": "amount_eur", "min": 0}],
        ),
        sql(
            "daily",
            "select status, sum(amount_eur) as total from clean group by status",
            write={"mode": "overwrite"},
            checks=[{"type": "between", "column": "total", "min": 0, "max": 1000}],
        ),
        {"name": "feat", "transform": {"python": "feat"}, "write": {"mode": "overwrite"}},
        sql("on_feat", "select id, score * 2 as double_score from feat"),
        {"name": "opaque_py", "transform": {"python": "opaque_py"}, "write": {"mode": "overwrite"}},
    ]


def lineage_project(root: Path, config: dict[str, Any] | None = None) -> Path:
    return make_project(
        root,
        lineage_datasets(),
        files={"data/raw.csv": RAW, "datasets/transforms.py": PY},
        config=config,
    )
