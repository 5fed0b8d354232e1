"""Tests for dataset and evaluation records (mlflow_provenance.datasets.records).

Expected digests are recomputed here from hashlib and canonical_json; expected documents
are written out literally.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import inspect
import json
import os
import time
from types import SimpleNamespace

import numpy as np
import pytest

from mlflow_provenance.canonical import canonical_json
from mlflow_provenance.datasets.records import (
    MEDIA_TYPE,
    Record,
    RecordError,
    check,
    dataset_record,
    evaluation_record,
    mlflow_digest,
    parse_thresholds,
)
from mlflow_provenance.errors import ProvenanceError

D = "sha256:" + hashlib.sha256(b"dataset one").hexdigest()
P1 = "sha256:" + hashlib.sha256(b"parent one").hexdigest()
P2 = "sha256:" + hashlib.sha256(b"parent two").hexdigest()
DESC = {"method": "sha256 over sorted file digests", "files": 3}


def sha256_of(document: dict) -> str:
    return "sha256:" + hashlib.sha256(canonical_json(document)).hexdigest()


def build(**overrides):
    kwargs = {"name": "train", "digest": D, "digest_description": DESC}
    kwargs.update(overrides)
    return dataset_record(**kwargs)


def evaluate(**overrides):
    kwargs = {
        "run_id": "run-1",
        "metrics": {"accuracy": 0.93},
        "dataset": {"digest": D, "name": "eval"},
        "model": None,
        "slice": None,
        "seed": 7,
        "thresholds": None,
        "ci": {},
    }
    kwargs.update(overrides)
    return evaluation_record(**kwargs)


def double_it(frame, factor=2):
    """A named transformation function used by the tests."""
    return frame * factor


# --- RecordError ---------------------------------------------------------------------------


def test_record_error_is_value_error_and_provenance_error():
    assert issubclass(RecordError, ValueError)
    assert issubclass(RecordError, ProvenanceError)
    with pytest.raises(ValueError):
        build(name="")
    with pytest.raises(ProvenanceError):
        build(name="")


# --- dataset records: document and digest --------------------------------------------------


def test_minimal_dataset_record_document_and_digest():
    record = build()
    expected = {
        "kind": "dataset",
        "record_version": 1,
        "name": "train",
        "context": "training",
        "digest": D,
        "digest_description": {"method": "sha256 over sorted file digests", "files": 3},
        "source": None,
        "license": None,
        "consent": None,
        "collected": None,
        "owner": None,
        "filters": None,
        "features": None,
        "parents": [],
        "transformations": [],
        "snapshot": None,
    }
    assert record.document == expected
    assert record.content == canonical_json(expected)
    assert record.digest == sha256_of(expected)
    assert record.kind == "dataset"
    assert record.media_type == "application/vnd.mlflow-provenance.dataset.v1+json"
    assert record.media_type == MEDIA_TYPE["dataset"]


def test_full_dataset_record_digest_covers_every_field():
    record = build(
        context="evaluation",
        source={"uri": "s3://bucket/data", "version": 3},
        license="MIT",
        consent={"purpose": ["research"]},
        collected=(dt.date(2025, 1, 1), dt.date(2025, 6, 30)),
        owner="data-team",
        filters={"country": "FR"},
        features="v12",
        parents=[P1],
        transformations=["dedupe"],
        snapshot={"path": "/tmp/x"},
    )
    doc = record.document
    assert doc["context"] == "evaluation"
    assert doc["source"] == {"uri": "s3://bucket/data", "version": 3}
    assert doc["owner"] == "data-team"
    assert doc["filters"] == {"country": "FR"}
    assert doc["features"] == "v12"
    assert doc["snapshot"] == {"path": "/tmp/x"}
    assert doc["collected"] == {"start": "2025-01-01T00:00:00Z", "end": "2025-06-30T00:00:00Z"}
    assert record.digest == sha256_of(doc)
    # A different owner gives a different digest.
    assert build(owner="someone-else").digest != build(owner="data-team").digest


def test_same_inputs_give_same_digest():
    assert build(license="MIT").digest == build(license="MIT").digest
    assert build(license="MIT").content == build(license="MIT").content


def test_empty_snapshot_is_recorded_as_none():
    assert build(snapshot={}).document["snapshot"] is None


# --- name, context, owner -------------------------------------------------------------------


@pytest.mark.parametrize("name", ["", "   ", None, 5, b"train"])
def test_name_must_be_non_empty_string(name):
    with pytest.raises(RecordError, match="name"):
        build(name=name)


@pytest.mark.parametrize("context", ["", None, 3])
def test_context_must_be_non_empty_string(context):
    with pytest.raises(RecordError, match="context"):
        build(context=context)


def test_owner_optional_but_must_be_string():
    assert build(owner=None).document["owner"] is None
    with pytest.raises(RecordError, match="owner"):
        build(owner="")
    with pytest.raises(RecordError, match="owner"):
        build(owner=42)


# --- digest ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "digest",
    [
        "abc",
        "sha256:" + "a" * 40,  # sha1 length
        "sha256:" + "A" * 64,  # uppercase hex
        "sha256:" + "a" * 63,
        "sha256:" + "a" * 65,
        "sha1:" + "a" * 64,
        "a" * 64,  # no algorithm
        "sha256:" + "g" * 64,
        " sha256:" + "a" * 64,
        None,
        123,
    ],
)
def test_bad_digest_rejected(digest):
    with pytest.raises(RecordError, match="digest"):
        build(digest=digest)


def test_digest_with_trailing_newline_rejected():
    with pytest.raises(RecordError, match="digest"):
        build(digest=D + "\n")


def test_mlflow_digest_is_first_36_hex_chars():
    hexpart = hashlib.sha256(b"dataset one").hexdigest()
    assert mlflow_digest(D) == hexpart[:36]
    assert len(mlflow_digest(D)) == 36
    assert mlflow_digest(build().digest) == build().digest[len("sha256:"):][:36]


# --- license ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "expression",
    [
        "MIT",
        "Apache-2.0 OR MIT",
        "GPL-2.0-only WITH Classpath-exception-2.0",
        "MIT AND (Apache-2.0 OR BSD-3-Clause)",
        "CC-BY-4.0",
    ],
)
def test_license_spdx_detected(expression):
    assert build(license=expression).document["license"] == {"expression": expression, "kind": "spdx"}


@pytest.mark.parametrize(
    "text",
    ["internal use only, no redistribution", "Proprietary: see contract #12", "MIT OR", "MIT or Apache-2.0"],
)
def test_license_free_text(text):
    assert build(license=text).document["license"] == {"expression": text, "kind": "text"}


@pytest.mark.parametrize("bad", ["", "  ", 7])
def test_license_empty_or_non_string_rejected(bad):
    with pytest.raises(RecordError, match="license"):
        build(license=bad)


# --- collected window ----------------------------------------------------------------------


def test_window_of_dates():
    doc = build(collected=(dt.date(2024, 1, 1), dt.date(2024, 12, 31))).document
    assert doc["collected"] == {"start": "2024-01-01T00:00:00Z", "end": "2024-12-31T00:00:00Z"}


def test_window_datetimes_with_timezone_normalised_to_utc():
    plus2 = dt.timezone(dt.timedelta(hours=2))
    doc = build(
        collected=[dt.datetime(2024, 3, 1, 10, 0, tzinfo=plus2), dt.datetime(2024, 3, 2, 1, 30, tzinfo=dt.timezone.utc)]
    ).document
    assert doc["collected"] == {"start": "2024-03-01T08:00:00Z", "end": "2024-03-02T01:30:00Z"}


@pytest.fixture
def local_time_not_utc():
    """Make the process's local time zone UTC-5, so 'naive means local' would show."""
    if not hasattr(time, "tzset"):
        if os.environ.get("CI"):
            pytest.fail("time.tzset is required in CI (Linux)")
        pytest.skip("time.tzset is not available on this platform")
    saved = os.environ.get("TZ")
    os.environ["TZ"] = "EST+05"
    time.tzset()
    try:
        assert time.timezone == 5 * 3600
        yield
    finally:
        if saved is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = saved
        time.tzset()


def test_window_naive_datetimes_treated_as_utc(local_time_not_utc):
    doc = build(collected=(dt.datetime(2024, 3, 1, 10, 0), dt.datetime(2024, 3, 1, 11, 0))).document
    assert doc["collected"] == {"start": "2024-03-01T10:00:00Z", "end": "2024-03-01T11:00:00Z"}


def test_window_iso_strings(local_time_not_utc):
    doc = build(collected=("2024-03-01T10:00:00Z", "2024-03-01T12:00:00+01:00")).document
    assert doc["collected"] == {"start": "2024-03-01T10:00:00Z", "end": "2024-03-01T11:00:00Z"}
    doc = build(collected=("2024-03-01", "2024-03-02T00:00:00.250000")).document
    assert doc["collected"] == {"start": "2024-03-01T00:00:00Z", "end": "2024-03-02T00:00:00.250000Z"}


def test_window_mapping_and_open_ends():
    doc = build(collected={"start": "2024-01-01", "end": None}).document
    assert doc["collected"] == {"start": "2024-01-01T00:00:00Z", "end": None}
    doc = build(collected=(None, dt.date(2024, 2, 1))).document
    assert doc["collected"] == {"start": None, "end": "2024-02-01T00:00:00Z"}
    doc = build(collected={"end": "2024-02-01"}).document
    assert doc["collected"] == {"start": None, "end": "2024-02-01T00:00:00Z"}


def test_window_equal_ends_allowed():
    doc = build(collected=("2024-01-01", dt.date(2024, 1, 1))).document
    assert doc["collected"] == {"start": "2024-01-01T00:00:00Z", "end": "2024-01-01T00:00:00Z"}


def test_window_start_after_end_rejected():
    with pytest.raises(RecordError, match="collected"):
        build(collected=("2024-02-01", "2024-01-01"))
    # Compared as instants: 10:00+02:00 is 08:00Z, after 07:00Z.
    with pytest.raises(RecordError, match="collected"):
        build(collected=("2024-01-01T10:00:00+02:00", "2024-01-01T07:00:00Z"))


def test_window_instants_compared_in_utc_not_wall_clock():
    # 10:00+02:00 (08:00Z) is before 09:00Z although its wall clock reads later.
    doc = build(collected=("2024-01-01T10:00:00+02:00", "2024-01-01T09:00:00Z")).document
    assert doc["collected"] == {"start": "2024-01-01T08:00:00Z", "end": "2024-01-01T09:00:00Z"}


@pytest.mark.parametrize("bad", [("yesterday", None), ("2024-01-01", "2024-13-01"), (None, "2024/01/02")])
def test_window_not_a_date_string_rejected(bad):
    with pytest.raises(RecordError, match="collected"):
        build(collected=bad)


@pytest.mark.parametrize(
    "bad",
    ["2024-01-01", ("2024-01-01",), ("2024-01-01", "2024-01-02", "2024-01-03"), 20240101, ("2024-01-01", 5)],
)
def test_window_wrong_shape_or_type_rejected(bad):
    with pytest.raises(RecordError, match="collected"):
        build(collected=bad)


# --- parents -------------------------------------------------------------------------------


def test_parents_from_records_objects_and_strings():
    parent_record = build(name="raw", digest=P1)
    other = SimpleNamespace(digest=P2)
    doc = build(parents=[parent_record, other, P1]).document
    assert doc["parents"] == [parent_record.digest, P2, P1]
    assert parent_record.digest != P1  # the record's own digest, not the data digest


@pytest.mark.parametrize("bad", ["abc", SimpleNamespace(digest="sha256:xyz"), None, 5])
def test_bad_parent_rejected(bad):
    with pytest.raises(RecordError, match="parents"):
        build(parents=[P1, bad])


def test_parents_must_be_sequence():
    with pytest.raises(RecordError, match="parents"):
        build(parents=P1)  # a bare string, not a list


def test_dataset_cannot_be_its_own_parent():
    with pytest.raises(RecordError, match="own parent"):
        build(parents=[P1, D])
    with pytest.raises(RecordError, match="own parent"):
        build(parents=[SimpleNamespace(digest=D)])
    with pytest.raises(RecordError, match="own parent"):
        check({"kind": "dataset", "name": "n", "context": "training", "digest": D, "parents": [D]})


# --- transformations --------------------------------------------------------------------------


def test_transformation_mapping():
    doc = build(
        transformations=[
            {
                "name": "filter",
                "code": "pkg.clean:drop_nulls",
                "parameters": {"threshold": 0.5, "cols": ["a", "b"]},
                "description": "drop rows with nulls",
            }
        ]
    ).document
    assert doc["transformations"] == [
        {
            "name": "filter",
            "code": {"reference": "pkg.clean:drop_nulls"},
            "parameters": {"threshold": 0.5, "cols": ["a", "b"]},
            "description": "drop rows with nulls",
        }
    ]


def test_transformation_bare_name():
    doc = build(transformations=("dedupe", "shuffle")).document
    assert doc["transformations"] == [{"name": "dedupe", "parameters": {}}, {"name": "shuffle", "parameters": {}}]


def test_transformation_function_records_reference_and_source_digest():
    doc = build(transformations=[double_it]).document
    source_digest = "sha256:" + hashlib.sha256(inspect.getsource(double_it).encode()).hexdigest()
    assert doc["transformations"] == [
        {"name": "double_it", "code": {"reference": f"{__name__}:double_it", "digest": source_digest}, "parameters": {}}
    ]
    assert "return frame * factor" in inspect.getsource(double_it)


def test_transformation_function_as_code_in_mapping():
    doc = build(transformations=[{"name": "scale", "code": double_it, "parameters": {"factor": 3}}]).document
    step = doc["transformations"][0]
    assert step["name"] == "scale"
    assert step["code"]["reference"] == f"{__name__}:double_it"
    assert step["code"]["digest"] == "sha256:" + hashlib.sha256(inspect.getsource(double_it).encode()).hexdigest()
    assert step["parameters"] == {"factor": 3}


def test_transformation_lambda():
    square = lambda x: x * x  # noqa: E731
    step = build(transformations=[square]).document["transformations"][0]
    assert step["name"] == "<lambda>"
    assert step["code"]["reference"] == f"{__name__}:test_transformation_lambda.<locals>.<lambda>"
    assert step["code"]["digest"] == "sha256:" + hashlib.sha256(inspect.getsource(square).encode()).hexdigest()


def test_transformation_builtin_without_source():
    step = build(transformations=[len]).document["transformations"][0]
    assert step["name"] == "len"
    assert step["code"]["reference"] == "builtins:len"
    assert step["code"]["digest"] is None
    assert step["code"]["reason"] == "source not available"


def test_transformation_code_digest():
    digest = "sha256:" + hashlib.sha256(b"code").hexdigest()
    step = build(transformations=[{"name": "x", "code": "m:f", "code_digest": digest}]).document["transformations"][0]
    assert step["code"] == {"reference": "m:f", "digest": digest}
    step = build(transformations=[{"name": "x", "code_digest": digest}]).document["transformations"][0]
    assert step["code"] == {"digest": digest}


@pytest.mark.parametrize("bad", ["abc", "sha256:" + "A" * 64, 12])
def test_transformation_code_digest_validated(bad):
    with pytest.raises(RecordError, match=r"transformations\[0\]\.code_digest"):
        build(transformations=[{"name": "x", "code": "m:f", "code_digest": bad}])


def test_transformation_unknown_keys_rejected():
    with pytest.raises(RecordError, match=r"transformations\[1\].*unknown keys.*params"):
        build(transformations=["ok", {"name": "x", "params": {}}])


def test_transformation_name_required():
    with pytest.raises(RecordError, match=r"transformations\[0\]\.name"):
        build(transformations=[{"code": "m:f"}])
    with pytest.raises(RecordError, match=r"transformations\[0\]\.name"):
        build(transformations=[""])


@pytest.mark.parametrize("bad", [5, 3.5, None, ["a"]])
def test_transformation_wrong_type_rejected(bad):
    with pytest.raises(RecordError, match=r"transformations\[0\]"):
        build(transformations=[bad])


@pytest.mark.parametrize("parameters", [{"keep": {1, 2}}, {"obj": object()}, {"x": float("nan")}, {1: "int key"}])
def test_transformation_non_json_parameters_rejected(parameters):
    with pytest.raises(RecordError, match=r"transformations\[0\]\.parameters"):
        build(transformations=[{"name": "x", "parameters": parameters}])


def test_transformation_bad_code_and_description():
    with pytest.raises(RecordError, match=r"transformations\[0\]\.code"):
        build(transformations=[{"name": "x", "code": 12}])
    with pytest.raises(RecordError, match=r"transformations\[0\]\.description"):
        build(transformations=[{"name": "x", "description": 12}])


# --- JSON fields ----------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["source", "consent", "filters", "features"])
@pytest.mark.parametrize("value", [float("nan"), {"x": float("inf")}, object(), {"s": {1, 2}}, {1: "a"}])
def test_json_fields_reject_non_json(field, value):
    with pytest.raises(RecordError, match=field):
        build(**{field: value})


def test_digest_description_and_snapshot_must_be_json():
    with pytest.raises(RecordError, match="digest_description"):
        build(digest_description={"x": float("nan")})
    with pytest.raises(RecordError, match="snapshot"):
        build(snapshot={"x": object()})


# --- Record.from_bytes --------------------------------------------------------------------


def test_from_bytes_round_trip():
    record = build(license="MIT", parents=[P1], transformations=[double_it])
    again = Record.from_bytes(record.content)
    assert again == record
    assert again.digest == record.digest


def test_from_bytes_rejects_non_canonical():
    record = build()
    pretty = json.dumps(record.document, indent=2, sort_keys=True).encode()
    assert json.loads(pretty) == record.document
    with pytest.raises(RecordError, match="canonical"):
        Record.from_bytes(pretty)
    unsorted = json.dumps(dict(reversed(list(record.document.items()))), separators=(",", ":")).encode()
    with pytest.raises(RecordError, match="canonical"):
        Record.from_bytes(unsorted)
    with pytest.raises(RecordError, match="canonical"):
        Record.from_bytes(record.content.replace(b'"record_version":1', b'"record_version":1.0'))


@pytest.mark.parametrize("content", [b"[1,2]", b'"dataset"', b"null", b"3"])
def test_from_bytes_rejects_non_objects(content):
    with pytest.raises(RecordError, match="object"):
        Record.from_bytes(content)


@pytest.mark.parametrize("content", [b"not json", b"", b"{", b"\xff\xfe"])
def test_from_bytes_rejects_invalid_json(content):
    with pytest.raises(RecordError):
        Record.from_bytes(content)


def test_from_bytes_rejects_nan():
    with pytest.raises(RecordError):
        Record.from_bytes(b'{"kind":"dataset","x":NaN}')


@pytest.mark.parametrize("kind", ["model", None, 1])
def test_from_bytes_rejects_unknown_kind(kind):
    doc = dict(build().document, kind=kind)
    with pytest.raises(RecordError, match="kind"):
        Record.from_bytes(canonical_json(doc))
    missing = {k: v for k, v in build().document.items() if k != "kind"}
    with pytest.raises(RecordError, match="kind"):
        Record.from_bytes(canonical_json(missing))


def test_from_bytes_checks_structure():
    doc = dict(build().document, digest="sha256:short")
    with pytest.raises(RecordError, match="digest"):
        Record.from_bytes(canonical_json(doc))
    doc = dict(build().document, parents=[D])
    with pytest.raises(RecordError, match="own parent"):
        Record.from_bytes(canonical_json(doc))
    doc = dict(build().document, transformations={"name": "x"})
    with pytest.raises(RecordError, match="transformations"):
        Record.from_bytes(canonical_json(doc))


def test_from_bytes_keeps_unknown_fields():
    doc = dict(build().document, zz_future_field={"added": [1, 2, 3]}, a_new="x")
    content = canonical_json(doc)
    record = Record.from_bytes(content)
    assert record.document["zz_future_field"] == {"added": [1, 2, 3]}
    assert record.document["a_new"] == "x"
    assert record.content == content
    assert record.digest == "sha256:" + hashlib.sha256(content).hexdigest()
    assert record.digest != build().digest


def test_from_bytes_evaluation_round_trip_with_extra_field():
    record = evaluate(thresholds={"accuracy": 0.9})
    content = canonical_json(dict(record.document, reviewer="alice"))
    again = Record.from_bytes(content)
    assert again.kind == "evaluation"
    assert again.media_type == "application/vnd.mlflow-provenance.evaluation.v1+json"
    assert again.document["reviewer"] == "alice"
    assert again.content == content


# --- thresholds ------------------------------------------------------------------------------


def test_threshold_bare_number_means_at_least():
    assert parse_thresholds({"accuracy": 0.9}, {"accuracy": 0.93}) == {
        "accuracy": {"operator": ">=", "value": 0.9, "met": True}
    }
    assert parse_thresholds({"accuracy": 1}, {"accuracy": 0.93}) == {
        "accuracy": {"operator": ">=", "value": 1.0, "met": False}
    }


@pytest.mark.parametrize(
    "op, value, bound, met",
    [
        (">=", 0.9, 0.9, True),
        (">=", 0.89, 0.9, False),
        (">", 0.9, 0.9, False),
        (">", 0.91, 0.9, True),
        ("<=", 0.2, 0.2, True),
        ("<=", 0.21, 0.2, False),
        ("<", 0.2, 0.2, False),
        ("<", 0.19, 0.2, True),
    ],
)
def test_threshold_operators(op, value, bound, met):
    result = parse_thresholds({"m": {op: bound}}, {"m": value})
    assert result == {"m": {"operator": op, "value": bound, "met": met}}


def test_threshold_none_and_empty():
    assert parse_thresholds(None, {"m": 1.0}) == {}
    assert parse_thresholds({}, {"m": 1.0}) == {}


def test_threshold_unknown_metric():
    with pytest.raises(RecordError, match="f1"):
        parse_thresholds({"f1": 0.5}, {"accuracy": 0.9})


def test_threshold_two_operators_or_none():
    with pytest.raises(RecordError, match="exactly one operator"):
        parse_thresholds({"m": {">=": 0.1, "<=": 0.9}}, {"m": 0.5})
    with pytest.raises(RecordError, match="exactly one operator"):
        parse_thresholds({"m": {}}, {"m": 0.5})


@pytest.mark.parametrize("op", ["=>", "==", "=", "ge", "≥"])
def test_threshold_unknown_operator(op):
    with pytest.raises(RecordError, match="uses"):
        parse_thresholds({"m": {op: 0.5}}, {"m": 0.5})


@pytest.mark.parametrize("bound", [float("nan"), float("inf"), float("-inf"), True, False, "0.9", None, [0.9]])
def test_threshold_bad_bound(bound):
    with pytest.raises(RecordError, match="threshold for 'm'"):
        parse_thresholds({"m": bound}, {"m": 0.5})
    with pytest.raises(RecordError, match="threshold for 'm'"):
        parse_thresholds({"m": {"<": bound}}, {"m": 0.5})


def test_threshold_numpy_bound_accepted():
    result = parse_thresholds({"m": {"<": np.float32(0.5)}}, {"m": 0.25})
    assert result == {"m": {"operator": "<", "value": 0.5, "met": True}}
    assert type(result["m"]["value"]) is float


# --- evaluation records ------------------------------------------------------------------------


def test_evaluation_record_document_and_digest():
    record = evaluate(
        metrics={"accuracy": 0.93, "loss": 0.12},
        model={"model_id": "m-1"},
        slice={"region": "EU"},
        thresholds={"accuracy": 0.9, "loss": {"<=": 0.2}},
        ci={"accuracy": {"low": 0.9, "high": 0.95}},
    )
    expected = {
        "kind": "evaluation",
        "record_version": 1,
        "run_id": "run-1",
        "metrics": {"accuracy": 0.93, "loss": 0.12},
        "dataset": {"digest": D, "name": "eval"},
        "model": {"model_id": "m-1"},
        "slice": {"region": "EU"},
        "seed": 7,
        "thresholds": {
            "accuracy": {"operator": ">=", "value": 0.9, "met": True},
            "loss": {"operator": "<=", "value": 0.2, "met": True},
        },
        "thresholds_met": True,
        "ci": {"accuracy": {"low": 0.9, "high": 0.95}},
    }
    assert record.document == expected
    assert record.content == canonical_json(expected)
    assert record.digest == sha256_of(expected)
    assert record.kind == "evaluation"


def test_evaluation_thresholds_met_requires_all():
    record = evaluate(metrics={"accuracy": 0.93, "loss": 0.3}, thresholds={"accuracy": 0.9, "loss": {"<=": 0.2}})
    assert record.document["thresholds"]["accuracy"]["met"] is True
    assert record.document["thresholds"]["loss"]["met"] is False
    assert record.document["thresholds_met"] is False
    record = evaluate(metrics={"accuracy": 0.5, "loss": 0.3}, thresholds={"accuracy": 0.9, "loss": {"<=": 0.2}})
    assert record.document["thresholds_met"] is False


def test_evaluation_thresholds_met_none_without_thresholds():
    assert evaluate(thresholds=None).document["thresholds_met"] is None
    assert evaluate(thresholds={}).document["thresholds_met"] is None
    assert evaluate(thresholds=None).document["thresholds"] == {}


def test_evaluation_numpy_metrics_accepted():
    record = evaluate(metrics={"a": np.float64(0.5), "b": np.float32(0.25), "c": np.int64(3), "d": 2})
    assert record.document["metrics"] == {"a": 0.5, "b": 0.25, "c": 3.0, "d": 2.0}
    assert all(type(v) is float for v in record.document["metrics"].values())


@pytest.mark.parametrize(
    "value", [float("nan"), np.float64("nan"), float("inf"), np.float32("-inf"), True, np.bool_(True), "0.9", None]
)
def test_evaluation_metric_must_be_finite_number(value):
    with pytest.raises(RecordError, match="metric 'acc'"):
        evaluate(metrics={"acc": value})


def test_evaluation_metric_huge_int_rejected_with_record_error():
    with pytest.raises(RecordError, match="metric 'acc'"):
        evaluate(metrics={"acc": 10**400})


def test_evaluation_metric_name_must_be_string():
    with pytest.raises(RecordError, match="metric name"):
        evaluate(metrics={"": 0.5})
    with pytest.raises(RecordError, match="metric name"):
        evaluate(metrics={3: 0.5})


def test_evaluation_needs_metrics():
    with pytest.raises(RecordError, match="at least one metric"):
        evaluate(metrics={})


def test_evaluation_dataset_digest_checked():
    with pytest.raises(RecordError, match="dataset.digest"):
        evaluate(dataset={"digest": "sha256:abc"})
    with pytest.raises(RecordError, match="dataset.digest"):
        evaluate(dataset={"name": "eval"})


def test_evaluation_run_id_required():
    with pytest.raises(RecordError, match="run_id"):
        evaluate(run_id="")
    with pytest.raises(RecordError, match="run_id"):
        evaluate(run_id=None)


def test_evaluation_threshold_errors_propagate():
    with pytest.raises(RecordError, match="f1"):
        evaluate(thresholds={"f1": 0.5})


@pytest.mark.parametrize("field, value", [("slice", {"x": {1}}), ("seed", float("nan")), ("ci", {"a": object()})])
def test_evaluation_json_fields(field, value):
    with pytest.raises(RecordError, match=field):
        evaluate(**{field: value})


def test_check_evaluation_documents():
    good = evaluate().document
    check(good)
    with pytest.raises(RecordError, match="metrics"):
        check(dict(good, metrics={}))
    with pytest.raises(RecordError, match="dataset"):
        check(dict(good, dataset=None))
    with pytest.raises(RecordError, match="dataset.digest"):
        check(dict(good, dataset={"digest": D.upper()}))


def test_record_digest_matches_content_everywhere():
    for record in (build(), evaluate(), build(transformations=[len, double_it])):
        assert record.digest == "sha256:" + hashlib.sha256(record.content).hexdigest()
        assert Record.from_bytes(record.content).document == record.document
