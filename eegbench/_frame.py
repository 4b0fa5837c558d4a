"""A small read-only table over a stored Parquet table, so :func:`eegbench.open` needs no pandas.

``import pandas`` costs 0.3-1 s here; opening a store only has to *validate* its metadata tables
(recordings, channels, annotations, history) and keep the description and window tables for later.
:class:`Table` parses the Parquet bytes with pyarrow (imported on first use) into NumPy columns and
offers the few DataFrame operations :mod:`eegbench.validate` uses (``columns``, ``len``, ``empty``,
``t[col].to_numpy()``, iteration over a column, ``iloc`` with slices / integer arrays,
``to_dict("records")``, ``sort_values``). Values match ``pyarrow.Table.to_pandas()``: integers
with nulls become float64 NaN, strings and nested values stay Python objects (None for null).

:meth:`Table.to_pandas` gives the same DataFrame as :func:`eegbench.tables.frame_from_parquet`
(typed-JSON columns decoded); :class:`eegbench.Dataset` calls it the first time its
``description`` or ``windows`` is read. A table pickles as its Parquet bytes (plain data).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import numpy as np

#: column conversions of slices (iloc) of one table after which the table is converted whole once
#: and sliced: one recording's rows convert only themselves, a loop over every recording is linear
_SLICES_BEFORE_WHOLE = 256


class Column:
    """One column: ``to_numpy()``, ``tolist()``, iteration (Python scalars, as pandas yields)."""

    __slots__ = ("values",)

    def __init__(self, values: np.ndarray) -> None:
        self.values = values

    def to_numpy(self) -> np.ndarray:
        return self.values

    def tolist(self) -> list[Any]:
        return self.values.tolist()

    def __iter__(self) -> Iterator[Any]:
        return iter(self.values.tolist())

    def __len__(self) -> int:
        return len(self.values)


class _ILoc:
    __slots__ = ("table",)

    def __init__(self, table: Table) -> None:
        self.table = table

    def __getitem__(self, index: Any) -> Table:
        t = self.table
        if isinstance(index, (int, np.integer)):
            raise TypeError("Table.iloc takes a slice or an integer array, not one row")
        if t._arrow is not None and len(t._cols) < len(t._names) and isinstance(index, slice) \
                and index.step in (None, 1):
            start, stop, _ = index.indices(t._n)  # rows of the Parquet table, converted when read
            sub = Table._from_arrow(t._arrow.slice(start, max(stop - start, 0)), t._names, t._json)
            sub._parent, sub._start = t, start
            return sub
        cols = t._all()
        return Table._from_columns({c: v[index] for c, v in cols.items()}, len(range(t._n)[index])
                                   if isinstance(index, slice) else len(np.asarray(index)), t._json)


class Table:
    """A read-only table parsed from the Parquet bytes :func:`eegbench.tables.frame_to_parquet` wrote."""

    def __init__(self, data: bytes | None = None, *, n_rows: int | None = None, where: str | None = None) -> None:
        """``Table(data)``: the table stored in ``data``; ``Table(n_rows=n)``: ``n`` rows, no columns;
        ``Table(data, n_rows=n)``: the table in ``data``, known to have ``n`` rows (its length needs no
        parsing). ``where``: the store and table named by the error if the bytes turn out unreadable."""
        self._where = where
        self._data = None if data is None else bytes(data)
        self._cols: dict[str, np.ndarray] = {}
        self._json: list[str] = []
        self._n = 0 if n_rows is None else int(n_rows)
        self._parsed = data is None
        self._arrow: Any = None  # the parsed pyarrow table: each column converted on first use
        self._names: list[str] = []
        self._parent: Table | None = None  # a slice (iloc) of this Parquet-backed table, from row _start
        self._start = 0
        self._served = 0  # columns of slices converted (see _col)
        self._known_n = data is not None and n_rows is not None  # len() without parsing (see eegbench.pack)
        self._loaders: dict[str, Any] = {}  # columns decoded on first use (see eegbench.pack)

    @classmethod
    def _from_columns(cls, cols: dict[str, np.ndarray], n: int, json_cols: list[str],
                      loaders: dict[str, Any] | None = None) -> Table:
        """A table of ``cols``, plus columns ``loaders[name](name)`` decodes on first use."""
        t = cls(n_rows=n)
        t._cols, t._json, t._names = cols, list(json_cols), list(cols) + list(loaders or ())
        t._loaders = dict(loaders or {})
        return t

    @classmethod
    def _from_arrow(cls, arrow: Any, names: list[str], json_cols: list[str]) -> Table:
        t = cls(n_rows=arrow.num_rows)
        t._arrow, t._names, t._json = arrow, list(names), list(json_cols)
        return t

    def _col(self, name: str) -> np.ndarray:
        self._parse()
        values = self._cols.get(name)
        if values is None and name in self._loaders:
            values = self._cols[name] = self._loaders.pop(name)(name)
        if values is None:
            if self._arrow is None or name not in self._names:
                raise KeyError(name)
            p = self._parent
            if p is not None:  # a few slices convert their own rows; many share the whole table
                p._served += 1
                if p._served > _SLICES_BEFORE_WHOLE:
                    p._all()  # converted whole once: later slices are NumPy slices (see _ILoc)
                if name in p._cols:
                    values = self._cols[name] = p._col(name)[self._start:self._start + self._n]
                    return values
            values = self._cols[name] = _to_numpy(self._arrow.column(name))
        return values

    def _all(self) -> dict[str, np.ndarray]:
        """Every column, converted."""
        self._parse()
        return {c: self._col(c) for c in self._names}

    def _parse(self) -> None:
        if self._parsed:
            return
        table = read_parquet(self._data)
        meta = table.schema.metadata or {}
        self._json = list(json.loads(meta.get(b"eegbench.json_columns", b"[]")))
        hidden = set()
        if b"pandas" in meta:  # pandas' stored index columns are the index, not data columns
            hidden = {c for c in json.loads(meta[b"pandas"]).get("index_columns", []) if isinstance(c, str)}
        if self._known_n and table.num_rows != self._n:
            from .errors import CorruptStoreError

            raise CorruptStoreError(f"{self._where or 'a metadata table'}: {table.num_rows} rows where the "
                                    f"store records {self._n}; run `eegbench verify` on the store")
        self._n = table.num_rows
        self._arrow = table
        self._names = [name for name in table.column_names if name not in hidden]
        self._cols = {}
        self._parsed = True

    @property
    def unparsed(self) -> bool:
        """Stored bytes not parsed yet, with a known row count (``len()`` costs nothing)."""
        return self._known_n and not self._parsed

    @property
    def where(self) -> str | None:
        """The store and table this table was read from (for error messages), if known."""
        return self._where

    # -- the DataFrame subset -------------------------------------------------------------------
    @property
    def columns(self) -> list[str]:
        self._parse()
        return list(self._names)

    def __len__(self) -> int:
        if self._known_n and not self._parsed:
            return self._n
        self._parse()
        return self._n

    @property
    def empty(self) -> bool:
        return len(self) == 0 or not self.columns

    def __contains__(self, name: object) -> bool:
        return name in self.columns

    def __getitem__(self, name: str) -> Column:
        return Column(self._col(name))

    @property
    def iloc(self) -> _ILoc:
        self._parse()
        return _ILoc(self)

    def to_dict(self, orient: str = "records") -> list[dict[str, Any]]:
        if orient != "records":
            raise ValueError("Table.to_dict supports orient='records' only")
        lists = {c: v.tolist() for c, v in self._all().items()}
        return [{c: lists[c][i] for c in lists} for i in range(self._n)]

    def sort_values(self, column: str) -> Table:
        return self.iloc[np.argsort(self[column].to_numpy(), kind="stable")]

    # -- pandas, on demand ---------------------------------------------------------------------
    def to_pandas(self) -> Any:
        """The table as a pandas DataFrame (as :func:`eegbench.tables.frame_from_parquet` returns it)."""
        if self._data is not None:
            from .tables import frame_from_parquet

            try:
                return frame_from_parquet(self._data)
            except Exception as exc:  # bytes sealed in the store that pandas cannot rebuild: a damaged store
                from .errors import CorruptStoreError

                raise CorruptStoreError(f"{self._where or 'a metadata table'}: cannot be read as a table "
                                        f"({type(exc).__name__}: {str(exc)[:200]}); run `eegbench verify` on "
                                        f"the store") from exc
        import pandas as pd

        cols = self._all()
        if cols:
            return pd.DataFrame(cols, index=pd.RangeIndex(self._n))
        return pd.DataFrame(index=pd.RangeIndex(self._n))

    def __getstate__(self) -> dict[str, Any]:
        if self._data is None:  # a slice (iloc) or a built table: its columns are all it has
            return {"data": None, "n": self._n, "cols": self._all(), "json": self._json}
        return {"data": self._data, "n": self._n if self._known_n or self._parsed else None, "where": self._where}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["data"], n_rows=state["n"], where=state.get("where"))  # type: ignore[misc]
        if "cols" in state:
            self._cols, self._json, self._names = state["cols"], list(state["json"]), list(state["cols"])

    def __repr__(self) -> str:
        return f"<eegbench Table: {len(self)} rows, columns {self.columns}>"


def read_parquet(data: bytes) -> Any:
    """The pyarrow Table stored in Parquet ``data``, as ``pq.ParquetFile(...).read()`` gives it.

    Through pyarrow's Parquet reader class itself where it has the expected API: ``pyarrow.parquet``
    imports ``pyarrow.fs`` (and ssl, pyarrow's S3/GCS glue ...): 40-50 ms CPU and 9 MB of RSS more
    per fresh process here, and ``pq.read_table`` imports ``pyarrow.dataset`` on top. Buffers come
    from the system allocator: the first read through pyarrow's default pool (mimalloc) made RSS
    grow by 8 MB, malloc by 4 MB. Same options as ``ParquetFile``'s defaults (``pre_buffer`` only
    changes how a file is fetched, not what is read)."""
    import pyarrow as pa

    try:
        from pyarrow._parquet import ParquetReader

        reader = ParquetReader(memory_pool=pa.system_memory_pool())
        reader.open(pa.BufferReader(data), pre_buffer=False, arrow_extensions_enabled=True)
    except (ImportError, TypeError):  # another pyarrow's private API: the public route
        import pyarrow.parquet as pq

        return pq.ParquetFile(pa.BufferReader(data)).read(use_threads=False)
    return reader.read_all(use_threads=False)


def _to_numpy(column: Any) -> np.ndarray:
    """A pyarrow ChunkedArray as NumPy, with ``to_pandas``' conventions (integers or floats with
    nulls: float64 NaN; anything else: an object array, None for null). Never through pyarrow's
    ``to_numpy``: that imports pandas."""
    import pyarrow as pa

    t = column.type
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        dtype = np.dtype(t.to_pandas_dtype())
        parts = []
        for chunk in column.chunks:
            n, off = len(chunk), chunk.offset
            values = np.frombuffer(chunk.buffers()[1], dtype=dtype, count=off + n)[off:]
            if chunk.null_count:
                bits = np.unpackbits(np.frombuffer(chunk.buffers()[0], dtype=np.uint8), bitorder="little")
                values = values.astype(np.float64)
                values[~bits[off:off + n].astype(bool)] = np.nan
            parts.append(values)
        if not parts:
            return np.empty(0, dtype=dtype)
        if any(p.dtype != parts[0].dtype for p in parts):
            parts = [p.astype(np.float64) for p in parts]
        return np.concatenate(parts) if len(parts) > 1 else parts[0].copy()
    values = column.to_pylist()
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):  # element by element: a list value must stay one cell
        out[i] = v
    return out


def as_pandas(value: Any) -> Any:
    """``value`` as pandas if it is a :class:`Table`, else unchanged."""
    return value.to_pandas() if isinstance(value, Table) else value
