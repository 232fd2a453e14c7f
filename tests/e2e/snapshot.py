"""Canonical content of a warehouse, for comparing runs."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from deltalake import DeltaTable


def table_rows(path: Path, drop_meta: bool = True) -> list[dict[str, Any]]:
    t = DeltaTable(str(path)).to_pyarrow_table()
    rows = t.to_pylist()
    if drop_meta:
        rows = [{k: v for k, v in r.items() if not k.startswith("_lg_")} for r in rows]
    return sorted(rows, key=lambda r: json.dumps(r, sort_keys=True, default=str))


def snapshot(warehouse: Path) -> dict[str, str]:
    """table name → hash of its sorted rows (lockgate metadata columns dropped)."""
    out = {}
    for p in sorted(warehouse.iterdir()):
        if (p / "_delta_log").is_dir():
            rows = table_rows(p)
            out[p.name] = (
                hashlib.sha256(json.dumps(rows, sort_keys=True, default=str).encode()).hexdigest()[
                    :16
                ]
                + f":{len(rows)}"
            )
    return out
