"""``lockgate init``: write a small project that runs as is.

It reads a CSV with a few defects (a missing e-mail, a duplicated id, an unknown country),
cleans it with SQL guarded by three checks, and aggregates it with a Python transform, so
the first run shows quarantine at work.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from lockgate.errors import UsageError
from lockgate.project.models import NAME_MAX_LENGTH, name_problem

logger = logging.getLogger(__name__)

_LOCKGATE_YAML = """\
# lockgate project: see `lockgate validate` and `lockgate schema`
name: {name}
warehouse: warehouse            # Delta tables, one folder per dataset
state: sqlite:///.lockgate/state.db
datasets_dir: datasets
defaults:
  gate: quarantine              # publish passing rows, keep failing rows with reasons
  schema_policy: evolve
"""

_CUSTOMERS_CSV = """\
customer_id,name,email,country,signup_date
1,Ada Lovelace,ada@example.com,GB,2024-01-05
2,Grace Hopper,grace@example.com,US,2024-01-09
3,Alan Turing,,GB,2024-02-11
4,Katherine Johnson,katherine@example.com,US,2024-02-20
4,Katherine J.,kj@example.com,US,2024-02-21
5,Hedy Lamarr,hedy@example.com,AT,2024-03-02
6,Edsger Dijkstra,edsger@example.com,NL,2024-03-15
"""

_DATASETS_YAML = """\
# Datasets: a source reads files, a transform reads datasets (SQL or Python).
# `lockgate validate` checks this file; `lockgate schema` gives editors its JSON Schema.
datasets:
  - name: raw_customers
    description: Customers as exported by the CRM (one CSV).
    source:
      type: file
      path: data/customers.csv
      columns:                          # the declared schema: values that do not fit are
        customer_id: BIGINT             # quarantined with their file, line and reason
        name: VARCHAR
        email: VARCHAR
        country: VARCHAR
        signup_date: DATE
    write: {mode: overwrite}
    checks:
      - {type: row_count, min: 1}

  - name: customers
    description: Cleaned customers; bad rows go to customers__quarantine.
    transform: {sql_file: customers.sql}   # reads raw_customers: dependencies come from the SQL
    write: {mode: overwrite}
    gate: quarantine                       # publish good rows, quarantine bad ones
    checks:
      - {type: not_null, column: email}
      - {type: unique, column: customer_id}
      - {type: accepted_values, column: country, values: [GB, US, NL, DE, FR]}

  - name: customers_by_country
    description: Number of customers per country (Python transform in customers.py).
    transform: {python: customers_by_country}
    write: {mode: overwrite}
    checks:
      - {type: not_null, column: country}
"""

_CUSTOMERS_SQL = """\
-- Silver customers: trimmed names, lower-case emails, upper-case country codes.
SELECT
  customer_id,
  trim(name) AS name,
  lower(email) AS email,
  upper(country) AS country,
  signup_date
FROM raw_customers
"""

_CUSTOMERS_PY = '''\
"""Python transforms: each parameter names an upstream dataset."""

from lockgate import transform


@transform                        # inputs = parameter names (DuckDB relations by default)
def customers_by_country(customers):
    """`customers` arrives as a DuckDB relation; return a relation, Arrow table or DataFrame."""
    return customers.aggregate("country, count(*) AS customers", "country")
'''

_GITIGNORE = """\
warehouse/
.lockgate/
"""


def init_project(path: Path, name: str | None = None) -> list[Path]:
    """Create a working example project in ``path``; return the files written.

    Raises :class:`UsageError` when ``path`` already holds a ``lockgate.yaml``. Other files
    that already exist are left untouched (and not returned).
    """
    path = Path(path).expanduser()
    if (path / "lockgate.yaml").exists():
        raise UsageError(
            f"'{path / 'lockgate.yaml'}' already exists: not overwriting a project",
            hint="choose an empty folder: lockgate init NEW_FOLDER",
        )
    if path.exists() and not path.is_dir():
        raise UsageError(f"'{path}' exists and is not a folder")
    project_name = name if name is not None else _name_from(path)
    problem = name_problem(project_name, "project name")
    if problem is not None:
        raise UsageError(problem, hint="e.g. --name my_project")
    files = {
        "lockgate.yaml": _LOCKGATE_YAML.format(name=project_name),
        ".gitignore": _GITIGNORE,
        "data/customers.csv": _CUSTOMERS_CSV,
        "datasets/customers.yaml": _DATASETS_YAML,
        "datasets/customers.sql": _CUSTOMERS_SQL,
        "datasets/customers.py": _CUSTOMERS_PY,
    }
    written: list[Path] = []
    for rel, text in files.items():
        target = path / rel
        if target.exists():
            logger.info("keeping existing %s", target)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        written.append(target)
    return written


def _name_from(path: Path) -> str:
    base = re.sub(r"[^A-Za-z0-9]+", "_", path.resolve().name).strip("_").lower()
    base = base or "lockgate_project"
    base = f"p_{base}" if base[0].isdigit() else base
    return base[:NAME_MAX_LENGTH].rstrip("_")
