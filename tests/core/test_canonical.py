"""Tests for RFC 8785 canonical JSON (mlflow_provenance.canonical).

Vectors: RFC 8785 §3.2.2 / §3.2.4 (the whole-transformation example), §3.2.3 (the
member-sorting example) and Appendix B (IEEE 754 number serialization).
"""

from __future__ import annotations

import enum
import json
import math
import struct
from collections import OrderedDict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlflow_provenance.canonical import canonical_json
from mlflow_provenance.errors import CanonicalizationError

# RFC 8785 Appendix B: IEEE 754 bit pattern -> canonical text.
APPENDIX_B = [
    ("0000000000000000", "0"),
    ("8000000000000000", "0"),
    ("0000000000000001", "5e-324"),
    ("8000000000000001", "-5e-324"),
    ("7fefffffffffffff", "1.7976931348623157e+308"),
    ("ffefffffffffffff", "-1.7976931348623157e+308"),
    ("4340000000000000", "9007199254740992"),
    ("c340000000000000", "-9007199254740992"),
    ("4430000000000000", "295147905179352830000"),
    ("44b52d02c7e14af5", "9.999999999999997e+22"),
    ("44b52d02c7e14af6", "1e+23"),
    ("44b52d02c7e14af7", "1.0000000000000001e+23"),
    ("444b1ae4d6e2ef4e", "999999999999999700000"),
    ("444b1ae4d6e2ef4f", "999999999999999900000"),
    ("444b1ae4d6e2ef50", "1e+21"),
    ("3eb0c6f7a0b5ed8c", "9.999999999999997e-7"),
    ("3eb0c6f7a0b5ed8d", "0.000001"),
    ("41b3de4355555553", "333333333.3333332"),
    ("41b3de4355555554", "333333333.33333325"),
    ("41b3de4355555555", "333333333.3333333"),
    ("41b3de4355555556", "333333333.3333334"),
    ("41b3de4355555557", "333333333.33333343"),
    ("becbf647612f3696", "-0.0000033333333333333333"),
    ("43143ff3c1cb0959", "1424953923781206.2"),
]


def _double(bits: str) -> float:
    return struct.unpack(">d", bytes.fromhex(bits))[0]


@pytest.mark.parametrize(("bits", "expected"), APPENDIX_B)
def test_appendix_b_numbers(bits: str, expected: str) -> None:
    assert canonical_json(_double(bits)) == expected.encode("ascii")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1.0, "1"),
        (-0.0, "0"),
        (4.5, "4.5"),
        (2e-3, "0.002"),
        (1e-7, "1e-7"),
        (1e-6, "0.000001"),
        (1e21, "1e+21"),
        (1e20, "100000000000000000000"),
        (1e30, "1e+30"),
        (123e-20, "1.23e-18"),
        (0.1, "0.1"),
        (-1.5, "-1.5"),
        (2.0**60, "1152921504606847000"),  # ES prints shortest digits, zero-padded
    ],
)
def test_number_forms(value: float, expected: str) -> None:
    assert canonical_json(value) == expected.encode("ascii")


def test_integers_are_exact_decimal() -> None:
    # Documented deviation: Python ints keep every digit, even beyond 2**53.
    assert canonical_json(0) == b"0"
    assert canonical_json(-17) == b"-17"
    assert canonical_json(2**53 + 1) == b"9007199254740993"
    assert canonical_json(10**30) == b"1" + b"0" * 30
    assert canonical_json([True, False, None]) == b"[true,false,null]"


def test_rfc8785_section_3_2_4_example() -> None:
    source = (
        '{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],'
        '"string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/",'
        '"literals": [null, true, false]}'
    )
    expected = (
        '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
        '"string":"\u20ac$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
    )
    assert canonical_json(json.loads(source)) == expected.encode("utf-8")


def test_rfc8785_section_3_2_3_sorting_by_utf16_code_units() -> None:
    source = {
        "\u20ac": "Euro Sign",
        "\r": "Carriage Return",
        "\ufb33": "Hebrew Letter Dalet With Dagesh",
        "1": "One",
        "\U0001f600": "Emoji: Grinning Face",
        "\u0080": "Control",
        "\u00f6": "Latin Small Letter O With Diaeresis",
    }
    expected = (
        '{"\\r":"Carriage Return","1":"One","\u0080":"Control",'
        '"\u00f6":"Latin Small Letter O With Diaeresis","\u20ac":"Euro Sign",'
        '"\U0001f600":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}'
    )
    # U+1F600 (surrogates D83D DE00) sorts before U+FB33 although its code point is higher.
    assert canonical_json(source) == expected.encode("utf-8")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("\b\t\n\f\r", '"\\b\\t\\n\\f\\r"'),
        ("\x00\x01\x1b\x1f", '"\\u0000\\u0001\\u001b\\u001f"'),  # lowercase hex
        ("\x7f\u2028\u00e9/", '"\x7f\u2028\u00e9/"'),  # written as is, '/' unescaped
        ('"\\', '"\\"\\\\"'),
    ],
)
def test_string_escaping(text: str, expected: str) -> None:
    assert canonical_json(text) == expected.encode("utf-8")


def test_nested_and_empty() -> None:
    value = {"b": [{}, [], {"z": 1, "a": -0.0}], "a": "", "t": (1, 2)}
    assert canonical_json(value) == b'{"a":"","b":[{},[],{"a":0,"z":1}],"t":[1,2]}'


def test_subclasses_are_accepted() -> None:
    class Color(enum.IntEnum):
        RED = 3

    class Name(str, enum.Enum):
        A = "alpha"

    value = OrderedDict([("y", Color.RED), ("x", Name.A)])
    assert canonical_json(value) == b'{"x":"alpha","y":3}'


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_numbers_are_rejected(bad: float) -> None:
    with pytest.raises(CanonicalizationError, match="NaN and Infinity"):
        canonical_json({"a": [1, bad]})


def test_error_names_the_path() -> None:
    with pytest.raises(CanonicalizationError, match=r'at \$\["a"\]\[1\]\["b"\]'):
        canonical_json({"a": [0, {"b": math.nan}]})


@pytest.mark.parametrize(
    "bad",
    [{1: "x"}, {None: 1}, {("a",): 1}, {b"k": 1}, b"bytes", {1, 2}, object(), 1 + 2j],
)
def test_unsupported_values_are_rejected(bad: object) -> None:
    with pytest.raises(CanonicalizationError):
        canonical_json(bad)


@pytest.mark.parametrize("bad", ["\ud800", ["ok", "x\udfffy"], {"\ud83d": 1}])
def test_lone_surrogates_are_rejected(bad: object) -> None:
    with pytest.raises(CanonicalizationError, match="surrogate"):
        canonical_json(bad)


def test_cycles_are_rejected() -> None:
    loop: list = []
    loop.append(loop)
    with pytest.raises(CanonicalizationError, match="cycle"):
        canonical_json(loop)


# --- properties ---------------------------------------------------------------

_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _text,
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(_text, children, max_size=5),
    max_leaves=30,
)


def _same(loaded: object, original: object) -> bool:
    """Equality up to JSON's single number type (1e16 may come back as an int)."""
    if isinstance(original, float):
        return isinstance(loaded, (int, float)) and float(loaded) == original
    if isinstance(original, dict):
        return (
            isinstance(loaded, dict)
            and loaded.keys() == original.keys()
            and all(_same(loaded[k], original[k]) for k in original)
        )
    if isinstance(original, list):
        return (
            isinstance(loaded, list)
            and len(loaded) == len(original)
            and all(_same(a, b) for a, b in zip(loaded, original))
        )
    return type(loaded) is type(original) and loaded == original


@settings(max_examples=300, deadline=None)
@given(_json)
def test_round_trips_through_json_loads(value: object) -> None:
    encoded = canonical_json(value)
    assert _same(json.loads(encoded), value)
    # The canonical form is a fixed point.
    assert canonical_json(json.loads(encoded)) == encoded


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(_text, _json, max_size=8), st.randoms(use_true_random=False))
def test_key_order_does_not_matter(value: dict, rnd: object) -> None:
    items = list(value.items())
    rnd.shuffle(items)  # type: ignore[attr-defined]
    assert canonical_json(dict(items)) == canonical_json(value)


@settings(max_examples=500, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_floats_round_trip_exactly(value: float) -> None:
    text = canonical_json(value).decode("ascii")
    assert float(text) == value
    # ECMA-262 Number::toString: exponent form exactly outside [1e-6, 1e21).
    assert ("e" in text) == (abs(value) >= 1e21 or 0 < abs(value) < 1e-6)
    assert not text.endswith(".0") and "+" not in text.replace("e+", "")
