from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from lockgate.project import init_project, json_schema

# jsonschema is not a lockgate dependency: validate in-process when it is installed, else
# with a system python that has it, else only the structural tests below run.
_CHECK = """
import json, sys
import jsonschema
schema, docs = json.load(sys.stdin)
jsonschema.Draft202012Validator.check_schema(schema)
v = jsonschema.Draft202012Validator(schema)
print(json.dumps([[e.message for e in v.iter_errors(d)] for d in docs]))
"""


def _validate(schema: dict[str, Any], docs: list[Any]) -> list[list[str]]:
    try:
        import jsonschema
    except ImportError:
        py = shutil.which("python3")
        probe = py and subprocess.run([py, "-c", "import jsonschema"], capture_output=True)
        if not py or not probe or probe.returncode != 0:
            pytest.skip("jsonschema is not installed")
        out = subprocess.run(
            [py, "-c", _CHECK],
            input=json.dumps([schema, docs]),
            capture_output=True,
            text=True,
            check=True,
        )
        result: list[list[str]] = json.loads(out.stdout)
        return result
    jsonschema.Draft202012Validator.check_schema(schema)
    v = jsonschema.Draft202012Validator(schema)
    return [[e.message for e in v.iter_errors(d)] for d in docs]


def test_schema_accepts_example_files_and_rejects_bad_ones(tmp_path: Path) -> None:
    init_project(tmp_path, name="demo")
    good = [
        yaml.safe_load((tmp_path / f).read_text())
        for f in ["lockgate.yaml", "datasets/customers.yaml"]
    ]
    good.append({"datasets": [{"name": "a", "transform": {"python": "f"}, "gate": "block"}]})
    bad = [
        {"datasets": [{"name": "a", "transform": {"sql": "select 1"}, "descripton": "x"}]},
        {"datasets": [{"name": "a", "transform": {"sql": "select 1"}, "defined_in": "x"}]},
        {"datasets": [{"name": "a", "source": {"path": "a.csv"}}]},  # type: is required
        {"datasets": [{"name": "a", "transform": {}}]},
        {"datasets": [{"name": "a", "transform": {"sql": "s"}, "checks": [{"type": "nope"}]}]},
        {"name": "demo", "warehous": "wh"},
    ]
    results = _validate(json_schema(), good + bad)
    assert results[: len(good)] == [[] for _ in good]
    for doc, errors in zip(bad, results[len(good) :], strict=True):
        assert errors, doc


def test_separate_schemas() -> None:
    results = _validate(json_schema("datasets"), [{"name": "demo"}])
    assert results[0]  # lockgate.yaml is not a datasets file
    assert _validate(json_schema("project"), [{"name": "demo"}]) == [[]]


def test_schema_structure() -> None:
    s = json_schema()
    assert s["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    defs = s["$defs"]
    ds = defs["DatasetSpec"]
    assert ds["additionalProperties"] is False
    assert "defined_in" not in ds["properties"] and "defined_line" not in ds["properties"]
    assert "type" in defs["FileSourceSpec"]["required"]
    assert "type" in defs["NotNull"]["required"]
    assert {"$ref": "#/$defs/DatasetsFile"} in s["anyOf"]
