"""``mlflow-provenance lineage | export | verify-bundle``: the commands an auditor runs (issue 6)."""

from __future__ import annotations

import importlib.util
import json
import warnings
from pathlib import Path

import mlflow
import pytest

from tests.conftest import run_cli

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def promoted(sqlite_uri: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    from mlflow.utils import requirements_utils

    monkeypatch.setattr(requirements_utils, "_capture_imported_modules", lambda *a, **k: ["sklearn"])
    spec = importlib.util.spec_from_file_location("example_cli", ROOT / "plugin_examples" / "train_classifier.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    ids = example.train(sqlite_uri)
    client = mlflow.MlflowClient(tracking_uri=sqlite_uri, registry_uri=sqlite_uri)
    client.set_registered_model_tag("wine-classifier", "owner", "ml-platform@example.com")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        client.transition_model_version_stage("wine-classifier", ids["version"], "Production")
    return {**ids, "uri": sqlite_uri}


def test_lineage_upstream_and_downstream_in_three_shapes(promoted):
    uri, model = promoted["uri"], f"models:/wine-classifier/{promoted['version']}"
    code, text = run_cli("lineage", model, "--tracking-uri", uri)
    assert code == 0
    for expected in ("wine-raw", "wine-train", "wine-test", "train_test_split", "CC-BY-4.0", "stage Production"):
        assert expected in text, expected
    code, out = run_cli("lineage", model, "--tracking-uri", uri, "--json")
    view = json.loads(out)
    raw = next(d["digest"] for d in view["ancestors"] + view["datasets"] if d["name"] == "wine-raw")
    code, dot = run_cli("lineage", model, "--tracking-uri", uri, "--dot")
    assert code == 0 and dot.startswith("digraph") and raw in dot
    code, out = run_cli("lineage", "--dataset", raw, "--tracking-uri", uri, "--json")
    down = json.loads(out)
    assert code == 0
    assert {d["name"] for d in down["derived"]} >= {"wine-train", "wine-test"}
    assert promoted["run_id"] in json.dumps(down["runs"]) and "models:/wine-classifier/1" in json.dumps(down["models"])
    assert run_cli("lineage", "--dataset", "sha256:" + "0" * 64, "--tracking-uri", uri)[0] == 2
    assert run_cli("lineage", "--tracking-uri", uri)[0] == 2  # neither a model nor a dataset


def test_every_export_format_names_its_checkpoint_and_the_bundle_verifies_offline(promoted, tmp_path):
    uri, model = promoted["uri"], f"models:/wine-classifier/{promoted['version']}"
    outputs = {}
    for fmt in ("bundle", "prov-json", "prov-o", "slsa", "openlineage"):
        path = tmp_path / f"export.{fmt}"
        code, out = run_cli("export", model, "--format", fmt, "-o", str(path), "--tracking-uri", uri)
        assert code == 0, out
        outputs[fmt] = path.read_text()
    bundle = json.loads(outputs["bundle"])
    root = bundle["checkpoint"]["root"]
    assert all(root in text for fmt, text in outputs.items() if fmt != "slsa"), "an export does not name its checkpoint"
    import base64

    statement = json.loads(base64.b64decode(json.loads(outputs["slsa"])["payload"]))
    assert root in json.dumps(statement)
    assert run_cli("verify-bundle", str(tmp_path / "export.bundle"))[0] == 0
    code, out = run_cli("verify-bundle", str(tmp_path / "export.bundle"), "--json")
    assert code == 0 and json.loads(out)["ok"] is True

    # A tampered bundle: exit 1; an unreadable one: exit 2; an existing output is not overwritten.
    doc = json.loads(outputs["bundle"])
    body = json.loads(doc["events"][-1]["body"])
    body["actor"] = "mallory"
    doc["events"][-1]["body"] = json.dumps(body, separators=(",", ":"), sort_keys=True)
    (tmp_path / "tampered.json").write_text(json.dumps(doc))
    assert run_cli("verify-bundle", str(tmp_path / "tampered.json"))[0] == 1
    (tmp_path / "broken.json").write_text(outputs["bundle"][:100])
    assert run_cli("verify-bundle", str(tmp_path / "broken.json"))[0] == 2
    assert run_cli("export", model, "--format", "bundle", "-o", str(tmp_path / "export.bundle"),
                   "--tracking-uri", uri)[0] == 2
