"""Schema compatibility between a batch and the Delta table it is published into.

delta-rs casts a batch to the table schema *silently* (a ``VARCHAR`` column of digits lands in a
``BIGINT`` column; ``'abc'`` fails deep inside the writer with no column name). So before any
write we compare the two Arrow schemas ourselves and fail with the table and column named.

Accepted without a schema change (delta-rs casts losslessly):
- identical types after normalising string/binary flavours (``large_string``, ``string_view``);
- integer widening (``int32`` → ``int64``; unsigned into a strictly wider signed type);
- ``float32`` → ``float64``; decimal into a decimal with the same scale and no fewer integer
  digits; any timestamp unit into a timestamp column of the same time-zone-awareness;
- an all-null (``null`` type) column into any column;
- lists/structs whose children are compatible by these same rules.

Everything else is an incompatible type change: a terminal :class:`SchemaContractError`.
"""

from __future__ import annotations

from typing import Literal

import pyarrow as pa

from lockgate.errors import SchemaContractError

SchemaMode = Literal["merge", "overwrite"]

_INT_BITS = {
    pa.int8(): 8,
    pa.int16(): 16,
    pa.int32(): 32,
    pa.int64(): 64,
}
_UINT_BITS = {
    pa.uint8(): 8,
    pa.uint16(): 16,
    pa.uint32(): 32,
    pa.uint64(): 64,
}


def _normalise(t: pa.DataType) -> pa.DataType:
    if pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return pa.string()
    if pa.types.is_large_binary(t) or pa.types.is_binary_view(t):
        return pa.binary()
    return t


def type_accepts(table_type: pa.DataType, batch_type: pa.DataType) -> bool:
    """Whether values of ``batch_type`` can be written into a ``table_type`` column losslessly.

    >>> type_accepts(pa.int64(), pa.int32()), type_accepts(pa.int32(), pa.int64())
    (True, False)
    """
    t, b = _normalise(table_type), _normalise(batch_type)
    if t == b or pa.types.is_null(b):
        return True
    if t in _INT_BITS:
        if b in _INT_BITS:
            return _INT_BITS[b] <= _INT_BITS[t]
        if b in _UINT_BITS:
            return _UINT_BITS[b] < _INT_BITS[t]
        return False
    if pa.types.is_float64(t):
        return bool(pa.types.is_float32(b) or pa.types.is_float16(b))
    if pa.types.is_decimal(t) and pa.types.is_decimal(b):
        assert isinstance(t, pa.Decimal128Type | pa.Decimal256Type)
        assert isinstance(b, pa.Decimal128Type | pa.Decimal256Type)
        return bool(b.scale == t.scale and b.precision <= t.precision)
    if pa.types.is_timestamp(t) and pa.types.is_timestamp(b):
        assert isinstance(t, pa.TimestampType) and isinstance(b, pa.TimestampType)
        return (t.tz is None) == (b.tz is None)
    if pa.types.is_date(t) and pa.types.is_date(b):
        return True
    if _is_list(t) and _is_list(b):
        return type_accepts(t.value_type, b.value_type)
    if pa.types.is_struct(t) and pa.types.is_struct(b):
        assert isinstance(t, pa.StructType) and isinstance(b, pa.StructType)
        t_fields = {t.field(i).name: t.field(i).type for i in range(t.num_fields)}
        for i in range(b.num_fields):
            f = b.field(i)
            if f.name in t_fields and not type_accepts(t_fields[f.name], f.type):
                return False
        return True
    return False


def _is_list(t: pa.DataType) -> bool:
    return bool(pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_list_view(t))


def check_compatible(
    table: str,
    table_schema: pa.Schema,
    batch_schema: pa.Schema,
    schema_mode: SchemaMode | None,
) -> list[str]:
    """Raise :class:`SchemaContractError` if ``batch_schema`` cannot be published into the table.

    ``schema_mode=None``: the batch must have exactly the table's columns.
    ``"merge"``: new columns are added, missing columns are written as null.
    ``"overwrite"``: anything goes (the caller replaces the whole table); nothing is checked.
    Returns the names of columns the batch adds (for logging).
    """
    if schema_mode == "overwrite":
        return []
    table_types = {f.name: f.type for f in table_schema}
    added = [f.name for f in batch_schema if f.name not in table_types]
    if schema_mode is None:
        missing = [n for n in table_types if n not in batch_schema.names]
        if added or missing:
            parts = []
            if added:
                parts.append("new column(s) " + ", ".join(map(repr, added)))
            if missing:
                parts.append("missing column(s) " + ", ".join(map(repr, missing)))
            raise SchemaContractError(
                f"table '{table}': batch schema differs from the table: " + "; ".join(parts),
                hint="publish with schema_mode='merge' to add columns (missing ones become "
                "null), or schema_mode='overwrite' with a full overwrite to replace the schema",
            )
    bad = [
        f"'{f.name}' is {table_types[f.name]} in the table but {f.type} in the batch"
        for f in batch_schema
        if f.name in table_types and not type_accepts(table_types[f.name], f.type)
    ]
    if bad:
        raise SchemaContractError(
            f"table '{table}': incompatible column type change: " + "; ".join(bad),
            hint="cast the column back to the table's type in the transform, or rebuild the "
            "table with a full refresh (write mode overwrite, schema_mode='overwrite')",
        )
    return added
