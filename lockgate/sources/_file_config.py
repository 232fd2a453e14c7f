"""``type: file`` config: the model of ``source:``, the formats and the reader options."""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from lockgate.sources.base import SourceConfig


class FileFormat(StrEnum):
    CSV = "csv"
    JSON = "json"  # a JSON array of objects, or NDJSON (auto-detected)
    NDJSON = "ndjson"
    PARQUET = "parquet"


class FileSourceSpec(SourceConfig):
    """Local files: one path or a glob, relative to the project folder."""

    type: Literal["file"] = "file"
    path: str = Field(description="file path or glob, relative to the project folder")
    format: FileFormat | None = Field(default=None, description="default: from the extension")
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="reader options, e.g. delimiter, header, encoding, quote, date_format",
    )
    columns: dict[str, str] | None = Field(
        default=None,
        description="declared schema (column: SQL type) overriding inference, e.g. "
        "{order_id: BIGINT, amount: DECIMAL(12,2)}",
    )


_EXTENSIONS: dict[str, FileFormat] = {
    ".csv": FileFormat.CSV,
    ".tsv": FileFormat.CSV,
    ".txt": FileFormat.CSV,
    ".json": FileFormat.JSON,
    ".ndjson": FileFormat.NDJSON,
    ".jsonl": FileFormat.NDJSON,
    ".parquet": FileFormat.PARQUET,
    ".pq": FileFormat.PARQUET,
}
_COMPRESSION_SUFFIXES = (".gz", ".gzip", ".zst")


def format_of(path: str | Path) -> FileFormat | None:
    """The format a file's extension says (compression suffixes ignored), or None.

    >>> format_of("orders.csv.gz")
    <FileFormat.CSV: 'csv'>
    """
    name = Path(path).name.lower()
    for comp in _COMPRESSION_SUFFIXES:
        name = name.removesuffix(comp)
    return _EXTENSIONS.get(os.path.splitext(name)[1])


CSV_OPTIONS: dict[str, str] = {
    "delimiter": "delim",
    "delim": "delim",
    "sep": "delim",
    "header": "header",
    "quote": "quote",
    "escape": "escape",
    "encoding": "encoding",
    "date_format": "dateformat",
    "dateformat": "dateformat",
    "timestamp_format": "timestampformat",
    "timestampformat": "timestampformat",
    "nullstr": "nullstr",
    "null": "nullstr",
    "skip": "skip",
    "comment": "comment",
    "decimal_separator": "decimal_separator",
    "thousands": "thousands",
    "compression": "compression",
    "sample_size": "sample_size",
    "allow_quoted_nulls": "allow_quoted_nulls",
    "max_line_size": "max_line_size",
    "strict_mode": "strict_mode",
    "null_padding": "null_padding",
    "union_by_name": "union_by_name",
    "normalize_names": "normalize_names",
    "all_varchar": "all_varchar",
    "force_not_null": "force_not_null",
}
#: user option name → DuckDB ``read_json`` parameter
JSON_OPTIONS: dict[str, str] = {
    "date_format": "dateformat",
    "dateformat": "dateformat",
    "timestamp_format": "timestampformat",
    "timestampformat": "timestampformat",
    "compression": "compression",
    "maximum_object_size": "maximum_object_size",
    "union_by_name": "union_by_name",
    "sample_size": "sample_size",
    "maximum_depth": "maximum_depth",
    "convert_strings_to_integers": "convert_strings_to_integers",
    "field_appearance_threshold": "field_appearance_threshold",
    "map_inference_threshold": "map_inference_threshold",
}
#: user option name → DuckDB ``read_parquet`` parameter
PARQUET_OPTIONS: dict[str, str] = {
    "binary_as_string": "binary_as_string",
    "union_by_name": "union_by_name",
    "hive_partitioning": "hive_partitioning",
}
OPTIONS_BY_FORMAT: dict[FileFormat, dict[str, str]] = {
    FileFormat.CSV: CSV_OPTIONS,
    FileFormat.JSON: JSON_OPTIONS,
    FileFormat.NDJSON: JSON_OPTIONS,
    FileFormat.PARQUET: PARQUET_OPTIONS,
}
