"""Dataset and evaluation records: the documents bound into the ledger (issue 4).

A record is a JSON object in RFC 8785 canonical form; its identity is ``sha256:<hex>``
of those bytes (like the environment manifest). Records are built here from what the
caller passed, validated (a clear :class:`RecordError` names the field and the fix), and
read back keeping fields a newer writer may add.

* A **dataset record** names the data's full-content digest and how it was computed,
  its source, license (SPDX expression or free text), consent constraints, collection
  window, owner, filtering criteria, feature-definitions version, parents (digests of the
  datasets it was derived from) and the transformations that derived it.
* An **evaluation record** binds metric values to the evaluation dataset's digest, the
  data slice, the seed, the model and the run, with thresholds (and whether each was
  met) and confidence intervals.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import inspect
import math
import re
from typing import Any, Callable, Mapping, Sequence

from mlflow_provenance.canonical import CanonicalDocument, canonical_json
from mlflow_provenance.errors import CanonicalizationError, ProvenanceError

RECORD_VERSION = 1
DATASET = "dataset"
EVALUATION = "evaluation"
MEDIA_TYPE = {
    DATASET: "application/vnd.mlflow-provenance.dataset.v1+json",
    EVALUATION: "application/vnd.mlflow-provenance.evaluation.v1+json",
}
CONTEXTS_HINT = "training, validation, evaluation, test…"
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")  # used with fullmatch: "$" would admit a final newline
#: An SPDX license expression: ids joined by AND / OR / WITH, optional parentheses.
_SPDX = re.compile(r"^\(?[A-Za-z0-9.+-]+\)?(?: (?:AND|OR|WITH) \(?[A-Za-z0-9.+-]+\)?)*$")
_SPDX_TOKEN = re.compile(r"[A-Za-z0-9.+-]+")
#: SPDX license ids (and exceptions) common for data and code; any ``LicenseRef-…`` counts
#: too. A word outside this list ("proprietary") is recorded as free text, not as SPDX.
SPDX_IDS = frozenset("""
0BSD AFL-3.0 AGPL-3.0-only AGPL-3.0-or-later Apache-1.1 Apache-2.0 Artistic-2.0 BSD-1-Clause
BSD-2-Clause BSD-3-Clause BSD-3-Clause-Clear BSD-4-Clause BSL-1.0 CC-BY-1.0 CC-BY-2.0 CC-BY-2.5
CC-BY-3.0 CC-BY-4.0 CC-BY-NC-2.0 CC-BY-NC-3.0 CC-BY-NC-4.0 CC-BY-NC-ND-3.0 CC-BY-NC-ND-4.0
CC-BY-NC-SA-2.0 CC-BY-NC-SA-3.0 CC-BY-NC-SA-4.0 CC-BY-ND-3.0 CC-BY-ND-4.0 CC-BY-SA-2.0 CC-BY-SA-3.0
CC-BY-SA-4.0 CC-PDDC CC0-1.0 CDDL-1.0 CDDL-1.1 CDLA-Permissive-1.0 CDLA-Permissive-2.0
CDLA-Sharing-1.0 ECL-2.0 EPL-1.0 EPL-2.0 EUPL-1.1 EUPL-1.2 GFDL-1.3-only GFDL-1.3-or-later
GPL-2.0-only GPL-2.0-or-later GPL-3.0-only GPL-3.0-or-later ISC LGPL-2.1-only LGPL-2.1-or-later
LGPL-3.0-only LGPL-3.0-or-later MIT MIT-0 MPL-1.1 MPL-2.0 MS-PL NCSA ODbL-1.0 ODC-By-1.0 OFL-1.1
OGL-UK-3.0 OpenSSL PDDL-1.0 PostgreSQL PSF-2.0 Python-2.0 Unlicense UPL-1.0 W3C WTFPL X11 Zlib ZPL-2.1
Classpath-exception-2.0 LLVM-exception GCC-exception-3.1 Autoconf-exception-3.0
""".split())
#: MLflow's ``datasets.digest`` column holds 36 characters: the first 36 hex digits of ours.
MLFLOW_DIGEST_CHARS = 36


class RecordError(ProvenanceError, ValueError):
    """A dataset or evaluation record cannot be built from what was given."""


class Record(CanonicalDocument):
    """A validated record with its canonical bytes and digest."""

    WHAT = "record"
    ERROR = RecordError

    @classmethod
    def from_bytes(cls, content: bytes) -> "Record":
        """Parse and check a stored or received record.

        Raises:
            RecordError: not canonical JSON, or not a well-formed record of a known kind.
        """
        record = cls.parse(content)
        check(record.document)
        return record

    @property
    def kind(self) -> str:
        return str(self.document.get("kind"))

    @property
    def media_type(self) -> str:
        return MEDIA_TYPE[self.kind]


def mlflow_digest(digest: str) -> str:
    """The form of a full digest that fits MLflow's dataset digest column."""
    return digest.split(":", 1)[1][:MLFLOW_DIGEST_CHARS]


# --- dataset records ---------------------------------------------------------------------------


def dataset_record(
    *,
    name: str,
    digest: str,
    digest_description: Mapping[str, Any],
    context: str = "training",
    source: Any = None,
    license: str | None = None,
    consent: Any = None,
    collected: Any = None,
    owner: str | None = None,
    transformations: Sequence[Any] = (),
    parents: Sequence[Any] = (),
    filters: Any = None,
    features: Any = None,
    snapshot: Mapping[str, Any] | None = None,
) -> Record:
    """Build and validate a dataset record.

    Raises:
        RecordError: naming the bad argument and what it should be.
    """
    doc: dict[str, Any] = {
        "kind": DATASET,
        "record_version": RECORD_VERSION,
        "name": _text("name", name, required=True),
        "context": _text("context", context, required=True),
        "digest": _digest("digest", digest),
        "digest_description": _json("digest_description", dict(digest_description)),
        "source": _json("source", source),
        "license": _license(license),
        "consent": _json("consent", consent),
        "collected": _window(collected),
        "owner": _text("owner", owner),
        "filters": _json("filters", filters),
        "features": _json("features", features),
        "parents": [_parent(p) for p in _sequence("parents", parents)],
        "transformations": [_transformation(i, t) for i, t in enumerate(_sequence("transformations", transformations))],
        "snapshot": _json("snapshot", dict(snapshot) if snapshot else None),
    }
    check(doc)
    return Record.from_document(doc)


def _license(value: Any) -> dict[str, str] | None:
    if value is None:
        return None
    text = _text("license", value, required=True)
    ids = [t for t in _SPDX_TOKEN.findall(text) if t not in ("AND", "OR", "WITH")]
    spdx = bool(_SPDX.match(text)) and all(t in SPDX_IDS or t.startswith("LicenseRef-") for t in ids)
    return {"expression": text, "kind": "spdx" if spdx else "text"}


def _window(value: Any) -> dict[str, str] | None:
    """``collected``: a (start, end) pair or ``{"start": …, "end": …}`` of dates/times."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        start, end = value.get("start"), value.get("end")
    elif isinstance(value, (tuple, list)) and len(value) == 2:
        start, end = value
    else:
        raise RecordError("collected must be a (start, end) pair or {'start': …, 'end': …} of dates or ISO 8601 times")
    begin, finish = _instant("collected start", start), _instant("collected end", end)
    if begin and finish and begin[0] > finish[0]:
        raise RecordError(f"collected window starts ({begin[1]}) after it ends ({finish[1]})")
    return {"start": begin[1] if begin else None, "end": finish[1] if finish else None}


def _instant(what: str, value: Any) -> tuple[_dt.datetime, str] | None:
    if value is None:
        return None
    if isinstance(value, _dt.datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=_dt.timezone.utc)
    elif isinstance(value, _dt.date):
        moment = _dt.datetime(value.year, value.month, value.day, tzinfo=_dt.timezone.utc)
    elif isinstance(value, str):
        try:
            moment = _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise RecordError(f"{what} {value!r} is not an ISO 8601 date or time (e.g. 2026-01-31)") from exc
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=_dt.timezone.utc)
    else:
        raise RecordError(f"{what} must be a date, a datetime or an ISO 8601 string, not {type(value).__name__}")
    moment = moment.astimezone(_dt.timezone.utc)
    return moment, moment.isoformat().replace("+00:00", "Z")


def _parent(value: Any) -> str:
    digest = getattr(value, "digest", value)
    return _digest("parents", digest)


def _transformation(index: int, value: Any) -> dict[str, Any]:
    """``{"name", "code", "parameters"}``; ``code`` a reference string, or a function whose
    module, qualified name and source digest are recorded."""
    where = f"transformations[{index}]"
    if isinstance(value, str):
        value = {"name": value}
    elif callable(value) and not isinstance(value, Mapping):
        value = {"name": getattr(value, "__name__", repr(value)), "code": value}
    if not isinstance(value, Mapping):
        raise RecordError(f"{where} must be a mapping with 'name' (and 'code', 'parameters'), a name, or a function")
    unknown = set(value) - {"name", "code", "code_digest", "parameters", "description"}
    if unknown:
        raise RecordError(f"{where} has unknown keys {sorted(unknown)}; allowed: name, code, code_digest, parameters, description")
    step: dict[str, Any] = {"name": _text(f"{where}.name", value.get("name"), required=True)}
    code = value.get("code")
    if callable(code):
        step["code"] = _function_reference(code)
    elif code is not None:
        step["code"] = {"reference": _text(f"{where}.code", code, required=True)}
    if value.get("code_digest") is not None:
        step.setdefault("code", {})["digest"] = _digest(f"{where}.code_digest", value["code_digest"])
    step["parameters"] = _json(f"{where}.parameters", value.get("parameters") or {})
    if value.get("description") is not None:
        step["description"] = _text(f"{where}.description", value["description"])
    return step


def _function_reference(fn: Callable[..., Any]) -> dict[str, Any]:
    reference = f"{getattr(fn, '__module__', '?')}:{getattr(fn, '__qualname__', repr(fn))}"
    try:
        source = inspect.getsource(fn)
    except (OSError, TypeError):
        return {"reference": reference, "digest": None, "reason": "source not available"}
    return {"reference": reference, "digest": "sha256:" + hashlib.sha256(source.encode()).hexdigest()}


# --- evaluation records ------------------------------------------------------------------------

_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">=": lambda v, t: v >= t,
    ">": lambda v, t: v > t,
    "<=": lambda v, t: v <= t,
    "<": lambda v, t: v < t,
}


def parse_thresholds(thresholds: Mapping[str, Any] | None, metrics: Mapping[str, float]) -> dict[str, dict[str, Any]]:
    """``{"accuracy": 0.9}`` (at least) or ``{"loss": {"<=": 0.2}}`` → operator, value, met.

    Raises:
        RecordError: a threshold for a metric that was not given, an unknown operator, a
            value that is not a finite number.
    """
    result: dict[str, dict[str, Any]] = {}
    for metric, spec in (thresholds or {}).items():
        if metric not in metrics:
            raise RecordError(f"threshold for {metric!r}, which is not among the metrics {sorted(metrics)}")
        if isinstance(spec, Mapping):
            if len(spec) != 1:
                raise RecordError(f"threshold for {metric!r} must have exactly one operator, e.g. {{'>=': 0.9}}")
            (op, bound), = spec.items()
        else:
            op, bound = ">=", spec
        if op not in _OPERATORS:
            raise RecordError(f"threshold for {metric!r} uses {op!r}; use one of {', '.join(_OPERATORS)}")
        bound = _number(f"threshold for {metric!r}", bound)
        result[metric] = {"operator": op, "value": bound, "met": _OPERATORS[op](metrics[metric], bound)}
    return result


def evaluation_record(
    *,
    run_id: str,
    metrics: Mapping[str, Any],
    dataset: Mapping[str, Any],
    model: Mapping[str, Any] | None,
    slice: Any,
    seed: Any,
    thresholds: Mapping[str, Any] | None,
    ci: Mapping[str, Any],
) -> Record:
    """Build and validate an evaluation record.

    Raises:
        RecordError: naming the bad argument.
    """
    values = {_text("metric name", k, required=True): _number(f"metric {k!r}", v) for k, v in metrics.items()}
    if not values:
        raise RecordError("log_evaluation needs at least one metric, e.g. {'accuracy': 0.93}")
    checked = parse_thresholds(thresholds, values)
    doc = {
        "kind": EVALUATION,
        "record_version": RECORD_VERSION,
        "run_id": _text("run_id", run_id, required=True),
        "metrics": values,
        "dataset": _json("dataset", dict(dataset)),
        "model": _json("model", dict(model) if model else None),
        "slice": _json("slice", slice),
        "seed": _json("seed", seed),
        "thresholds": checked,
        "thresholds_met": all(t["met"] for t in checked.values()) if checked else None,
        "ci": _json("ci", dict(ci)),
    }
    check(doc)
    return Record.from_document(doc)


# --- checks shared by builders and readers --------------------------------------------------------


def check(doc: Mapping[str, Any]) -> None:
    """The structural checks a store applies to a received record.

    Raises:
        RecordError: naming the field.
    """
    kind = doc.get("kind")
    if kind == DATASET:
        for name in ("name", "context"):
            _text(name, doc.get(name), required=True)
        _digest("digest", doc.get("digest"))
        for parent in doc.get("parents") or []:
            _digest("parents", parent)
        if doc.get("digest") in (doc.get("parents") or []):
            raise RecordError("a dataset cannot be its own parent")
        if not isinstance(doc.get("transformations", []), list):
            raise RecordError("transformations must be a list")
    elif kind == EVALUATION:
        _text("run_id", doc.get("run_id"), required=True)
        metrics = doc.get("metrics")
        if not isinstance(metrics, Mapping) or not metrics:
            raise RecordError("an evaluation record needs metrics")
        dataset = doc.get("dataset")
        if not isinstance(dataset, Mapping):
            raise RecordError("an evaluation record needs its dataset")
        _digest("dataset.digest", dataset.get("digest"))
    else:
        raise RecordError(f"unknown record kind {kind!r} (expected {DATASET!r} or {EVALUATION!r})")


def _digest(what: str, value: Any) -> str:
    if not isinstance(value, str) or not _DIGEST.fullmatch(value):
        raise RecordError(
            f"{what} must be a full digest 'sha256:<64 hex>' (as returned by log_dataset(...).digest), got {value!r}"
        )
    return value


def _text(what: str, value: Any, *, required: bool = False) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise RecordError(f"{what} must be a non-empty string, got {value!r}")
    return value


def _number(what: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            import numpy as np

            if isinstance(value, (np.integer, np.floating)):
                value = float(value)
        except ImportError:  # pragma: no cover
            pass
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RecordError(f"{what} must be a finite number, got {value!r}")
    try:
        number = float(value)
    except OverflowError as exc:
        raise RecordError(f"{what} must be a finite number, got an integer too large for a float") from exc
    if not math.isfinite(number):
        raise RecordError(f"{what} must be a finite number, got {value!r}")
    return number


def _sequence(what: str, value: Any) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, (list, tuple)):
        raise RecordError(f"{what} must be a list or tuple, got {type(value).__name__}")
    return list(value)


def _json(what: str, value: Any) -> Any:
    try:
        canonical_json(value)
    except (CanonicalizationError, TypeError, ValueError) as exc:
        raise RecordError(f"{what} must be JSON data (strings, numbers, lists, mappings): {exc}") from exc
    return value
