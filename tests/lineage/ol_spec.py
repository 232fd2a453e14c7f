"""Validate OpenLineage events against the official JSON schemas.

The spec files (``spec/OpenLineage.json`` and ``spec/facets/*.json`` of the OpenLineage
repository, Apache-2.0) are read from ``tests/lineage/spec/`` or, beside the repository, from
``shared/openlineage-spec/``; tests that need them skip, saying so, when neither is there.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).parent
CANDIDATES = (HERE / "spec", HERE.parents[2] / "shared" / "openlineage-spec")


def spec_dir() -> Path:
    for d in CANDIDATES:
        if (d / "OpenLineage.json").is_file():
            return d
    pytest.skip(
        "OpenLineage spec JSON not found (put spec/OpenLineage.json and spec/facets/*.json of "
        f"the OpenLineage repository in one of {[str(c) for c in CANDIDATES]})"
    )


class SpecValidator:
    """The event against ``OpenLineage.json``, each facet against its own facet schema
    (found by the file name in its ``_schemaURL``)."""

    def __init__(self, root: Path) -> None:
        from jsonschema import Draft202012Validator
        from referencing import Registry, Resource

        self.schemas: dict[str, dict[str, Any]] = {}
        resources = []
        for path in [root / "OpenLineage.json", *sorted((root / "facets").glob("*.json"))]:
            schema = json.loads(path.read_text(encoding="utf-8"))
            self.schemas[path.name] = schema
            resources.append((schema["$id"], Resource.from_contents(schema)))
        self.registry = Registry().with_resources(resources)
        self._validator = Draft202012Validator
        self.facets_checked: set[str] = set()

    def _validate(self, instance: Any, schema: dict[str, Any]) -> None:
        self._validator(schema, registry=self.registry).validate(instance)

    def event(self, event: dict[str, Any]) -> None:
        self._validate(event, self.schemas["OpenLineage.json"])
        for facet in _facets(event):
            url = str(facet["_schemaURL"])
            base, _, pointer = url.partition("#")
            file = base.rsplit("/", 1)[1]
            schema = self.schemas.get(file)
            if schema is None:
                assert url.startswith("https://lockgate.dev/"), f"no spec file for {url}"
                continue
            ref = {"$ref": schema["$id"] + "#" + pointer} if pointer else schema
            self._validate(facet, ref)
            self.facets_checked.add(file)


def _facets(event: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    out += (event.get("run", {}).get("facets") or {}).values()
    out += (event.get("job", {}).get("facets") or {}).values()
    for ds in [*(event.get("inputs") or []), *(event.get("outputs") or [])]:
        out += (ds.get("facets") or {}).values()
        out += (ds.get("inputFacets") or {}).values()
        out += (ds.get("outputFacets") or {}).values()
    return out
