"""Full-content digests of pandas DataFrames and numpy arrays.

MLflow's own dataset digest hashes at most the first 10,000 rows, drops columns that are
neither strings nor numbers, and keeps 8 hex characters. This one covers every row and
every column of every dtype, the column names and dtypes, and the index
(``mlflow-provenance/dataframe-v1``)::

    header  = RFC 8785 JSON {"encoding", "rows", "columns": [[type, name]…], "dtypes": […],
                             "index": {"names": […], "dtypes": […]}}
    digest  = SHA-256( len(header) as 8 bytes big-endian ‖ header ‖
                       column digest of each index level ‖ column digest of each column )

A column digest is SHA-256 over a tag and the column's values:

``N``  numbers and booleans: the values as little-endian machine bytes (every NaN in its
       canonical bit pattern); datetimes and timedeltas as int64 in their unit (NaT is
       int64's minimum), time-zone-aware ones in UTC (the zone is in the dtype)
``C``  categoricals: the digest of the categories, the ``ordered`` flag, the int64 codes
``S``  all values ``str``: the UTF-8 byte lengths as little-endian uint64, then the bytes
``O``  anything else, value by value: ``\\0`` for a missing value (None, NaN, NA, NaT),
       ``{`` + count + the sorted encodings of a set's members,
       ``s``/``b`` + 8-byte length + UTF-8/raw bytes, ``?`` + one byte, ``i`` + length +
       decimal, ``f`` + IEEE-754 double, ``t`` + length + ISO 8601 text, ``r`` + length +
       ``type-name:repr`` for any other object
"""

from __future__ import annotations

import hashlib
import math
import struct
from typing import Any

from mlflow_provenance.canonical import canonical_json
from mlflow_provenance.datasets.files import ContentDigest, DatasetInputError

FRAME_ENCODING = "mlflow-provenance/dataframe-v1"
ARRAY_ENCODING = "mlflow-provenance/ndarray-v1"
_CHUNK = 1 << 20  # values per update, so no column is copied whole


def digest_frame(frame: Any) -> ContentDigest:
    """The full-content digest of a pandas DataFrame (or Series)."""
    import pandas as pd

    if isinstance(frame, pd.Series):
        frame = frame.to_frame()
    index = frame.index
    header = {
        "encoding": FRAME_ENCODING,
        "rows": int(len(frame)),
        "columns": [[type(c).__name__, str(c)] for c in frame.columns],
        "dtypes": [str(t) for t in frame.dtypes],
        "index": {"names": [None if n is None else str(n) for n in index.names],
                  "dtypes": [str(index.get_level_values(i).dtype) for i in range(index.nlevels)]},
    }
    encoded = canonical_json(header)
    h = hashlib.sha256(len(encoded).to_bytes(8, "big") + encoded)
    for level in range(index.nlevels):
        h.update(_series_digest(pd.Series(index.get_level_values(level))))
    for position in range(frame.shape[1]):
        h.update(_series_digest(frame.iloc[:, position]))
    return ContentDigest(
        "sha256:" + h.hexdigest(),
        {"kind": "dataframe", "algorithm": "sha256", "encoding": FRAME_ENCODING,
         "rows": int(len(frame)), "columns": int(frame.shape[1])},
    )


def digest_array(array: Any) -> ContentDigest:
    """The full-content digest of a numpy array: dtype, shape, then the values as a column."""
    import numpy as np

    array = np.asarray(array)
    header = canonical_json({"encoding": ARRAY_ENCODING, "dtype": array.dtype.str, "shape": list(array.shape)})
    h = hashlib.sha256(len(header).to_bytes(8, "big") + header)
    flat = array.reshape(-1)
    h.update(_numpy_digest(flat) if _is_plain_numeric(flat.dtype) else _object_digest(flat.astype(object)))
    return ContentDigest(
        "sha256:" + h.hexdigest(),
        {"kind": "ndarray", "algorithm": "sha256", "encoding": ARRAY_ENCODING, "dtype": array.dtype.str,
         "shape": list(array.shape)},
    )


def _series_digest(series: Any) -> bytes:
    import numpy as np
    import pandas as pd
    from pandas.api import types

    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        h = hashlib.sha256(b"C")
        h.update(_series_digest(pd.Series(dtype.categories)))
        h.update(b"\x01" if dtype.ordered else b"\x00")
        h.update(np.ascontiguousarray(series.cat.codes.to_numpy(), dtype="<i8").tobytes())
        return h.digest()
    if isinstance(dtype, pd.DatetimeTZDtype):
        return _numpy_digest(series.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy().view("i8"))
    if isinstance(dtype, np.dtype) and (types.is_datetime64_dtype(dtype) or types.is_timedelta64_dtype(dtype)):
        return _numpy_digest(series.to_numpy().view("i8"))
    if isinstance(dtype, np.dtype) and _is_plain_numeric(dtype):
        return _numpy_digest(series.to_numpy())
    values = series.to_numpy(dtype=object)
    if types.infer_dtype(values, skipna=False) == "string":
        return _strings_digest(values)
    return _object_digest(values)


def _is_plain_numeric(dtype: Any) -> bool:
    return dtype.kind in "biufc"


def _numpy_digest(values: Any) -> bytes:
    import numpy as np

    values = np.ascontiguousarray(values)
    if values.dtype.kind == "f" and np.isnan(values).any():
        values = values.copy()
        values[np.isnan(values)] = np.nan  # one bit pattern for every NaN
    elif values.dtype.kind == "c" and np.isnan(values).any():
        values = values.copy()
        for part in (values.real, values.imag):  # each part on its own: 1+nanj is not 2+nanj
            part[np.isnan(part)] = np.nan
    values = values.astype(values.dtype.newbyteorder("<"), copy=False)
    h = hashlib.sha256(b"N" + values.dtype.str.encode())
    for start in range(0, len(values), _CHUNK):
        h.update(memoryview(values[start:start + _CHUNK]).cast("B"))
    return h.digest()


def _strings_digest(values: Any) -> bytes:
    import numpy as np

    h = hashlib.sha256(b"S")
    for start in range(0, len(values), _CHUNK):
        encoded = [v.encode("utf-8", "surrogatepass") for v in values[start:start + _CHUNK]]
        h.update(np.fromiter(map(len, encoded), dtype="<u8", count=len(encoded)).tobytes())
        h.update(b"".join(encoded))
    return h.digest()


def _object_digest(values: Any) -> bytes:
    h = hashlib.sha256(b"O")
    update = h.update
    for value in values:
        update(_encode_value(value))
    return h.digest()


def _length(data: bytes) -> bytes:
    return len(data).to_bytes(8, "little") + data


def _encode_value(value: Any) -> bytes:
    import datetime as dt

    import numpy as np
    import pandas as pd

    if value is None or value is pd.NA or value is pd.NaT:
        return b"\x00"
    if isinstance(value, (bool, np.bool_)):
        return b"?\x01" if value else b"?\x00"
    if isinstance(value, str):
        return b"s" + _length(value.encode("utf-8", "surrogatepass"))
    if isinstance(value, (bytes, bytearray, memoryview)):
        return b"b" + _length(bytes(value))
    if isinstance(value, (int, np.integer)):
        return b"i" + _length(str(int(value)).encode())
    if isinstance(value, (float, np.floating)):
        number = float(value)
        return b"\x00" if math.isnan(number) else b"f" + struct.pack("<d", number)
    if isinstance(value, (dt.datetime, dt.date, dt.time, pd.Timestamp)):
        return b"t" + _length(value.isoformat().encode())
    if isinstance(value, np.ndarray):
        return b"a" + digest_array(value).hex.encode()
    if isinstance(value, (set, frozenset)):  # iteration order varies with hash seeds
        members = sorted(_encode_value(member) for member in value)
        return b"{" + len(members).to_bytes(8, "little") + b"".join(_length(m) for m in members)
    if isinstance(value, np.datetime64) and np.isnat(value):
        return b"\x00"
    return b"r" + _length(f"{type(value).__module__}.{type(value).__qualname__}:{value!r}".encode("utf-8", "replace"))


def digest_data(data: Any) -> ContentDigest:
    """A frame, a series or an array.

    Raises:
        DatasetInputError: ``data`` is none of these.
    """
    try:
        import numpy as np
        import pandas as pd
    except ImportError as exc:  # pragma: no cover - pandas is a dependency
        raise DatasetInputError(f"pandas and numpy are needed to hash in-memory data: {exc}") from exc
    if isinstance(data, (pd.DataFrame, pd.Series)):
        return digest_frame(data)
    if isinstance(data, np.ndarray):
        return digest_array(data)
    raise DatasetInputError(
        f"log_dataset cannot hash a {type(data).__module__}.{type(data).__qualname__}: pass a file or "
        f"directory path, a glob, a pandas DataFrame, a numpy array or an mlflow.data dataset"
    )
