"""RFC 8785 JSON Canonicalization Scheme (JCS).

:func:`canonical_json` turns a JSON-compatible Python value into the unique byte
string RFC 8785 assigns to it. Every hash and signature in this package is taken
over these bytes, so two processes that hold equal values always agree on them.

Supported types: ``dict`` (``str`` keys only), ``list``/``tuple``, ``str``,
``int``, ``float``, ``bool`` and ``None``.

One deliberate deviation from RFC 8785: a Python ``int`` is written as its exact
decimal digits, whatever its magnitude. RFC 8785 §3.2.2.3 treats every number as
an IEEE 754 double, so an integer beyond ±2**53 would lose precision there;
MLflow identifiers and counters can be that large and must survive a round trip
exactly. For integers within ±2**53 both forms are identical. A ``float`` always
follows RFC 8785 (so ``1.0`` is written ``1``).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from json.encoder import encode_basestring  # the C accelerated string escaper
from typing import Any, ClassVar, Mapping, TypeVar

from mlflow_provenance.errors import CanonicalizationError, FormatError, ProvenanceError

__all__ = ["canonical_json"]

# Integer-valued doubles below 2**53 print as their exact digits (RFC 8785
# §3.2.2.3 / ECMA-262 Number::toString): every neighbour is at most 1 apart, so
# the shortest round-trip digits are the integer itself.
_EXACT_INT_LIMIT = float(2**53)


def canonical_json(obj: Any) -> bytes:
    """Serialize ``obj`` as RFC 8785 canonical JSON, UTF-8 encoded.

    Raises:
        CanonicalizationError: ``obj`` holds NaN or an infinity, a ``dict`` key that
            is not a ``str``, a lone surrogate in a string, a value of an unsupported
            type, or is nested too deeply (or is circular). The message names the
            JSON path of the offending value.
    """
    parts: list[str] = []
    try:
        _encode(obj, parts.append)
    except RecursionError:
        raise CanonicalizationError(
            "value is nested too deeply or contains a reference cycle; "
            "canonical JSON needs a finite tree of dicts and lists"
        ) from None
    text = "".join(parts)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        # RFC 8785 §3.2.2.2 requires well-formed Unicode: a lone surrogate has no
        # UTF-8 encoding.
        raise CanonicalizationError(
            f"string contains a lone surrogate (U+{ord(text[exc.start]):04X}); "
            "canonical JSON needs valid Unicode text"
        ) from None


def _encode(obj: Any, emit: Any) -> None:
    """Append the canonical text of ``obj`` to the output via ``emit``."""
    t = type(obj)
    # Exact type checks first: they are the hot path and keep bool out of int.
    if t is str:
        # RFC 8785 §3.2.2.2: escape only '"', '\\' and U+0000..U+001F, with the
        # short forms \b \t \n \f \r and lowercase \u00xx otherwise; every other
        # character is written as is. json.encoder.encode_basestring does exactly
        # that (checked by tests/core/test_canonical.py).
        emit(encode_basestring(obj))
    elif t is dict:
        _encode_dict(obj, emit)
    elif t is list or t is tuple:
        _encode_list(obj, emit)
    elif t is int:
        emit(int.__repr__(obj))
    elif t is float:
        emit(_format_float(obj))
    elif obj is None:
        emit("null")
    elif obj is True:
        emit("true")
    elif obj is False:
        emit("false")
    # Subclasses (IntEnum, str-based enums, OrderedDict, ...) take the slow path.
    elif isinstance(obj, str):
        emit(encode_basestring(str.__str__(obj)))
    elif isinstance(obj, dict):
        _encode_dict(obj, emit)
    elif isinstance(obj, (list, tuple)):
        _encode_list(obj, emit)
    elif isinstance(obj, int):
        emit(int.__repr__(obj))
    elif isinstance(obj, float):
        emit(_format_float(float(obj)))
    else:
        raise CanonicalizationError(
            f"value of type {t.__name__} is not JSON; canonical JSON accepts dict, "
            "list, tuple, str, int, float, bool and None"
        )


def _encode_dict(obj: dict, emit: Any) -> None:
    """RFC 8785 §3.2.3: members sorted by the UTF-16 code units of their names."""
    for key in obj:
        if type(key) is not str and not isinstance(key, str):
            raise CanonicalizationError(
                f"object key {key!r} is a {type(key).__name__}; canonical JSON "
                "object keys must be str"
            )
    keys = list(obj)
    if all(k.isascii() for k in keys):
        keys.sort()  # for ASCII, code points and UTF-16 code units agree
    else:
        try:
            keys.sort(key=_utf16_sort_key)
        except UnicodeEncodeError:
            raise CanonicalizationError(
                "an object key contains a lone surrogate; canonical JSON needs valid "
                "Unicode text"
            ) from None
    if not keys:
        emit("{}")
        return
    sep = "{"
    for key in keys:
        emit(sep)
        emit(encode_basestring(key))
        emit(":")
        try:
            _encode(obj[key], emit)
        except CanonicalizationError as exc:
            raise _at(exc, f"[{encode_basestring(key)}]") from None
        sep = ","
    emit("}")


def _encode_list(obj: list | tuple, emit: Any) -> None:
    """RFC 8785 §3.2.1: array elements in their original order."""
    if not obj:
        emit("[]")
        return
    sep = "["
    for i, item in enumerate(obj):
        emit(sep)
        try:
            _encode(item, emit)
        except CanonicalizationError as exc:
            raise _at(exc, f"[{i}]") from None
        sep = ","
    emit("]")


def _utf16_sort_key(key: str) -> bytes:
    # Big-endian UTF-16 bytes compare exactly as the sequence of code units does.
    return key.encode("utf-16-be")


def _at(exc: CanonicalizationError, step: str) -> CanonicalizationError:
    """Prefix the JSON path of the failing value to an error raised below it."""
    message = str(exc)
    if message.startswith("at $"):
        return CanonicalizationError("at $" + step + message[len("at $") :])
    return CanonicalizationError(f"at ${step}: {message}")


def _format_float(value: float) -> str:
    """Serialize a double as ECMA-262 Number::toString does (RFC 8785 §3.2.2.3)."""
    if value.is_integer() and -_EXACT_INT_LIMIT < value < _EXACT_INT_LIMIT:
        return str(int(value))  # also maps -0.0 to "0"
    if not math.isfinite(value):
        raise CanonicalizationError(
            f"{value!r} is not a JSON number; RFC 8785 §3.2.2.3 forbids NaN and "
            "Infinity — replace it with null or a string"
        )
    # repr() gives the shortest digits that round-trip, which is the digit
    # string ECMA-262 §6.1.6.1.20 asks for; only the layout may differ.
    text = repr(value)
    if "e" not in text and not text.endswith(".0"):
        # Positional non-integer (1e-4 <= |x| < 1e16): same layout as ECMA-262.
        return text
    sign = ""
    if text[0] == "-":
        sign, text = "-", text[1:]
    mantissa, _, exp_text = text.partition("e")
    int_part, _, frac_part = mantissa.partition(".")
    all_digits = int_part + frac_part
    digits = all_digits.lstrip("0")
    # value = 0.<digits> * 10**n  (ECMA-262's k digits and exponent n)
    n = len(int_part) - (len(all_digits) - len(digits)) + (int(exp_text) if exp_text else 0)
    digits = digits.rstrip("0")
    k = len(digits)
    if k <= n <= 21:
        return sign + digits + "0" * (n - k)
    if 0 < n <= 21:
        return sign + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return sign + "0." + "0" * (-n) + digits
    e = n - 1
    exp = ("+" if e >= 0 else "-") + str(abs(e))
    if k == 1:
        return sign + digits + "e" + exp
    return sign + digits[0] + "." + digits[1:] + "e" + exp


def sha256_digest(content: bytes) -> str:
    """``sha256:<hex>``: how the ledger names a document by its bytes."""
    return "sha256:" + hashlib.sha256(content).hexdigest()


_D = TypeVar("_D", bound="CanonicalDocument")


@dataclass(frozen=True)
class CanonicalDocument:
    """A JSON object with its canonical bytes and digest: the identity of every document the
    ledger stores content-addressed (environment manifests, dataset and evaluation records).
    Unknown fields are kept. Subclasses name the document and the error they raise."""

    document: dict[str, Any]
    content: bytes
    digest: str

    WHAT: ClassVar[str] = "document"
    ERROR: ClassVar[type[ProvenanceError]] = FormatError

    @classmethod
    def from_document(cls: type[_D], document: Mapping[str, Any]) -> _D:
        """Raises: ``ERROR`` when the object has no RFC 8785 form (NaN, 1e400, lone surrogates…)."""
        doc = dict(document)
        try:
            content = canonical_json(doc)
        except (CanonicalizationError, RecursionError) as exc:
            raise cls.ERROR(f"{cls.WHAT} has no RFC 8785 canonical form: {exc}") from exc
        return cls(doc, content, sha256_digest(content))

    @classmethod
    def parse(cls: type[_D], content: bytes) -> _D:
        """Parse stored or received bytes, which must be a JSON object in canonical form.

        Raises: ``ERROR`` naming what is wrong.
        """
        try:
            doc = json.loads(content)
        except (ValueError, RecursionError) as exc:
            raise cls.ERROR(f"{cls.WHAT} is not valid JSON: {exc}") from exc
        if not isinstance(doc, dict):
            raise cls.ERROR(f"{cls.WHAT} must be a JSON object")
        parsed = cls.from_document(doc)
        if parsed.content != content:
            raise cls.ERROR(f"{cls.WHAT} is not in RFC 8785 canonical form")
        return parsed
