"""Lossless, pickle-free serialisation of metadata: typed JSON and Parquet tables.

* :func:`to_json` / :func:`from_json` carry None, bool, int, float (also NaN/inf), str (any
  unicode), lists, dicts with string keys (nested), ``datetime``/``date``/``pandas.Timestamp``,
  and NumPy scalars/small arrays. Anything else raises :class:`~eegbench.errors.MetadataError`
  instead of being silently dropped or pickled.
* :func:`frame_to_parquet` / :func:`frame_from_parquet` store a pandas DataFrame as Parquet bytes
  (pyarrow); object columns that Parquet cannot type (dicts, lists, mixed values) are stored as
  typed-JSON strings and restored on read, so ``assert_frame_equal`` holds after a round trip.
"""

from __future__ import annotations

import datetime as _dt
import io
import json
import math
import sys
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import MetadataError

if TYPE_CHECKING:
    import pandas as pd

# pandas and pyarrow are imported on first use (``import eegbench`` and ``open`` need neither:
# see :mod:`eegbench._frame`); a pandas value can only exist once pandas is imported.

_JSON_COLUMNS_KEY = b"eegbench.json_columns"


def _encode(value: Any) -> Any:
    pd = sys.modules.get("pandas")
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (float, np.floating)):
        f = float(value)
        return f if math.isfinite(f) else {"$float": repr(f)}
    if pd is not None and isinstance(value, pd.Timestamp):
        if value is pd.NaT:
            return {"$nat": True}
        return {"$timestamp": value.isoformat()}
    if isinstance(value, _dt.datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, _dt.date):
        return {"$date": value.isoformat()}
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biuf":
            raise MetadataError(f"cannot store a NumPy array of dtype {value.dtype} in metadata")
        return {"$ndarray": [_encode(v) for v in value.ravel().tolist()], "dtype": value.dtype.str,
                "shape": list(value.shape)}
    if isinstance(value, dict):
        out = {}
        for key, v in value.items():
            if not isinstance(key, str):
                raise MetadataError(f"metadata dict keys must be strings, got {key!r} ({type(key).__name__})")
            out[key] = _encode(v)
        if any(k.startswith("$") for k in out):
            return {"$dict": out}
        return out
    if pd is not None and value is pd.NA:
        return {"$na": True}
    raise MetadataError(
        f"cannot store a {type(value).__name__} in metadata without pickle; convert it to "
        "str, number, bool, None, list, dict, date or datetime first")


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if isinstance(value, dict):
        if "$float" in value:
            return float(value["$float"])
        if "$datetime" in value:
            return _dt.datetime.fromisoformat(value["$datetime"])
        if "$timestamp" in value:
            import pandas as pd

            return pd.Timestamp(value["$timestamp"])
        if "$date" in value:
            return _dt.date.fromisoformat(value["$date"])
        if "$nat" in value:
            import pandas as pd

            return pd.NaT
        if "$na" in value:
            import pandas as pd

            return pd.NA
        if "$ndarray" in value:
            return np.array(_decode(value["$ndarray"]), dtype=value["dtype"]).reshape(value["shape"])
        if "$dict" in value:
            return {k: _decode(v) for k, v in value["$dict"].items()}
        return {k: _decode(v) for k, v in value.items()}
    return value


def to_json(value: Any) -> str:
    """Typed JSON text for ``value`` (see module docstring for supported types)."""
    return json.dumps(_encode(value), ensure_ascii=False, allow_nan=False, sort_keys=False)


def from_json(text: str) -> Any:
    """Inverse of :func:`to_json`."""
    return _decode(json.loads(text))


def _needs_json(series: pd.Series) -> bool:
    if series.dtype != object:
        return False
    kinds = {type(v) for v in series if v is not None and not (isinstance(v, float) and math.isnan(v))}
    return bool(kinds) and (len(kinds) > 1 or not kinds <= {str, bytes})


def frame_to_parquet(frame: pd.DataFrame) -> bytes:
    """Serialise a DataFrame to Parquet bytes (no dictionary encoding of floats, zstd)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not all(isinstance(c, str) for c in frame.columns):
        raise MetadataError("table column names must be strings")
    frame = frame.copy()
    json_cols = [c for c in frame.columns if _needs_json(frame[c])]
    for col in json_cols:
        frame[col] = [None if v is None else to_json(v) for v in frame[col]]
    try:
        # a frame without columns keeps its row count only through its index
        table = pa.Table.from_pandas(frame, preserve_index=True if frame.shape[1] == 0 else None)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError) as exc:
        raise MetadataError(f"cannot store table as Parquet: {exc}") from exc
    meta = dict(table.schema.metadata or {})
    meta[_JSON_COLUMNS_KEY] = json.dumps(json_cols).encode()
    table = table.replace_schema_metadata(meta)
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd", use_dictionary=False, write_statistics=False)
    return sink.getvalue()


def frame_from_parquet(data: bytes) -> pd.DataFrame:
    """Inverse of :func:`frame_to_parquet`."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    # a buffer, not a Python file object, read in this thread: pq.read_table(io.BytesIO) left the
    # file object to be released by an Arrow pool thread after returning (that thread then takes
    # the GIL: a crash under tracemalloc on CPython 3.11, gh-128679)
    table = pq.ParquetFile(pa.BufferReader(data)).read(use_threads=False)
    json_cols = json.loads((table.schema.metadata or {}).get(_JSON_COLUMNS_KEY, b"[]"))
    frame = table.to_pandas()
    for col in json_cols:
        frame[col] = pd.Series([from_json(v) if isinstance(v, str) else None for v in frame[col]],
                               index=frame.index, dtype=object)
    return frame
