"""JSON Schema (draft 2020-12) of dataset YAML files and ``lockgate.yaml``, for editors.

Generated from the pydantic models, so it never drifts from what the loader accepts
(the loader stays the authority: it also checks references, SQL and cycles).
"""

from __future__ import annotations

import copy
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import models_json_schema

from lockgate.project.models import DatasetSpec, ProjectConfig
from lockgate.sources import on_register

DRAFT = "https://json-schema.org/draft/2020-12/schema"
_LOADER_FIELDS = ("defined_in", "defined_line")

SchemaKind = Literal["all", "datasets", "project"]


class DatasetsFile(BaseModel):
    """A dataset YAML file: ``datasets:`` followed by a list of datasets."""

    model_config = ConfigDict(frozen=True, extra="forbid", title="lockgate datasets file")

    datasets: list[DatasetSpec] = Field(description="the datasets defined in this file")


def _refresh() -> None:
    """A source registered later (an adapter outside the package) joins the schema too."""
    DatasetsFile.model_rebuild(force=True)


on_register(_refresh)


def json_schema(kind: SchemaKind = "all") -> dict[str, Any]:
    """The JSON Schema of dataset files (``kind="datasets"``), of ``lockgate.yaml``
    (``"project"``), or of either (``"all"``: ``anyOf`` both).

    >>> json_schema("datasets")["$schema"]
    'https://json-schema.org/draft/2020-12/schema'
    """
    _, top = models_json_schema(
        [(DatasetsFile, "validation"), (ProjectConfig, "validation")],
        ref_template="#/$defs/{model}",
    )
    defs: dict[str, Any] = copy.deepcopy(top.get("$defs", {}))
    _fix_defs(defs)
    refs = {"datasets": "#/$defs/DatasetsFile", "project": "#/$defs/ProjectConfig"}
    schema: dict[str, Any] = {"$schema": DRAFT}
    if kind == "all":
        schema["title"] = "lockgate project file (lockgate.yaml or a datasets file)"
        schema["anyOf"] = [{"$ref": refs["datasets"]}, {"$ref": refs["project"]}]
    else:
        schema["title"] = defs[refs[kind].rsplit("/", 1)[1]].get("title", kind)
        schema["$ref"] = refs[kind]
    schema["$defs"] = defs
    return schema


def _fix_defs(defs: dict[str, Any]) -> None:
    """Make the generated schema say what the loader accepts.

    - drop the loader-only fields of DatasetSpec;
    - a discriminated union needs its discriminator key even when the model has a default
      for it (``source: {type: file, ...}``);
    - ``transform`` with SQL needs exactly one of ``sql``/``sql_file``.
    """
    ds = defs.get("DatasetSpec", {})
    for f in _LOADER_FIELDS:
        ds.get("properties", {}).pop(f, None)
    if "required" in ds:
        ds["required"] = [r for r in ds["required"] if r not in _LOADER_FIELDS]
    for name, disc in _discriminated(defs):
        target = defs.get(name)
        if target is not None and disc not in target.get("required", []):
            target.setdefault("required", []).append(disc)
    sql = defs.get("SqlTransformSpec")
    if sql is not None:
        sql["oneOf"] = [{"required": ["sql"]}, {"required": ["sql_file"]}]


def _discriminated(node: Any) -> list[tuple[str, str]]:
    """(model name, discriminator property) of every discriminator mapping in ``node``."""
    found: list[tuple[str, str]] = []
    if isinstance(node, dict):
        disc = node.get("discriminator")
        if isinstance(disc, dict) and isinstance(disc.get("mapping"), dict):
            for ref in disc["mapping"].values():
                found.append((str(ref).rsplit("/", 1)[1], str(disc.get("propertyName"))))
        for v in node.values():
            found += _discriminated(v)
    elif isinstance(node, list):
        for v in node:
            found += _discriminated(v)
    return found
