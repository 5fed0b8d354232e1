"""Tests for full-content digests of pandas DataFrames and numpy arrays
(mlflow_provenance.datasets.frames).

Most tests are differential (two inputs that differ in one documented respect must get
different digests, two that differ in no documented respect the same one). A few
known-answer tests rebuild the encoding from the module docstring with hashlib and json.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlflow_provenance.datasets.files import DatasetInputError
from mlflow_provenance.datasets.frames import (
    ARRAY_ENCODING,
    FRAME_ENCODING,
    digest_array,
    digest_data,
    digest_frame,
)

REPO_ROOT = Path(__file__).resolve().parents[2]


def d(frame: Any) -> str:
    return digest_frame(frame).digest


def jcs(value: Any) -> bytes:
    """RFC 8785 for the plain ASCII keys/strings and small ints used here."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


# --- known answers -----------------------------------------------------------------------------


def test_array_known_answer() -> None:
    array = np.arange(6, dtype="<i8").reshape(2, 3)
    header = jcs({"encoding": "mlflow-provenance/ndarray-v1", "dtype": "<i8", "shape": [2, 3]})
    # Column digest: tag "N", then (as frames._numpy_digest writes it; the docstring only says
    # "a tag") the little-endian dtype string, then the little-endian values.
    values = b"".join(i.to_bytes(8, "little") for i in range(6))
    column = hashlib.sha256(b"N" + b"<i8" + values).digest()
    expected = hashlib.sha256(len(header).to_bytes(8, "big") + header + column).hexdigest()

    result = digest_array(array)

    assert ARRAY_ENCODING == "mlflow-provenance/ndarray-v1"
    assert result.digest == "sha256:" + expected


def test_frame_known_answer() -> None:
    frame = pd.DataFrame({"n": np.array([7, -1], dtype="int64"),
                          "s": pd.Series(["ab", "é"], dtype=object)})
    header = jcs({
        "encoding": "mlflow-provenance/dataframe-v1",
        "rows": 2,
        "columns": [["str", "n"], ["str", "s"]],
        "dtypes": ["int64", "object"],
        "index": {"names": [None], "dtypes": ["int64"]},
    })
    index = hashlib.sha256(b"N<i8" + (0).to_bytes(8, "little") + (1).to_bytes(8, "little")).digest()
    numbers = hashlib.sha256(b"N<i8" + (7).to_bytes(8, "little") + (-1).to_bytes(8, "little", signed=True)).digest()
    # "S": the UTF-8 byte lengths as little-endian uint64, then the bytes
    strings = hashlib.sha256(b"S" + (2).to_bytes(8, "little") + (2).to_bytes(8, "little")
                             + "ab".encode() + "é".encode()).digest()
    expected = hashlib.sha256(len(header).to_bytes(8, "big") + header + index + numbers + strings).hexdigest()

    result = digest_frame(frame)

    assert FRAME_ENCODING == "mlflow-provenance/dataframe-v1"
    assert result.digest == "sha256:" + expected
    assert result.description == {"kind": "dataframe", "algorithm": "sha256", "encoding": FRAME_ENCODING,
                                  "rows": 2, "columns": 2}


def test_object_column_known_answer() -> None:
    frame = pd.DataFrame({"o": pd.Series([1, None, b"\x00", True, 2.5, "x"], dtype=object)})
    header = jcs({
        "encoding": "mlflow-provenance/dataframe-v1", "rows": 6, "columns": [["str", "o"]],
        "dtypes": ["object"], "index": {"names": [None], "dtypes": ["int64"]},
    })
    index = hashlib.sha256(b"N<i8" + b"".join(i.to_bytes(8, "little") for i in range(6))).digest()
    column = hashlib.sha256(
        b"O"
        + b"i" + (1).to_bytes(8, "little") + b"1"
        + b"\x00"
        + b"b" + (1).to_bytes(8, "little") + b"\x00"
        + b"?\x01"
        + b"f" + np.float64(2.5).astype("<f8").tobytes()
        + b"s" + (1).to_bytes(8, "little") + b"x"
    ).digest()
    expected = hashlib.sha256(len(header).to_bytes(8, "big") + header + index + column).hexdigest()

    assert d(frame) == "sha256:" + expected


# --- a large frame: every row counts -----------------------------------------------------------

N_BIG = 1_000_000


@pytest.fixture(scope="module")
def big() -> dict[str, Any]:
    from mlflow.data.digest_utils import compute_pandas_digest

    i = np.arange(N_BIG)
    frame = pd.DataFrame({
        "int": i.astype("int64"),
        "float": i * 0.25,
        "str": pd.Series([f"row-{k}" for k in range(N_BIG)], dtype=object),
        "cat": pd.Categorical.from_codes(i % 4, categories=["a", "b", "c", "d"]),
        "when": pd.date_range("2020-01-01", periods=N_BIG, freq="s"),
    })
    started = time.monotonic()
    ours = digest_frame(frame)
    elapsed = time.monotonic() - started
    return {"frame": frame, "ours": ours, "elapsed": elapsed, "mlflow": compute_pandas_digest(frame)}


NEW_VALUES = {  # two candidates each: the first one that differs from the current value
    "int": (-5, -6),
    "float": (1e300, -1e300),
    "str": ("changed", "changed again"),
    "cat": ("a", "b"),
    "when": (pd.Timestamp("1999-12-31 23:59:59"), pd.Timestamp("1970-01-01")),
}


def edited(frame: pd.DataFrame, row: int, column: str) -> pd.DataFrame:
    copy = frame.copy()
    current = frame.iloc[row, frame.columns.get_loc(column)]
    new = next(v for v in NEW_VALUES[column] if v != current)
    copy.iloc[row, copy.columns.get_loc(column)] = new
    assert copy.dtypes.equals(frame.dtypes)
    assert copy.iloc[row, copy.columns.get_loc(column)] != frame.iloc[row, frame.columns.get_loc(column)]
    return copy


def test_big_frame_digest_is_sane(big: dict[str, Any]) -> None:
    assert big["ours"].description["rows"] == N_BIG
    assert big["ours"].description["columns"] == 5
    assert big["elapsed"] < 20, f"1M rows took {big['elapsed']:.1f}s"
    assert d(big["frame"]) == big["ours"].digest  # stable on the same object


@pytest.mark.parametrize("column", ["int", "float", "str"])
def test_change_past_mlflows_10000_rows_changes_ours_but_not_mlflows(big: dict[str, Any], column: str) -> None:
    from mlflow.data.digest_utils import compute_pandas_digest

    changed = edited(big["frame"], 10_001, column)

    assert d(changed) != big["ours"].digest
    # MLflow hashes only the first 10,000 rows: the same edit goes unnoticed there.
    assert compute_pandas_digest(changed) == big["mlflow"]


def test_mlflows_digest_does_see_changes_in_its_first_rows(big: dict[str, Any]) -> None:
    """Control for the test above: MLflow's digest is not simply constant."""
    from mlflow.data.digest_utils import compute_pandas_digest

    changed = edited(big["frame"], 5, "int")

    assert compute_pandas_digest(changed) != big["mlflow"]
    assert d(changed) != big["ours"].digest


@pytest.mark.parametrize("column", ["cat", "when"])
def test_change_past_10000_rows_in_columns_mlflow_drops(big: dict[str, Any], column: str) -> None:
    assert d(edited(big["frame"], 10_001, column)) != big["ours"].digest


@pytest.mark.parametrize("column", list(NEW_VALUES))
def test_change_in_the_last_row(big: dict[str, Any], column: str) -> None:
    assert d(edited(big["frame"], N_BIG - 1, column)) != big["ours"].digest


def test_dropping_the_last_row_changes_the_digest(big: dict[str, Any]) -> None:
    assert d(big["frame"].iloc[:-1]) != big["ours"].digest


# --- determinism across processes --------------------------------------------------------------

BUILD = textwrap.dedent('''
    import numpy as np
    import pandas as pd

    def build(n):
        i = np.arange(n)
        return pd.DataFrame(
            {
                "int": i.astype("int64"),
                "float": np.where(i % 7 == 0, np.nan, i * 0.25),
                "str": [f"row-{k}" for k in range(n)],
                "cat": pd.Categorical.from_codes(i % 3, categories=["lo", "mid", "hi"]),
                "when": pd.date_range("2021-03-04", periods=n, freq="min", tz="Europe/Paris"),
                "mixed": pd.Series([k if k % 2 else f"{k}" for k in range(n)], dtype=object),
                "flag": i % 2 == 0,
                "nullable": pd.array([None if k % 5 == 0 else k for k in range(n)], dtype="Int64"),
                "blob": pd.Series([bytes([k % 256]) * (k % 5) for k in range(n)], dtype=object),
                "other": pd.Series([(k, "t") if k % 3 else [k] for k in range(n)], dtype=object),
            },
            index=pd.Index([f"id{k}" for k in range(n)], name="id"),
        )
''')

N_SUBPROCESS = 20_000


@pytest.mark.parametrize("hashseed", ["random", "0", "4242"])
def test_same_digest_in_a_fresh_process(hashseed: str) -> None:
    namespace: dict[str, Any] = {}
    exec(BUILD, namespace)  # noqa: S102 - the very same source the subprocess runs
    local = d(namespace["build"](N_SUBPROCESS))

    script = BUILD + textwrap.dedent(f'''
        from mlflow_provenance.datasets.frames import digest_frame
        print(digest_frame(build({N_SUBPROCESS})).digest)
    ''')
    env = {**os.environ, "PYTHONHASHSEED": hashseed,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env,
                          cwd=REPO_ROOT, timeout=120)

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == local
    assert local.startswith("sha256:") and len(local) == len("sha256:") + 64


SET_SCRIPT = textwrap.dedent('''
    import pandas as pd
    from mlflow_provenance.datasets.frames import digest_frame
    frame = pd.DataFrame({"s": pd.Series([frozenset({"alpha", "beta", "gamma", str(k)}) for k in range(50)],
                                         dtype=object)})
    print(digest_frame(frame).digest)
''')


def test_set_values_have_the_same_digest_in_every_process() -> None:
    outputs = set()
    for seed in ("1", "2", "3"):
        done = subprocess.run([sys.executable, "-c", SET_SCRIPT], capture_output=True, text=True, timeout=120,
                              cwd=REPO_ROOT, env={**os.environ, "PYTHONHASHSEED": seed})
        assert done.returncode == 0, done.stderr
        outputs.add(done.stdout.strip())
    assert len(outputs) == 1


# --- sensitivity -------------------------------------------------------------------------------


def base() -> pd.DataFrame:
    return pd.DataFrame({
        "a": np.array([1, 2, 3], dtype="int64"),
        "b": np.array([0.5, 1.5, 2.5]),
        "c": pd.Series(["x", "y", "z"], dtype=object),
    })


def test_copy_and_rebuild_have_the_same_digest() -> None:
    frame = base()
    assert d(frame.copy(deep=True)) == d(frame) == d(base())


def test_column_name_matters() -> None:
    assert d(base().rename(columns={"b": "B"})) != d(base())


def test_column_name_type_matters() -> None:
    one = pd.DataFrame({1: [1, 2]})
    other = pd.DataFrame({"1": [1, 2]})
    assert d(one) != d(other)


def test_dtype_matters_for_equal_values() -> None:
    narrow = base().astype({"a": "int32"})
    assert (narrow["a"] == base()["a"]).all()
    assert d(narrow) != d(base())


def test_column_order_matters() -> None:
    assert d(base()[["b", "a", "c"]]) != d(base())


def test_index_values_matter() -> None:
    frame = base()
    frame.index = [10, 11, 12]
    assert d(frame) != d(base())


def test_index_order_matters() -> None:
    assert d(base().iloc[::-1]) != d(base())


def test_index_name_matters() -> None:
    frame = base()
    frame.index.name = "k"
    assert d(frame) != d(base())


def test_nan_in_place_of_a_value_matters() -> None:
    frame = base()
    frame.loc[1, "b"] = np.nan
    assert d(frame) != d(base())


def test_string_value_matters() -> None:
    frame = base()
    frame.loc[1, "c"] = "Y"
    assert d(frame) != d(base())


def test_string_boundaries_matter() -> None:
    one = pd.DataFrame({"s": pd.Series(["ab", "c"], dtype=object)})
    other = pd.DataFrame({"s": pd.Series(["a", "bc"], dtype=object)})
    assert d(one) != d(other)


def test_pandas_string_dtype_values_matter() -> None:
    one = pd.DataFrame({"s": pd.array(["a", "b"], dtype="string")})
    other = pd.DataFrame({"s": pd.array(["a", "c"], dtype="string")})
    missing = pd.DataFrame({"s": pd.array(["a", None], dtype="string")})
    assert len({d(one), d(other), d(missing)}) == 3


def test_object_column_int_is_not_its_string() -> None:
    ints = pd.DataFrame({"o": pd.Series([1, "x"], dtype=object)})
    strs = pd.DataFrame({"o": pd.Series(["1", "x"], dtype=object)})
    floats = pd.DataFrame({"o": pd.Series([1.0, "x"], dtype=object)})
    assert len({d(ints), d(strs), d(floats)}) == 3

    # both columns take the per-value ("O") path here, so the type tag alone tells them apart
    ints_missing = pd.DataFrame({"o": pd.Series([1, None], dtype=object)})
    strs_missing = pd.DataFrame({"o": pd.Series(["1", None], dtype=object)})
    assert d(ints_missing) != d(strs_missing)


def test_object_column_bool_is_not_int() -> None:
    bools = pd.DataFrame({"o": pd.Series([True, "x"], dtype=object)})
    ints = pd.DataFrame({"o": pd.Series([1, "x"], dtype=object)})
    assert d(bools) != d(ints)


def test_missing_values_in_an_object_column_share_one_encoding() -> None:
    # The docstring: "\0 for a missing value (None, NaN, NA, NaT)": all four are one encoding,
    # which is what we observe. A missing value is not an empty or a "None" string.
    missing = {
        d(pd.DataFrame({"o": pd.Series(["a", value], dtype=object)}))
        for value in (None, np.nan, float("nan"), pd.NA, pd.NaT)
    }
    assert len(missing) == 1
    (missing_digest,) = missing
    for text in ("", "None", "nan"):
        assert d(pd.DataFrame({"o": pd.Series(["a", text], dtype=object)})) != missing_digest


def test_categorical_category_order_matters() -> None:
    ab = pd.DataFrame({"k": pd.Categorical(["a", "b", "a"], categories=["a", "b"])})
    ba = pd.DataFrame({"k": pd.Categorical(["a", "b", "a"], categories=["b", "a"])})
    assert list(ab["k"]) == list(ba["k"])
    assert d(ab) != d(ba)


def test_categorical_ordered_flag_and_unused_categories_matter() -> None:
    plain = pd.DataFrame({"k": pd.Categorical(["a", "b"], categories=["a", "b"])})
    ordered = pd.DataFrame({"k": pd.Categorical(["a", "b"], categories=["a", "b"], ordered=True)})
    extra = pd.DataFrame({"k": pd.Categorical(["a", "b"], categories=["a", "b", "c"])})
    changed = pd.DataFrame({"k": pd.Categorical(["b", "b"], categories=["a", "b"])})
    assert len({d(plain), d(ordered), d(extra), d(changed)}) == 4


def test_categorical_is_not_its_plain_values() -> None:
    cat = pd.DataFrame({"k": pd.Categorical(["a", "b"])})
    plain = pd.DataFrame({"k": pd.Series(["a", "b"], dtype=object)})
    assert d(cat) != d(plain)


def test_tz_aware_datetimes_differ_from_naive() -> None:
    naive = pd.DataFrame({"t": pd.date_range("2020-01-01", periods=3, freq="h")})
    utc = pd.DataFrame({"t": pd.date_range("2020-01-01", periods=3, freq="h", tz="UTC")})
    paris = pd.DataFrame({"t": utc["t"].dt.tz_convert("Europe/Paris")})
    # The values are normalized to UTC int64; the zone is only in the dtype, in the header.
    assert d(naive) != d(utc)
    assert d(utc) != d(paris)  # same instants, another zone: the dtype differs
    assert len({d(naive), d(utc), d(paris)}) == 3


def test_datetime_values_and_nat_matter() -> None:
    times = pd.date_range("2020-01-01", periods=3, freq="D")
    one = pd.DataFrame({"t": times})
    other = pd.DataFrame({"t": times + pd.Timedelta(1, "us")})
    nat = pd.DataFrame({"t": [times[0], pd.NaT, times[2]]}).astype(one["t"].dtype)
    assert len({d(one), d(other), d(nat)}) == 3


def test_timedelta_values_matter() -> None:
    one = pd.DataFrame({"t": pd.to_timedelta([1, 2], unit="s")})
    other = pd.DataFrame({"t": pd.to_timedelta([1, 3], unit="s")})
    assert d(one) != d(other)


def test_multiindex() -> None:
    def frame(tuples: list[tuple[Any, Any]], names: list[str]) -> pd.DataFrame:
        return pd.DataFrame({"v": [1.0, 2.0, 3.0]}, index=pd.MultiIndex.from_tuples(tuples, names=names))

    tuples = [("a", 1), ("a", 2), ("b", 1)]
    reference = frame(tuples, ["k", "n"])

    assert d(frame(tuples, ["k", "n"])) == d(reference)
    assert d(frame([("a", 1), ("a", 2), ("b", 9)], ["k", "n"])) != d(reference)  # inner level value
    assert d(frame([("a", 1), ("a", 2), ("c", 1)], ["k", "n"])) != d(reference)  # outer level value
    assert d(frame(tuples, ["k", "m"])) != d(reference)  # level name
    assert d(reference.swaplevel()) != d(reference)  # level order
    flat = reference.reset_index(level="n")
    assert d(flat) != d(reference)  # a level moved into the columns


def test_nullable_int_with_na() -> None:
    with_na = pd.DataFrame({"n": pd.array([1, None, 3], dtype="Int64")})
    full = pd.DataFrame({"n": pd.array([1, 2, 3], dtype="Int64")})
    zero = pd.DataFrame({"n": pd.array([1, 0, 3], dtype="Int64")})
    one = pd.DataFrame({"n": pd.array([1, 1, 3], dtype="Int64")})
    as_float = pd.DataFrame({"n": [1.0, np.nan, 3.0]})
    assert len({d(with_na), d(full), d(zero), d(one), d(as_float)}) == 5


def test_nullable_int_ignores_the_data_behind_the_mask() -> None:
    # What a masked array stores under pd.NA is arbitrary; only "missing" may count.
    mask = np.array([False, True, False])
    one = pd.DataFrame({"n": pd.arrays.IntegerArray(np.array([1, 5, 3]), mask)})
    other = pd.DataFrame({"n": pd.arrays.IntegerArray(np.array([1, -77, 3]), mask)})
    assert one["n"].dtype == other["n"].dtype == "Int64"
    assert d(one) == d(other)


def test_bool_columns() -> None:
    tf = pd.DataFrame({"b": [True, False]})
    ft = pd.DataFrame({"b": [False, True]})
    as_int = pd.DataFrame({"b": np.array([1, 0], dtype="int64")})
    as_uint8 = pd.DataFrame({"b": np.array([1, 0], dtype="uint8")})  # same bytes as the bool column
    assert len({d(tf), d(ft), d(as_int), d(as_uint8)}) == 4


def test_bytes_values() -> None:
    def frame(*values: Any) -> pd.DataFrame:
        return pd.DataFrame({"o": pd.Series(list(values), dtype=object)})

    assert d(frame(b"ab", b"c")) != d(frame(b"a", b"bc"))
    assert d(frame(b"a", b"b")) != d(frame("a", "b"))
    assert d(frame(b"a", b"\xff")) != d(frame(b"a", b"\xfe"))
    assert d(frame(b"", b"a")) != d(frame(None, b"a"))


def test_series_equals_its_frame() -> None:
    named = pd.Series([1.5, 2.5, np.nan], name="x")
    unnamed = pd.Series(["p", "q"])
    assert d(named) == d(named.to_frame())
    assert d(unnamed) == d(unnamed.to_frame())
    assert digest_data(named).digest == d(named.to_frame())
    assert d(named) != d(named.rename("y"))


def test_empty_frames() -> None:
    no_columns = pd.DataFrame(index=pd.RangeIndex(3))
    no_rows = pd.DataFrame({"a": pd.Series([], dtype="int64")})
    no_rows_float = pd.DataFrame({"a": pd.Series([], dtype="float64")})
    assert len({d(no_columns), d(no_rows), d(no_rows_float), d(pd.DataFrame())}) == 4


def test_big_endian_column_differs_in_the_header_only() -> None:
    little = pd.DataFrame({"a": np.array([1, 2, 3], dtype="<i4")})
    big = pd.DataFrame({"a": np.array([1, 2, 3], dtype=">i4")})
    assert (little["a"] == big["a"]).all()
    # values are hashed little-endian either way; the header records dtype ">i4" vs "int32"
    assert str(big["a"].dtype) != str(little["a"].dtype)
    assert d(little) != d(big)


# --- invariance --------------------------------------------------------------------------------


def nan_with_bits(bits: int) -> np.float64:
    value = np.array([bits], dtype=np.uint64).view(np.float64)[0]
    assert np.isnan(value)
    return value


@pytest.mark.parametrize("bits", [0x7FF8000000000001, 0xFFF8000000000000, 0x7FF0000000000001, 0x7FFFFFFFFFFFFFFF])
def test_every_nan_bit_pattern_has_the_same_digest(bits: int) -> None:
    canonical = np.array([1.0, np.nan, 3.0])
    payload = canonical.copy()
    payload[1] = nan_with_bits(bits)
    assert payload.view(np.uint64)[1] != canonical.view(np.uint64)[1]

    frame_canonical = pd.DataFrame({"f": canonical})
    frame_payload = pd.DataFrame({"f": payload})
    # precondition: pandas kept the payload, so the test exercises the canonicalization
    assert frame_payload["f"].to_numpy().view(np.uint64)[1] == bits

    assert d(frame_payload) == d(frame_canonical)
    assert digest_array(payload).digest == digest_array(canonical).digest
    assert d(frame_payload) != d(pd.DataFrame({"f": [1.0, 2.0, 3.0]}))


def test_float32_nan_payload_has_the_same_digest() -> None:
    canonical = np.array([np.nan, 1.0], dtype=np.float32)
    payload = canonical.copy()
    payload.view(np.uint32)[0] = 0x7FC00001
    assert np.isnan(payload[0]) and payload.view(np.uint32)[0] != canonical.view(np.uint32)[0]
    assert digest_array(payload).digest == digest_array(canonical).digest
    assert d(pd.DataFrame({"f": payload})) == d(pd.DataFrame({"f": canonical}))


def test_nan_digest_does_not_mutate_the_input() -> None:
    payload = np.array([nan_with_bits(0x7FF8000000000001), 2.0])
    digest_array(payload)
    assert payload.view(np.uint64)[0] == 0x7FF8000000000001


def test_negative_zero_is_not_zero() -> None:
    # No canonicalization beyond NaN: -0.0 and 0.0 are different bytes and compare equal.
    assert d(pd.DataFrame({"f": [0.0]})) != d(pd.DataFrame({"f": [-0.0]}))


def test_complex_values_with_a_nan_part_keep_the_other_part() -> None:
    one = np.array([complex(1, np.nan)])
    two = np.array([complex(2, np.nan)])
    assert digest_array(one).digest != digest_array(two).digest


def test_non_contiguous_arrays_equal_their_contiguous_copy() -> None:
    a = np.arange(24, dtype=np.int64).reshape(4, 6)
    transposed = a.T
    sliced = a[:, ::2]
    reversed_rows = a[::-1]
    for view in (transposed, sliced, reversed_rows):
        assert not view.flags["C_CONTIGUOUS"]
        assert digest_array(view).digest == digest_array(np.ascontiguousarray(view)).digest
    # ... and the logical order is what counts, not the memory layout
    assert digest_array(transposed).digest != digest_array(a.reshape(6, 4)).digest


def test_non_contiguous_frame_column() -> None:
    block = np.arange(20, dtype=np.float64).reshape(10, 2)
    strided = pd.DataFrame({"x": block[:, 1]})
    contiguous = pd.DataFrame({"x": block[:, 1].copy()})
    assert d(strided) == d(contiguous)


# --- digest_array ------------------------------------------------------------------------------


def test_array_description() -> None:
    result = digest_array(np.zeros((2, 3), dtype=np.float32))
    assert result.description == {"kind": "ndarray", "algorithm": "sha256", "encoding": ARRAY_ENCODING,
                                  "dtype": "<f4", "shape": [2, 3]}


def test_array_shape_matters() -> None:
    flat = np.arange(6, dtype=np.int64)
    a23, a32, a6 = flat.reshape(2, 3), flat.reshape(3, 2), flat
    assert a23.tobytes() == a32.tobytes() == a6.tobytes()
    assert len({digest_array(a23).digest, digest_array(a32).digest, digest_array(a6).digest}) == 3


def test_array_dtype_matters() -> None:
    assert digest_array(np.array([1, 2], dtype="int64")).digest != digest_array(np.array([1, 2], dtype="int32")).digest
    assert digest_array(np.array([1, 2], dtype="int64")).digest != digest_array(np.array([1, 2], dtype="uint64")).digest


def test_big_endian_array_differs_from_little_endian() -> None:
    little = np.arange(5, dtype="<i4")
    big = little.astype(">i4")
    assert np.array_equal(little, big)
    # The values are converted to little-endian before hashing, so the value bytes are the
    # same; but digest_array's header records dtype.str (">i4" vs "<i4"), and the docstring
    # says the digest covers "dtype, shape, then the values": the digests differ.
    assert digest_array(big).description["dtype"] == ">i4"
    assert digest_array(big).digest != digest_array(little).digest
    # and a big-endian array does equal itself rebuilt
    assert digest_array(big).digest == digest_array(np.arange(5).astype(">i4")).digest


def test_object_arrays() -> None:
    def obj(*values: Any) -> str:
        array = np.empty(len(values), dtype=object)
        array[:] = list(values)
        return digest_array(array).digest

    assert obj(1, "a", None) != obj("1", "a", None)
    assert obj(1, "a", None) == obj(1, "a", np.nan)  # missing is missing
    assert obj(b"x") != obj("x")
    assert obj(np.arange(3), np.arange(3)) != obj(np.arange(3), np.arange(3) + 1)  # nested arrays
    assert obj(np.arange(3, dtype="int64")) != obj(np.arange(3, dtype="int32"))
    assert obj(1, 2) == obj(1, 2)
    assert digest_array(np.array(["a", "b"])).description["dtype"] == "<U1"
    assert digest_array(np.array(["a", "b"])).digest != digest_array(np.array(["a", "c"])).digest


def test_object_array_of_ints_differs_from_numeric_array() -> None:
    numeric = np.array([1, 2], dtype="int64")
    boxed = numeric.astype(object)
    assert digest_array(numeric).digest != digest_array(boxed).digest  # dtype "<i8" vs "|O"


# --- digest_data -------------------------------------------------------------------------------


def test_digest_data_dispatches() -> None:
    frame = base()
    array = np.arange(4)
    assert digest_data(frame) == digest_frame(frame)
    assert digest_data(array) == digest_array(array)
    assert digest_data(frame["a"]).digest == d(frame["a"].to_frame())


@pytest.mark.parametrize("value", [[1, 2, 3], {"a": [1, 2]}, "not/a/path.csv", 42])
def test_digest_data_rejects_other_kinds(value: Any) -> None:
    with pytest.raises(DatasetInputError) as info:
        digest_data(value)
    message = str(info.value)
    assert type(value).__qualname__ in message
    for kind in ("path", "glob", "DataFrame", "numpy array", "mlflow.data"):
        assert kind in message
