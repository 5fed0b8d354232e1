"""The offline bundle: written from a real database, verified with nothing but the file.

The bundle is cut once per module from the example's complete model
(``plugin_examples/train_classifier.py`` + an ``owner`` tag + a gated Production promotion,
so a signed decision exists); the database is deleted as soon as the bundle is written.
Each attack edits its own copy of the file and names the finding it must produce.

Trust, as documented in :mod:`mlflow_provenance.exports.offline`: without trusted keys
the verifier trusts the keys the bundle lists, so a forger who rebuilds and re-signs the
whole bundle with a key of their own passes; passing the log's key catches every such
forgery (:func:`test_consistent_forgery_passes_only_without_trusted_keys`).
"""

from __future__ import annotations

import base64
import copy
import functools
import hashlib
import importlib.util
import json
import os
import random
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pytest

from tests.conftest import isolated_env

from mlflow_provenance import merkle
from mlflow_provenance.canonical import canonical_json
from mlflow_provenance.checkpoint import Checkpoint, parse_checkpoint, sign_checkpoint
from mlflow_provenance.errors import ConfigurationError, FormatError
from mlflow_provenance.exports.bundle import BUNDLE_FORMAT
from mlflow_provenance.exports.offline import BundleReport, verify_bundle
from mlflow_provenance.keys import PublicKey, SigningKey, generate_signing_key

pytestmark = [pytest.mark.filterwarnings("ignore::FutureWarning"),
              pytest.mark.filterwarnings("ignore:Hint. Inferred schema:UserWarning")]

ROOT = Path(__file__).resolve().parents[2]
TRAIN_SCRIPT = ROOT / "plugin_examples" / "train_classifier.py"
MODEL = "wine-classifier"
OWNER = "ml-platform@example.com"


# --- the bundle under test -----------------------------------------------------------------


@dataclass(frozen=True)
class Golden:
    """The bundle of ``wine-classifier`` version 1, cut from a database that no longer exists."""

    path: Path  # never edit: attacks work on a copy (:func:`load`)
    run_path: Path  # the bundle of the training run alone
    written: dict[str, Any]  # what write_bundle returned
    database: Path
    private_pem: bytes  # the signing key's file, to prove none of it leaked
    vkey: str  # the log's verifier key, as an auditor would get it out of band
    run_id: str


@functools.lru_cache(maxsize=1)
def _example() -> Any:
    spec = importlib.util.spec_from_file_location("plugin_examples_train_classifier_bundle", TRAIN_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@functools.lru_cache(maxsize=1)
def _warm_environment_probes() -> None:
    """A process's first capture waits at most 5 s for its slowest probe and then records a
    partial manifest, which the Production gate refuses; let the probes finish once."""
    from mlflow_provenance.environment import capture_environment

    deadline = time.monotonic() + 60
    while capture_environment().status != "complete" and time.monotonic() < deadline:
        time.sleep(0.5)


@pytest.fixture(scope="module")
def golden(tmp_path_factory: pytest.TempPathFactory, migrated_sqlite_template: Path) -> Golden:
    root = tmp_path_factory.mktemp("bundle")
    database = root / "mlflow.db"
    shutil.copyfile(migrated_sqlite_template, database)
    with isolated_env(root, quick_log_model=True):
        uri = f"provenance+sqlite:///{database}"
        _warm_environment_probes()
        ids = _example().train(uri)
        client = _client(uri)
        client.set_registered_model_tag(MODEL, "owner", OWNER)
        client.transition_model_version_stage(MODEL, ids["version"], "Production")
        written = _export(database, root / "bundle.json", model=(MODEL, ids["version"]))
        _export(database, root / "run-bundle.json", run_id=ids["run_id"])
        private_pem, vkey = _signing_key_files()
    database.unlink()
    return Golden(root / "bundle.json", root / "run-bundle.json", written, database, private_pem, vkey, ids["run_id"])


def _client(uri: str) -> Any:
    import mlflow

    return mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)


def _export(database: Path, path: Path, **subject: Any) -> dict[str, Any]:
    import sqlalchemy as sa

    from mlflow_provenance import config
    from mlflow_provenance.exports.bundle import write_bundle
    from mlflow_provenance.exports.snapshot import take_snapshot

    engine = sa.create_engine(f"sqlite:///{database}")
    try:
        snapshot = take_snapshot(engine, config.trusted_keyring(), **subject)
    finally:
        engine.dispose()
    return write_bundle(snapshot, path)


def _signing_key_files() -> tuple[bytes, str]:
    from mlflow_provenance import config
    from mlflow_provenance.keys import load_signing_key

    path = config.default_key_path()
    return path.read_bytes(), load_signing_key(path).public_key.vkey()


# --- helpers for attacks -------------------------------------------------------------------


def label(vkey: str) -> str:
    """``NAME+KEYHASH``, as signature lines and reports name a key."""
    key = PublicKey.from_vkey(vkey)
    return f"{key.name}+{key.note_key_hash.hex()}"


def load(golden: Golden) -> dict[str, Any]:
    """A fresh, editable copy of the golden bundle."""
    return json.loads(golden.path.read_text(encoding="utf-8"))


def check(doc: dict[str, Any], tmp_path: Path, trusted_keys: list[str] | None = None) -> BundleReport:
    """Write ``doc`` as a bundle file and verify it."""
    path = tmp_path / "attacked-bundle.json"
    path.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    return verify_bundle(path, trusted_keys)


def kinds(report: BundleReport) -> set[str]:
    return {f.kind for f in report.findings}


def findings_of(report: BundleReport, kind: str) -> list[Any]:
    found = [f for f in report.findings if f.kind == kind]
    assert found, f"expected a {kind} finding:\n{report.summary()}"
    return found


def body(event: dict[str, Any]) -> dict[str, Any]:
    return json.loads(event["body"])


def run_events(doc: dict[str, Any]) -> list[dict[str, Any]]:
    run_id = doc["run"]["run_id"]
    return [e for e in doc["events"] if body(e)["entity"] == {"type": "run", "id": run_id}]


def event_writing(doc: dict[str, Any], table: str, **match: str) -> dict[str, Any]:
    """The covered event that wrote a ``table`` row with these column values."""
    for event in doc["events"]:
        for change_table, _op, _old, new in body(event)["payload"].get("changes") or ():
            row = json.loads(new) if new else {}
            if change_table == table and all(str(row.get(k)) == v for k, v in match.items()):
                return event
    raise AssertionError(f"no covered event wrote {table} {match}")


def edit_body(event: dict[str, Any], edit: Callable[[dict[str, Any]], None]) -> None:
    """Change an event's body as a JSON value and re-encode it canonically (hash untouched)."""
    doc = json.loads(event["body"])
    assert canonical_json(doc).decode() == event["body"], "the edit would re-encode more than it changes"
    edit(doc)
    event["body"] = canonical_json(doc).decode()


def set_param(name: str, value: str) -> Callable[[dict[str, Any]], None]:
    def edit(doc: dict[str, Any]) -> None:
        for change in doc["payload"]["changes"]:
            row = json.loads(change[3])
            if change[0] == "params" and row["key"] == name:
                row["value"] = value
                change[3] = json.dumps(row, separators=(",", ":"), ensure_ascii=False)
                return
        raise AssertionError(f"the event logs no param {name}")

    return edit


def rehash(event: dict[str, Any]) -> None:
    event["hash"] = hashlib.sha256(event["body"].encode("utf-8")).hexdigest()


def blob_of_kind(doc: dict[str, Any], kind: str) -> str:
    """The digest of the (first) document a covered record of ``kind`` names."""
    for event in doc["events"]:
        for record in body(event)["payload"].get("records") or ():
            if record.get("kind") == kind:
                return record["blob"]
    raise AssertionError(f"no {kind} record in the bundle")


def edit_blob(doc: dict[str, Any], digest: str, edit: Callable[[dict[str, Any]], None]) -> None:
    """Change a JSON document in place, keeping its (now wrong) digest."""
    content = json.loads(base64.b64decode(doc["blobs"][digest]["content"]))
    edit(content)
    doc["blobs"][digest]["content"] = base64.b64encode(canonical_json(content)).decode()


def resign(doc: dict[str, Any], key: SigningKey) -> None:
    """Sign the bundle's checkpoint (as it stands) with ``key`` alone, and list ``key``."""
    checkpoint, _ = parse_checkpoint(doc["checkpoint"]["note"])
    doc["checkpoint"]["note"] = sign_checkpoint(checkpoint, key)
    doc["keys"].append(key.public_key.vkey())


def forge(doc: dict[str, Any], key: SigningKey) -> None:
    """Everything a forger holding the file can redo: event hashes, chain links, a Merkle
    tree of their own (the bundle's events at their places, filler elsewhere), proofs, and a
    checkpoint over its root signed with ``key``."""
    renamed: dict[str, str] = {}
    for event in sorted(doc["events"] + doc["unsealed"], key=lambda e: e["seq"]):
        doc_ = body(event)
        if doc_["prev"] in renamed:
            doc_["prev"] = renamed[doc_["prev"]]
        event["body"] = canonical_json(doc_).decode()
        old = event["hash"]
        rehash(event)
        renamed[old] = event["hash"]
    checkpoint, _ = parse_checkpoint(doc["checkpoint"]["note"])
    leaves = [merkle.leaf_hash(b"filler %d" % i) for i in range(checkpoint.size)]
    for event in doc["events"]:
        leaves[event["seq"] - 1] = merkle.leaf_hash(event["body"].encode("utf-8"))
    for event in doc["events"]:
        event["proof"] = [h.hex() for h in merkle.inclusion_proof(leaves, event["seq"] - 1, checkpoint.size)]
    forged = Checkpoint(checkpoint.origin, checkpoint.size, merkle.root_from_leaves(leaves))
    doc["checkpoint"] = {"size": forged.size, "root": forged.root.hex(), "note": sign_checkpoint(forged, key)}
    doc["keys"].append(key.public_key.vkey())


# --- the honest bundle ---------------------------------------------------------------------


def test_bundle_verifies_with_nothing_but_the_file(golden: Golden) -> None:
    assert not golden.database.exists(), "the database must be gone before verifying"

    report = verify_bundle(golden.path)

    assert report.ok, report.summary()
    assert report.trust == "bundle"
    doc = load(golden)
    assert report.events == len(doc["events"]) > 20
    assert report.unsealed == len(doc["unsealed"])
    assert report.blobs == len(doc["blobs"]) >= 6  # manifest, 3 datasets, policy, evaluation, decision
    assert report.decisions == 1
    assert report.checkpoint == {"size": doc["checkpoint"]["size"], "root": doc["checkpoint"]["root"]}
    summary = report.summary()
    assert summary.startswith("OK")
    assert f"cut from checkpoint size {doc['checkpoint']['size']}, root {doc['checkpoint']['root']}" in summary
    assert json.loads(json.dumps(report.to_dict()))["ok"] is True


def test_bundle_verifies_against_the_logs_pinned_key(golden: Golden) -> None:
    report = verify_bundle(golden.path, trusted_keys=[golden.vkey])

    assert report.ok, report.summary()
    assert report.trust == "caller"
    assert report.signed_by == [label(golden.vkey)]
    assert "keys given by the caller" in report.summary()


def test_run_bundle_verifies(golden: Golden) -> None:
    report = verify_bundle(golden.run_path, trusted_keys=[golden.vkey])

    assert report.ok, report.summary()
    assert report.subject == f"run {golden.run_id}"
    assert report.decisions == 0  # the promotion belongs to the model version, not the run
    assert json.loads(golden.run_path.read_text())["model"] is None


def test_bundle_names_its_checkpoint_and_subject(golden: Golden) -> None:
    doc = load(golden)
    assert doc == golden.written  # write_bundle returns what it wrote
    assert doc["format"] == BUNDLE_FORMAT
    checkpoint, _ = parse_checkpoint(doc["checkpoint"]["note"])
    assert (doc["checkpoint"]["size"], doc["checkpoint"]["root"]) == (checkpoint.size, checkpoint.root.hex())
    root = checkpoint.root.hex()
    assert doc["cut_from"] == f"checkpoint size {checkpoint.size}, root {root} of log {checkpoint.origin}"
    assert doc["subject"] == f"model {MODEL}/1 (run {golden.run_id})"
    assert doc["model"]["stage"] == "Production"
    assert all(e["seq"] <= checkpoint.size for e in doc["events"])
    assert all(e["seq"] > checkpoint.size for e in doc["unsealed"])
    # the run's chain is complete: it starts at create_run and every link is present
    chain = run_events(doc)
    assert body(chain[0])["op"] == "create_run" and body(chain[0])["prev"] is None
    assert [body(e)["prev"] for e in chain[1:]] == [e["hash"] for e in chain[:-1]]


def test_bundle_holds_no_private_key_material(golden: Golden) -> None:
    from cryptography.hazmat.primitives import serialization

    text = golden.path.read_text(encoding="utf-8")
    private = serialization.load_pem_private_key(golden.private_pem, password=None)
    raw = private.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                serialization.NoEncryption())
    pem_body = "".join(line for line in golden.private_pem.decode().splitlines() if not line.startswith("-----"))
    assert "PRIVATE KEY" not in text
    for leaked in (base64.b64encode(raw).decode(), raw.hex(), pem_body, pem_body[-20:]):
        assert leaked not in text
    for vkey in load(golden)["keys"]:
        PublicKey.from_vkey(vkey)  # public verifier keys only


@pytest.mark.parametrize("where", ["param", "document"])
def test_export_refuses_a_private_key(golden: Golden, tmp_path: Path, where: str) -> None:
    from mlflow_provenance.exports.bundle import write_bundle
    from mlflow_provenance.exports.snapshot import Snapshot

    doc = load(golden)
    if where == "param":
        doc["run"]["params"]["leaked"] = golden.private_pem.decode()
    else:
        edit_blob(doc, blob_of_kind(doc, "environment-manifest"),
                  lambda manifest: manifest.update(notes=golden.private_pem.decode()))
    snapshot = Snapshot(doc["origin"], doc["checkpoint"], doc["keys"], doc["model"], doc["run"], doc["events"],
                        doc["unsealed"], doc["blobs"], doc["lineage"])
    target = tmp_path / "leaky.json"

    with pytest.raises(ConfigurationError, match="private key"):
        write_bundle(snapshot, target)
    assert not target.exists()
    assert not list(tmp_path.iterdir())  # no temporary file left behind either


def test_verifying_imports_neither_mlflow_nor_a_database_layer(golden: Golden) -> None:
    script = (
        "import sys\n"
        "from mlflow_provenance.exports.offline import verify_bundle\n"
        "report = verify_bundle(sys.argv[1], [sys.argv[2]])\n"
        "assert report.ok, report.summary()\n"
        "loaded = [m for m in sys.modules if m.split('.')[0] in ('mlflow', 'sqlalchemy')]\n"
        "assert not loaded, loaded\n"
        "print('verified offline')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", script, str(golden.path), golden.vkey], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "verified offline" in result.stdout


# --- one test per attack -------------------------------------------------------------------


def test_edited_param_in_event_body(golden: Golden, tmp_path: Path) -> None:
    doc = load(golden)
    event = event_writing(doc, "params", key="alpha")
    edit_body(event, set_param("alpha", "0.5"))

    report = check(doc, tmp_path)

    assert [f.event for f in findings_of(report, "event-altered")] == [event["seq"]]


def test_recomputed_event_hash(golden: Golden, tmp_path: Path) -> None:
    doc = load(golden)
    event = event_writing(doc, "params", key="alpha")
    edit_body(event, set_param("alpha", "0.5"))
    rehash(event)

    report = check(doc, tmp_path)

    assert "event-altered" not in kinds(report), report.summary()
    assert [f.event for f in findings_of(report, "inclusion-proof")] == [event["seq"]]


def test_edited_blob_content(golden: Golden, tmp_path: Path) -> None:
    doc = load(golden)
    digest = blob_of_kind(doc, "environment-manifest")
    edit_blob(doc, digest, lambda manifest: manifest.update(status="edited"))

    report = check(doc, tmp_path)

    assert [f.field for f in findings_of(report, "blob-altered")] == [f"blobs.{digest}"]


def test_removed_blob(golden: Golden, tmp_path: Path) -> None:
    doc = load(golden)
    digest = blob_of_kind(doc, "dataset")
    del doc["blobs"][digest]

    report = check(doc, tmp_path)

    (finding,) = findings_of(report, "blob-missing")
    assert digest in finding.message


def test_removed_middle_run_event(golden: Golden, tmp_path: Path) -> None:
    doc = load(golden)
    chain = run_events(doc)
    removed, following = chain[len(chain) // 2], chain[len(chain) // 2 + 1]
    doc["events"].remove(removed)

    report = check(doc, tmp_path)

    (finding,) = findings_of(report, "chain-broken")
    assert (finding.event, finding.entity) == (following["seq"], f"run {golden.run_id}")


def test_removed_first_run_event(golden: Golden, tmp_path: Path) -> None:
    doc = load(golden)
    first = run_events(doc)[0]
    doc["events"].remove(first)

    report = check(doc, tmp_path)

    assert run_events(doc)[0]["seq"] in [f.event for f in findings_of(report, "chain-broken")]


def test_sealed_event_listed_as_unsealed(golden: Golden, tmp_path: Path) -> None:
    """An edited event moved out of the checkpoint's reach, to escape its inclusion proof."""
    doc = load(golden)
    event = event_writing(doc, "params", key="alpha")
    doc["events"].remove(event)
    edit_body(event, set_param("alpha", "0.5"))
    rehash(event)
    doc["unsealed"].append({k: v for k, v in event.items() if k != "proof"})

    report = check(doc, tmp_path)

    assert event["seq"] in [f.event for f in findings_of(report, "inclusion-proof")]


def test_resigned_checkpoint_fails_when_the_signer_is_pinned(golden: Golden, tmp_path: Path) -> None:
    doc = load(golden)
    attacker = generate_signing_key("mlflow-provenance")
    resign(doc, attacker)

    pinned = check(doc, tmp_path, trusted_keys=[golden.vkey])
    unpinned = check(doc, tmp_path)

    assert "checkpoint-signature" in kinds(pinned), pinned.summary()
    assert not pinned.ok
    # documented: without trusted keys, a key the bundle lists is trusted
    assert unpinned.ok, unpinned.summary()
    assert unpinned.signed_by == [label(attacker.public_key.vkey())]


def test_consistent_forgery_passes_only_without_trusted_keys(golden: Golden, tmp_path: Path) -> None:
    doc = load(golden)
    edit_body(event_writing(doc, "params", key="alpha"), set_param("alpha", "0.5"))
    doc["run"]["params"]["alpha"] = "0.5"
    forge(doc, generate_signing_key("mlflow-provenance"))

    assert check(doc, tmp_path).ok  # internally consistent: that is all the bundle's own keys prove
    pinned = check(doc, tmp_path, trusted_keys=[golden.vkey])

    assert kinds(pinned) == {"checkpoint-signature"}, pinned.summary()


def test_altered_run_param_fact(golden: Golden, tmp_path: Path) -> None:
    doc = load(golden)
    assert doc["run"]["params"]["alpha"] == "0.0001"
    doc["run"]["params"]["alpha"] = "0.5"

    report = check(doc, tmp_path)

    (finding,) = findings_of(report, "fact-mismatch")
    assert (finding.field, finding.entity) == ("params.alpha", f"run {golden.run_id}")
    assert "'0.0001'" in finding.message


def test_altered_model_source_fact(golden: Golden, tmp_path: Path) -> None:
    doc = load(golden)
    doc["model"]["source"] = "models:/m-0123456789abcdef0123456789abcdef"

    report = check(doc, tmp_path)

    assert [f.field for f in findings_of(report, "fact-mismatch")] == ["source"]


@pytest.mark.parametrize("status, ended", [("FAILED", True), ("RUNNING", False)])  # RUNNING: an older row
def test_altered_run_status_fact(golden: Golden, tmp_path: Path, status: str, ended: bool) -> None:
    doc = load(golden)
    assert doc["run"]["status"] == "FINISHED"
    doc["run"]["status"] = status
    doc["run"]["end_time"] = doc["run"]["end_time"] if ended else None

    report = check(doc, tmp_path)

    assert [f.field for f in findings_of(report, "fact-mismatch")] == ["status, end_time"]


@pytest.mark.parametrize("stage", ["Staging", "None"])  # "None": the stage an older row recorded
def test_altered_model_stage_fact(golden: Golden, tmp_path: Path, stage: str) -> None:
    doc = load(golden)
    assert doc["model"]["stage"] == "Production"
    doc["model"]["stage"] = stage

    report = check(doc, tmp_path)

    (finding,) = findings_of(report, "fact-mismatch")
    assert finding.field == "stage"
    assert "'Production'" in finding.message


def test_truncated_run_chain(golden: Golden, tmp_path: Path) -> None:
    """The run's last event (its end) is dropped: the remaining links hold, the run's end does not."""
    doc = load(golden)
    last = run_events(doc)[-1]
    assert body(last)["op"] == "update_run_info"
    doc["events"].remove(last)

    report = check(doc, tmp_path)

    assert [f.field for f in findings_of(report, "fact-mismatch")] == ["status, end_time"]


def test_altered_promotion_decision(golden: Golden, tmp_path: Path) -> None:
    doc = load(golden)
    digest = blob_of_kind(doc, "promotion-decision")
    edit_blob(doc, digest, lambda decision: decision.update(missing=[], target="Production", actor="mallory"))

    report = check(doc, tmp_path)

    assert {"blob-altered", "decision-signature"} <= kinds(report), report.summary()
    (finding,) = findings_of(report, "decision-signature")
    assert finding.field == "signature"


def test_altered_checkpoint_copy(golden: Golden, tmp_path: Path) -> None:
    doc = load(golden)
    doc["checkpoint"]["size"] += 1

    report = check(doc, tmp_path)

    assert [f.field for f in findings_of(report, "checkpoint-altered")] == ["checkpoint.size"]


# --- the check cannot run ------------------------------------------------------------------


def test_truncated_bundle(golden: Golden, tmp_path: Path) -> None:
    path = tmp_path / "truncated.json"
    text = golden.path.read_bytes()
    path.write_bytes(text[: len(text) // 2])

    with pytest.raises(ConfigurationError, match="not valid JSON"):
        verify_bundle(path)


def test_duplicate_member(golden: Golden, tmp_path: Path) -> None:
    """JSON readers disagree on which of two equal keys wins; the verifier reads neither."""
    path = tmp_path / "duplicate.json"
    path.write_text(golden.path.read_text().replace('"origin": ', '"origin": "forged",\n  "origin": ', 1))

    with pytest.raises(FormatError, match="duplicate key 'origin'"):
        verify_bundle(path)


def test_not_a_bundle(golden: Golden, tmp_path: Path) -> None:
    doc = load(golden)
    doc["format"] = "mlflow-provenance/snapshot/v1"

    with pytest.raises(FormatError, match="is not a mlflow-provenance/bundle/v1 bundle"):
        check(doc, tmp_path)
    with pytest.raises(ConfigurationError, match="does not exist"):
        verify_bundle(tmp_path / "missing.json")


@pytest.mark.parametrize("trusted_keys, message", [
    ([], "empty keyring trusts nothing"),
    ("mlflow-provenance+00000000+AQ==", "not a single string"),
    (["not-a-key"], "trusted key #1"),
])
def test_unusable_trusted_keys(golden: Golden, trusted_keys: Any, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        verify_bundle(golden.path, trusted_keys)


def test_garbled_bundles_fail_cleanly(golden: Golden, tmp_path: Path) -> None:
    """Whatever a value is replaced with, verifying reports or raises ConfigurationError — never crashes."""
    rng = random.Random(20261128)
    original = load(golden)
    paths = list(_value_paths(original))
    replacements = [None, 0, -1, 2**70, 1.5, True, "", "x", "\ud800", [], {}, ["x"], {"x": 1}]
    for _ in range(300):
        doc = load(golden)
        *parents, last = rng.choice(paths)
        target = functools.reduce(lambda node, key: node[key], parents, doc)
        target[last] = copy.deepcopy(rng.choice(replacements))
        try:
            check(doc, tmp_path, trusted_keys=[golden.vkey] if rng.random() < 0.5 else None)
        except ConfigurationError:
            pass


def _value_paths(node: Any, prefix: tuple[Any, ...] = ()) -> Any:
    """Every path to a value inside ``node`` (dict keys and list indexes), event bodies' insides included
    only as whole strings."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        yield (*prefix, key)
        yield from _value_paths(value, (*prefix, key))
