"""Feature views in a project: YAML definitions validated with file:line, the ingest stamp,
training sets through the Python API and the CLI (versions pinned in the metadata)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import lockgate
from lockgate.cli.app import app
from lockgate.errors import ConfigError, UsageError
from lockgate.features import training_set
from lockgate.project import load_project, validate_project

SPEND_CSV = """\
customer_id,day,spend,visits
1,2024-01-01,10.0,1
1,2024-01-05,20.0,2
2,2024-01-03,5.0,1
"""

FEATURES_YAML = """\
feature_views:
  - name: spend
    dataset: spend_daily
    entities: [customer_id]
    event_timestamp: day
    ttl: 7d
    features:
      - name: spend
        description: money spent that day
        owner: ml-team
      - visits
feature_services:
  - name: churn
    features: [spend]
"""


def _project(root: Path, features: str = FEATURES_YAML) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "lockgate.yaml").write_text("name: feat\n")
    (root / "datasets").mkdir(exist_ok=True)
    (root / "spend.csv").write_text(SPEND_CSV)
    (root / "datasets" / "spend.yaml").write_text(
        textwrap.dedent(
            """\
            datasets:
              - name: spend_daily
                source:
                  type: file
                  path: spend.csv
                  columns: {customer_id: BIGINT, day: TIMESTAMP, spend: DOUBLE, visits: INTEGER}
            """
        )
    )
    (root / "datasets" / "features.yaml").write_text(features)
    return root


def test_definitions_load_with_the_project(tmp_path: Path) -> None:
    project = load_project(_project(tmp_path / "p"))
    view = project.features.views["spend"]
    assert view.entities == ("customer_id",) and view.created_timestamp == "_lg_ingested_at"
    assert view.features[0].owner == "ml-team" and view.feature_names == ("spend", "visits")
    assert view.ttl_delta is not None and view.ttl_delta.days == 7
    assert project.features.services["churn"].features == ("spend",)


def test_bad_definitions_are_reported_with_file_and_line(tmp_path: Path) -> None:
    bad = textwrap.dedent(
        """\
        feature_views:
          - name: spend
            dataset: spend_daly
            entities: [customer_id]
            event_timestamp: day
            features: [spend]
          - name: other
            dataset: spend_daily
            entities: [customer]
            event_timestamp: day
            ttl: -3d
            features: [spend]
          - name: third
            dataset: spend_daily
            entities: [customer_id]
            event_timestamp: day
            features: [spnd]
            colour: red
        feature_services:
          - name: churn
            features: [spend, nope]
        """
    )
    problems = validate_project(_project(tmp_path / "p", bad))
    text = [f"{p.file}:{p.line}: {p.message}" for p in problems]
    assert any("features.yaml:3:" in t and "unknown dataset 'spend_daly'" in t for t in text)
    assert any("features.yaml:11:" in t and "ttl" in t for t in text), text
    assert any("features.yaml:18:" in t and "unknown key 'colour'" in t for t in text), text
    assert any("churn" in t and "unknown feature view 'nope'" in t for t in text), text
    hints = [p.hint or "" for p in problems]
    assert any("spend_daily" in h for h in hints)


def test_unknown_columns_point_at_their_line(tmp_path: Path) -> None:
    bad = FEATURES_YAML.replace("entities: [customer_id]", "entities: [customer]").replace(
        "      - visits", "      - visitz"
    )
    problems = validate_project(_project(tmp_path / "p", bad))
    text = {(p.line, p.message) for p in problems}
    assert (
        4,
        "feature view 'spend': column 'customer' is not a column of dataset 'spend_daily'",
    ) in text
    assert any(line == 11 and "'visitz'" in m for line, m in text), text
    with pytest.raises(ConfigError):
        load_project(tmp_path / "p")


def test_training_set_from_a_published_dataset(tmp_path: Path) -> None:
    root = _project(tmp_path / "p")
    res = lockgate.run(root)
    assert res.ok, res
    published = pq.ParquetDataset(root / "warehouse" / "spend_daily").read()
    assert "_lg_ingested_at" in published.column_names  # stamped at publish
    (stamp,) = set(published.column("_lg_ingested_at").to_pylist())
    labels = pa.table(
        {
            "customer_id": [2, 1, 1, 3, 1],
            "event_timestamp": pa.array(
                [stamp.replace(tzinfo=None)] * 4 + [stamp.replace(tzinfo=None).replace(year=2023)],
                pa.timestamp("us"),
            ),
            "label": [0, 1, 0, 1, 1],
        }
    )
    out = training_set(root, "churn", labels)
    assert out.column("label").to_pylist() == [0, 1, 0, 1, 1]
    # stamped now, event days in January 2024: the 7-day TTL has expired by the stamp's time
    assert out.column("spend").to_pylist() == [None] * 5
    meta = json.loads(out.schema.metadata[b"lockgate.feature_versions"])
    assert meta["spend"]["dataset"] == "spend_daily" and meta["spend"]["version"] == 0


def test_cli_training_set(tmp_path: Path) -> None:
    root = _project(
        tmp_path / "p",
        FEATURES_YAML.replace("    ttl: 7d\n", "").replace(
            "    event_timestamp: day\n", "    event_timestamp: day\n    created_timestamp: day\n"
        ),
    )
    assert lockgate.run(root).ok
    ents = tmp_path / "labels.csv"
    ents.write_text("customer_id,event_timestamp\n1,2024-01-04\n1,2024-01-05\n9,2024-01-05\n")
    out = tmp_path / "ts.parquet"
    r = CliRunner().invoke(
        app,
        [
            "features",
            "training-set",
            "spend",
            "--entities",
            str(ents),
            "--out",
            str(out),
            "-p",
            str(root),
            "--json",
        ],
    )
    assert r.exit_code == 0, r.output
    table = pq.read_table(out)
    assert table.column("spend").to_pylist() == [10.0, 20.0, None]
    assert json.loads(r.output)["views"]["spend"]["version"] == 0


def test_unknown_feature_names_say_what_exists(tmp_path: Path) -> None:
    root = _project(tmp_path / "p")
    with pytest.raises(UsageError, match="unknown feature view or service 'chrun'"):
        training_set(root, "chrun", pa.table({"customer_id": [1]}))
