"""Standard-format exports, checked with libraries that are not ours.

One real database, built once for this module: ``plugin_examples/train_classifier.py`` on
a fresh SQLite store (its script in a git work tree with an uncommitted change, so the
manifest names a commit and a diff), an ``owner`` tag, and a promotion to Production (a
signed decision). The snapshot of ``wine-classifier`` version 1 is then rendered:

* W3C PROV: re-read by ``prov`` (PROV-JSON) and parsed by ``rdflib`` (Turtle), whose SPARQL
  engine answers the lineage questions;
* in-toto/SLSA: the Statement checked against the specs' required fields (``jsonschema``),
  the DSSE envelope verified by ``securesystemslib``, tampering refused;
* OpenLineage: each event rebuilt as ``openlineage-python`` objects (whose validators
  check UUIDs, times and URIs) and serialized back by its ``Serde`` to the same JSON.
  openlineage-python 1.54 ships no JSON Schema of the spec, so its generated classes —
  generated from that schema — are the reference.

Expected values come from MLflow's client, git, and the ledger tables read with
``sqlite3`` — not from the snapshot the renderers read.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import datetime as dt
import functools
import hashlib
import importlib.util
import json
import shutil
import sqlite3
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

import jsonschema
import mlflow
import prov
import pytest
import rdflib
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from openlineage.client import event_v2
from openlineage.client.generated import (
    datasource_dataset,
    dataset_version_dataset,
    job_type_job,
    ownership_dataset,
    processing_engine_run,
    schema_dataset,
)
from openlineage.client.serde import Serde
from prov.model import ProvDocument
from securesystemslib.dsse import Envelope
from securesystemslib.exceptions import VerificationError
from securesystemslib.signer import SSlibKey

from mlflow_provenance import config
from mlflow_provenance.environment import code as code_probe
from mlflow_provenance.errors import ConfigurationError, FormatError, SignatureError
from mlflow_provenance.exports.openlineage import openlineage_run_id, to_run_events
from mlflow_provenance.exports.prov import to_prov_document, write_prov_json, write_prov_turtle
from mlflow_provenance.exports.slsa import pae, sign_dsse, to_statement, verify_dsse
from mlflow_provenance.exports.snapshot import Snapshot, take_snapshot
from mlflow_provenance.keys import SigningKey, generate_signing_key, load_signing_key
from tests.conftest import inner_db_uri

pytestmark = [pytest.mark.filterwarnings("ignore::FutureWarning"),
              pytest.mark.filterwarnings("ignore:Hint. Inferred schema:UserWarning")]

ROOT = Path(__file__).resolve().parents[2]
MODEL = "wine-classifier"
OWNER = "ml-platform@example.com"
MLPROV = rdflib.Namespace("https://mlflow-provenance.dev/ns#")
PARAM = rdflib.Namespace("https://mlflow-provenance.dev/ns/param#")


# --- the database ---------------------------------------------------------------------------------


@dataclasses.dataclass
class World:
    """What the example made, as MLflow, git and the ledger tables tell it."""

    snapshot: Snapshot
    signing_key: SigningKey
    run: Any  # mlflow.entities.Run
    model_id: str
    checkpoint: dict[str, Any]  # newest prov_checkpoints row
    datasets: dict[str, str]  # context → data digest, from the ledger's dataset records
    git_commit: str
    diff_sha256: str
    subjects: list[dict[str, Any]]


@functools.lru_cache(maxsize=1)
def _example() -> Any:
    script = ROOT / "plugin_examples" / "train_classifier.py"
    spec = importlib.util.spec_from_file_location("train_classifier_exports", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _git_repo(where: Path) -> tuple[Path, str, str]:
    """A work tree with a committed script, then changed: (script, HEAD commit, diff sha256)."""
    where.mkdir()
    script = where / "train.py"
    script.write_text("print('v1')\n")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false"]
    for args in (["init", "-q"], ["add", "train.py"], ["commit", "-q", "-m", "v1"]):
        subprocess.run(git + args, cwd=where, check=True, capture_output=True)
    script.write_text("print('v2, not committed')\n")
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, check=True, capture_output=True, text=True).stdout
    diff = subprocess.run(["git", "diff", "HEAD", "--binary", "--no-color", "--no-ext-diff"], cwd=where,
                          check=True, capture_output=True).stdout
    return script, commit.strip(), hashlib.sha256(diff).hexdigest()


def _warm_environment_probes() -> None:
    """Let the cached probes finish once, so the run gets a complete manifest (see
    tests/adapters/test_promotion_gate.py)."""
    from mlflow_provenance.environment import capture_environment

    deadline = time.monotonic() + 60
    while capture_environment().status != "complete" and time.monotonic() < deadline:
        time.sleep(0.5)


def _ledger(db: Path) -> tuple[dict[str, Any], dict[str, str]]:
    """The newest checkpoint row and the dataset records' digests by context, via sqlite3."""
    with sqlite3.connect(db) as conn:
        newest = "SELECT size, root, note FROM prov_checkpoints ORDER BY id DESC LIMIT 1"
        size, root, note = conn.execute(newest).fetchone()
        bodies = [b for (b,) in conn.execute("SELECT body FROM prov_events WHERE body LIKE '%\"kind\":\"dataset\"%'")]
    datasets = {}
    for body in bodies:
        for record in json.loads(body)["payload"].get("records") or []:
            if record.get("kind") == "dataset":
                datasets[record["context"]] = record["data_digest"]
    return {"size": size, "root": root, "note": note}, datasets


def _subjects(artifacts: Path) -> list[dict[str, Any]]:
    """The model's files, as the CLI will name them: path under the artifact root + sha256."""
    return [{"name": str(p.relative_to(artifacts)), "digest": {"sha256": hashlib.sha256(p.read_bytes()).hexdigest()}}
            for p in sorted(artifacts.rglob("*")) if p.is_file()]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, migrated_sqlite_template: Path) -> Iterator[World]:
    """Train, tag, promote and snapshot once (the per-test home of conftest does not apply)."""
    from mlflow.utils import requirements_utils

    base = tmp_path_factory.mktemp("exports")
    db = base / "mlflow.db"
    shutil.copyfile(migrated_sqlite_template, db)
    uri = f"provenance+sqlite:///{db}"
    script, commit, diff_sha256 = _git_repo(base / "repo")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(config.ENV_HOME, str(base / "home"))
        for name in (config.ENV_KEY, config.ENV_KEYRING, config.ENV_POLICY, config.ENV_MODE,
                     "MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME",
                     "MLFLOW_RUN_ID"):
            mp.delenv(name, raising=False)
        mp.chdir(base)
        mp.setattr(requirements_utils, "_capture_imported_modules", lambda *a, **k: ["sklearn"])
        mp.setattr(code_probe, "entry_point", lambda argv=None: {
            "kind": "script", "path": str(script), "sha256": hashlib.sha256(script.read_bytes()).hexdigest()})
        _warm_environment_probes()
        ids = _example().train(uri)
        client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
        client.set_registered_model_tag(MODEL, "owner", OWNER)
        client.transition_model_version_stage(MODEL, ids["version"], "Production")
        engine = sa.create_engine(inner_db_uri(uri))
        snapshot = take_snapshot(engine, config.trusted_keyring(), model=(MODEL, ids["version"]))
        engine.dispose()
        signing_key = load_signing_key(config.default_key_path())
        run = client.get_run(ids["run_id"])
        model_id = ids["model_uri"][len("models:/"):]
        artifacts = Path(client.get_logged_model(model_id).artifact_location)
    checkpoint, datasets = _ledger(db)
    yield World(snapshot, signing_key, run, model_id, checkpoint, datasets, commit, diff_sha256, _subjects(artifacts))
    _reset_mlflow()


def _reset_mlflow() -> None:
    import mlflow.tracking.fluent as fluent

    from mlflow_provenance.adapters.binding import dispose_engines

    mlflow.set_tracking_uri(None)
    mlflow.set_registry_uri(None)
    fluent._active_experiment_id = None
    dispose_engines()


def test_the_database_is_what_the_tests_assume(world: World) -> None:
    assert {"source", "training", "evaluation"} <= set(world.datasets)
    assert world.snapshot.model["stage"] == "Production"
    assert world.snapshot.checkpoint["root"] == world.checkpoint["root"]
    assert any(s["name"].endswith("MLmodel") for s in world.subjects)


# --- W3C PROV --------------------------------------------------------------------------------------


def test_prov_json_is_read_back_by_prov_with_every_record(world: World, tmp_path: Path) -> None:
    doc = to_prov_document(world.snapshot)
    path = tmp_path / "provenance.json"
    write_prov_json(doc, path)

    again = prov.read(str(path), format="json")
    assert again is not None
    assert len(again.get_records()) == len(doc.get_records()) > 50
    assert again == doc
    assert ProvDocument.deserialize(content=path.read_text(), format="json") == doc


def test_prov_writers_refuse_a_path_they_cannot_write(world: World, tmp_path: Path) -> None:
    doc = to_prov_document(world.snapshot)
    with pytest.raises(ConfigurationError, match="cannot write"):
        write_prov_json(doc, tmp_path / "missing-dir" / "p.json")
    with pytest.raises(ConfigurationError, match="cannot write"):
        write_prov_turtle(doc, tmp_path / "missing-dir" / "p.ttl")


@pytest.fixture(scope="module")
def graph(world: World, tmp_path_factory: pytest.TempPathFactory) -> rdflib.Graph:
    path = tmp_path_factory.mktemp("prov") / "provenance.ttl"
    write_prov_turtle(to_prov_document(world.snapshot), path)
    parsed = rdflib.Graph()
    parsed.parse(path, format="turtle")
    return parsed


def _ask(graph: rdflib.Graph, where: str, **bindings: Any) -> list[Any]:
    prefixes = (f"PREFIX prov: <http://www.w3.org/ns/prov#>\nPREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>\n"
                f"PREFIX mlprov: <{MLPROV}>\nPREFIX param: <{PARAM}>\n")
    values = {name: rdflib.Literal(value) if not isinstance(value, rdflib.term.Node) else value
              for name, value in bindings.items()}
    return list(graph.query(prefixes + where, initBindings=values))


# PROV-O writes a qualified relation (with time, role or activity) as prov:qualifiedX; the
# property paths below accept the plain and the qualified form alike.
GENERATED_BY = "(prov:wasGeneratedBy|(prov:qualifiedGeneration/prov:activity))"
DERIVED_FROM = "(prov:wasDerivedFrom|(prov:qualifiedDerivation/prov:entity))"
USED = "(prov:used|(prov:qualifiedUsage/prov:entity))"


def test_prov_turtle_model_version_was_generated_by_the_run(world: World, graph: rdflib.Graph) -> None:
    rows = _ask(graph, f"""
        SELECT ?model ?logged WHERE {{
          ?run a prov:Activity ; mlprov:runId ?run_id .
          ?model a mlprov:ModelVersion ; mlprov:registeredModel ?name ; mlprov:version "1" ;
                 {GENERATED_BY} ?run ; {DERIVED_FROM} ?logged .
          ?logged a mlprov:LoggedModel ; mlprov:modelId ?model_id ; {GENERATED_BY} ?run .
        }}""", run_id=world.run.info.run_id, name=MODEL, model_id=world.model_id)
    assert len(rows) == 1


def test_prov_turtle_run_used_the_training_data_by_digest(world: World, graph: rdflib.Graph) -> None:
    rows = _ask(graph, """
        SELECT ?role ?license ?owner WHERE {
          ?run mlprov:runId ?run_id ; prov:qualifiedUsage ?usage .
          ?usage prov:entity ?data ; prov:hadRole ?role .
          ?data a mlprov:Dataset ; mlprov:digest ?digest ; mlprov:license ?license ;
                prov:wasAttributedTo ?agent .
          ?agent a prov:Agent ; mlprov:owns ?digest .
          BIND(str(?agent) AS ?owner)
        }""", run_id=world.run.info.run_id, digest=world.datasets["training"])
    assert [(str(r[0]), str(r[1])) for r in rows] == [("training", "CC-BY-4.0")]


def test_prov_turtle_params_are_run_attributes(world: World, graph: rdflib.Graph) -> None:
    rows = _ask(graph, """
        SELECT ?p ?v WHERE { ?run mlprov:runId ?run_id ; ?p ?v . FILTER(STRSTARTS(STR(?p), STR(param:))) }""",
                run_id=world.run.info.run_id)
    assert {str(p)[len(str(PARAM)):]: str(v) for p, v in rows} == world.run.data.params


def test_prov_turtle_raw_data_is_an_ancestor_through_the_split(world: World, graph: rdflib.Graph) -> None:
    chain = _ask(graph, f"""
        SELECT ?train WHERE {{
          ?train mlprov:digest ?train_digest ; {DERIVED_FROM}+ ?raw .
          ?raw mlprov:digest ?raw_digest .
        }}""", train_digest=world.datasets["training"], raw_digest=world.datasets["source"])
    assert len(chain) == 1
    steps = _ask(graph, """
        SELECT ?label ?code WHERE {
          ?train mlprov:digest ?train_digest ; prov:qualifiedDerivation ?d .
          ?d prov:entity ?raw ; prov:hadActivity ?step .
          ?raw mlprov:digest ?raw_digest .
          ?step a prov:Activity ; rdfs:label ?label ; mlprov:codeReference ?code ; prov:used ?raw .
        }""", train_digest=world.datasets["training"], raw_digest=world.datasets["source"])
    assert [(str(a), str(b)) for a, b in steps] == [
        ("train_test_split", "sklearn.model_selection._split:train_test_split")]


def test_prov_several_transformations_form_one_pipeline(world: World) -> None:
    lineage = copy.deepcopy(world.snapshot.lineage)
    train = next(d for d in lineage["datasets"] if d["digest"] == world.datasets["training"])
    train["transformations"] = [{"name": "drop_duplicates", "parameters": {}}, *train["transformations"]]
    doc = to_prov_document(dataclasses.replace(world.snapshot, lineage=lineage))
    graph = rdflib.Graph().parse(data=doc.serialize(format="rdf", rdf_format="turtle"), format="turtle")

    generated_by = _ask(graph, f"""
        SELECT ?label WHERE {{ ?d mlprov:digest ?digest ; {GENERATED_BY} ?s . ?s rdfs:label ?label }}""",
                        digest=world.datasets["training"])
    assert [str(r[0]) for r in generated_by] == ["train_test_split"]  # one generation: the last step
    order = _ask(graph, f"""
        SELECT ?first ?last WHERE {{
          ?later prov:wasInformedBy ?earlier . ?later rdfs:label ?last . ?earlier rdfs:label ?first ;
                 {USED} ?raw . ?raw mlprov:digest ?raw_digest .
        }}""", raw_digest=world.datasets["source"])
    assert {(str(a), str(b)) for a, b in order} == {("drop_duplicates", "train_test_split")}
    assert _ask(graph, f"ASK {{ ?d mlprov:digest ?digest ; {DERIVED_FROM} ?raw . ?raw mlprov:digest ?raw_digest }}",
                digest=world.datasets["training"], raw_digest=world.datasets["source"]) == [True]


def test_prov_turtle_export_derives_from_the_checkpoint(world: World, graph: rdflib.Graph) -> None:
    rows = _ask(graph, f"""
        SELECT ?size WHERE {{
          ?export a mlprov:ProvenanceExport ; {DERIVED_FROM} ?checkpoint .
          ?checkpoint a mlprov:Checkpoint, prov:Collection ; mlprov:rootHash ?root ; mlprov:treeSize ?size ;
                      mlprov:origin ?origin .
        }}""", root=world.checkpoint["root"], origin=world.snapshot.origin)
    assert [int(r[0]) for r in rows] == [world.checkpoint["size"]]
    members = _ask(graph, """
        SELECT (COUNT(?e) AS ?n) WHERE { ?c a mlprov:Checkpoint ; prov:hadMember ?e . ?e a mlprov:LedgerEvent }""")
    assert int(members[0][0]) == len(world.snapshot.events) > 0


def test_prov_turtle_promotion_used_the_version_and_names_its_actor(world: World, graph: rdflib.Graph) -> None:
    rows = _ask(graph, f"""
        SELECT ?actor WHERE {{
          ?promotion a mlprov:Promotion ; mlprov:target "Production" ; {USED} ?model ;
                     prov:wasAssociatedWith ?agent .
          ?model a mlprov:ModelVersion ; prov:wasAttributedTo ?owner .
          ?owner rdfs:label ?owner_name .
          ?agent rdfs:label ?actor .
          ?decision a mlprov:PromotionDecision ; {GENERATED_BY} ?promotion .
        }}""", owner_name=OWNER)
    assert [str(r[0]) for r in rows] == [world.run.info.user_id]


# --- in-toto Statement v1 / SLSA Provenance v1 -------------------------------------------------------

_DIGEST_SET = {"type": "object", "minProperties": 1,
               "additionalProperties": {"type": "string", "pattern": "^[0-9a-f]+$"}}
# ResourceDescriptor (in-toto attestation spec v1, resource_descriptor.md): known fields only,
# and at least one of uri, digest, content.
_RESOURCE = {
    "type": "object", "additionalProperties": False,
    "properties": {"uri": {"type": "string", "minLength": 1}, "digest": _DIGEST_SET, "name": {"type": "string"},
                   "downloadLocation": {"type": "string"}, "mediaType": {"type": "string"},
                   "content": {"type": "string", "contentEncoding": "base64"}, "annotations": {"type": "object"}},
    "anyOf": [{"required": ["uri"]}, {"required": ["digest"]}, {"required": ["content"]}],
}
# Statement v1 (statement.md) with the SLSA Provenance v1 predicate (slsa.dev/spec/v1.0/provenance).
STATEMENT_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object", "additionalProperties": False,
    "required": ["_type", "subject", "predicateType", "predicate"],
    "properties": {
        "_type": {"const": "https://in-toto.io/Statement/v1"},
        "subject": {"type": "array", "minItems": 1, "items": {**_RESOURCE, "required": ["name", "digest"]}},
        "predicateType": {"const": "https://slsa.dev/provenance/v1"},
        "predicate": {
            "type": "object", "additionalProperties": False, "required": ["buildDefinition", "runDetails"],
            "properties": {
                "buildDefinition": {
                    "type": "object", "additionalProperties": False, "required": ["buildType", "externalParameters"],
                    "properties": {"buildType": {"type": "string", "pattern": "^https://"},
                                   "externalParameters": {"type": "object"}, "internalParameters": {"type": "object"},
                                   "resolvedDependencies": {"type": "array", "items": _RESOURCE}},
                },
                "runDetails": {
                    "type": "object", "additionalProperties": False, "required": ["builder"],
                    "properties": {
                        "builder": {
                            "type": "object", "additionalProperties": False, "required": ["id"],
                            "properties": {"id": {"type": "string", "pattern": "^https://"},
                                           "version": {"type": "object", "additionalProperties": {"type": "string"}},
                                           "builderDependencies": {"type": "array", "items": _RESOURCE}},
                        },
                        "metadata": {"type": "object", "additionalProperties": False,
                                     "properties": {"invocationId": {"type": "string"}, "startedOn": {"type": "string"},
                                                    "finishedOn": {"type": "string"}}},
                        "byproducts": {"type": "array", "items": _RESOURCE},
                    },
                },
            },
        },
    },
}


def _rfc3339(text: str) -> dt.datetime:
    assert text.endswith("Z"), text
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_statement_has_the_fields_in_toto_and_slsa_require(world: World) -> None:
    statement = to_statement(world.snapshot, world.subjects)
    jsonschema.Draft202012Validator(STATEMENT_SCHEMA).validate(statement)
    assert statement["subject"] == world.subjects
    metadata = statement["predicate"]["runDetails"]["metadata"]
    assert metadata["invocationId"] == world.run.info.run_id
    assert _rfc3339(metadata["startedOn"]).timestamp() * 1000 == pytest.approx(world.run.info.start_time)
    assert _rfc3339(metadata["finishedOn"]).timestamp() * 1000 == pytest.approx(world.run.info.end_time)


def test_statement_schema_catches_a_misspelled_field(world: World) -> None:
    statement = to_statement(world.snapshot, world.subjects)
    statement["predicate"]["buildDefinition"]["buildtype"] = statement["predicate"]["buildDefinition"].pop("buildType")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(statement, STATEMENT_SCHEMA)


def test_statement_names_params_data_code_and_checkpoint(world: World) -> None:
    predicate = to_statement(world.snapshot, world.subjects)["predicate"]
    build = predicate["buildDefinition"]
    assert build["externalParameters"] == world.run.data.params
    assert build["internalParameters"]["environmentManifest"] == world.run.data.tags["provenance.env.digest"]
    digests = [d.get("digest", {}) for d in build["resolvedDependencies"]]
    for context in ("training", "evaluation"):
        assert {"sha256": world.datasets[context].removeprefix("sha256:")} in digests
    assert {"gitCommit": world.git_commit} in digests
    assert {"sha256": world.diff_sha256} in digests
    assert any(d.get("uri", "").startswith("pkg:pypi/mlflow@") for d in build["resolvedDependencies"])

    checkpoint = next(b for b in predicate["runDetails"]["byproducts"] if b["name"] == "checkpoint")
    assert checkpoint["annotations"]["rootHash"] == world.checkpoint["root"]
    assert checkpoint["annotations"]["treeSize"] == world.checkpoint["size"]
    assert checkpoint["annotations"]["origin"] == world.snapshot.origin
    assert base64.b64decode(checkpoint["content"]).decode() == world.checkpoint["note"]
    assert checkpoint["digest"]["sha256"] == hashlib.sha256(world.checkpoint["note"].encode()).hexdigest()
    evaluations = [b for b in predicate["runDetails"]["byproducts"] if b["name"] == "evaluation record"]
    assert [e["annotations"]["dataset"] for e in evaluations] == [world.datasets["evaluation"]]


@pytest.mark.parametrize(("subjects", "error"), [
    ([], ConfigurationError),
    ([{"name": "model.pkl", "digest": {"sha256": "ABC"}}], FormatError),
    ([{"name": "", "digest": {"sha256": "0" * 64}}], FormatError),
    ([{"name": "model.pkl", "digest": {"sha512": "0" * 128}}], FormatError),
])
def test_statement_refuses_subjects_without_a_name_and_sha256(world: World, subjects: list[Any], error: type) -> None:
    with pytest.raises(error):
        to_statement(world.snapshot, subjects)


def test_pae_matches_the_dsse_test_vector_and_securesystemslib() -> None:
    # DSSE protocol.md, "Test Vectors".
    expected = b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    assert pae("http://example.com/HelloWorld", b"hello world") == expected
    payload = json.dumps({"é": 1}).encode()
    assert pae("application/vnd.in-toto+json", payload) == Envelope(payload, "application/vnd.in-toto+json", {}).pae()


def _sslib_key(key: SigningKey) -> SSlibKey:
    """The ledger key as securesystemslib sees it: raw Ed25519 public key, hex; our key id."""
    return SSlibKey(key.key_id, "ed25519", "ed25519", {"public": key.public_key.raw.hex()})


def _verify_with_securesystemslib(envelope: dict[str, Any], key: SigningKey) -> Envelope:
    parsed = Envelope.from_dict(copy.deepcopy(envelope))  # from_dict rewrites the signatures it reads
    parsed.verify([_sslib_key(key)], 1)
    return parsed


def test_dsse_envelope_verifies_with_securesystemslib(world: World) -> None:
    statement = to_statement(world.snapshot, world.subjects)
    envelope = sign_dsse(statement, world.signing_key)

    assert envelope["payloadType"] == "application/vnd.in-toto+json"
    assert [s["keyid"] for s in envelope["signatures"]] == [world.signing_key.key_id]
    assert world.signing_key.key_id == hashlib.sha256(world.signing_key.public_key.raw).hexdigest()
    parsed = _verify_with_securesystemslib(envelope, world.signing_key)
    assert json.loads(parsed.payload) == statement
    assert verify_dsse(envelope, world.signing_key.public_key) == statement


@pytest.mark.parametrize("tamper", ["payload", "payload_type", "signature"])
def test_tampered_envelope_fails_verification(world: World, tamper: str) -> None:
    statement = to_statement(world.snapshot, world.subjects)
    envelope = sign_dsse(statement, world.signing_key)
    if tamper == "payload":
        statement["predicate"]["buildDefinition"]["externalParameters"]["alpha"] = "0.5"
        envelope["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    elif tamper == "payload_type":
        envelope["payloadType"] = "application/json"
    else:
        sig = bytearray(base64.b64decode(envelope["signatures"][0]["sig"]))
        sig[0] ^= 1
        envelope["signatures"][0]["sig"] = base64.b64encode(bytes(sig)).decode()

    with pytest.raises(VerificationError):
        _verify_with_securesystemslib(envelope, world.signing_key)
    with pytest.raises(FormatError if tamper == "payload_type" else SignatureError):
        verify_dsse(envelope, world.signing_key.public_key)


def test_envelope_signed_by_another_key_fails_verification(world: World) -> None:
    other = generate_signing_key()
    envelope = sign_dsse(to_statement(world.snapshot, world.subjects), other)
    with pytest.raises(VerificationError):
        _verify_with_securesystemslib(envelope, world.signing_key)
    with pytest.raises(SignatureError):
        verify_dsse(envelope, world.signing_key.public_key)


def test_envelope_holds_no_private_key_material(world: World) -> None:
    text = json.dumps(sign_dsse(to_statement(world.snapshot, world.subjects), world.signing_key))
    private = serialization.load_pem_private_key(world.signing_key.private_pem(), password=None)
    plain = serialization.NoEncryption()
    raw = private.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, plain)
    der = private.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, plain)
    assert "PRIVATE KEY" not in text
    for material in (raw, der):
        encoded = base64.b64encode(material).decode()
        for form in (material.hex(), encoded, encoded.rstrip("=")):
            assert form not in text


# --- OpenLineage ------------------------------------------------------------------------------------

# Standard facets by key: the openlineage-python class, and how to build its nested objects.
_NESTED: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "schema": lambda f: {"fields": [schema_dataset.SchemaDatasetFacetFields(**c) for c in f["fields"]]},
    "ownership": lambda f: {"owners": [ownership_dataset.Owner(**o) for o in f["owners"]]},
}
_FACETS = {
    "schema": schema_dataset.SchemaDatasetFacet,
    "dataSource": datasource_dataset.DatasourceDatasetFacet,
    "ownership": ownership_dataset.OwnershipDatasetFacet,
    "version": dataset_version_dataset.DatasetVersionDatasetFacet,
    "processing_engine": processing_engine_run.ProcessingEngineRunFacet,
    "jobType": job_type_job.JobTypeJobFacet,
}
CUSTOM = "mlflowProvenance"


def _facets(facets: dict[str, Any]) -> dict[str, Any]:
    """Standard facets as openlineage-python objects (an unknown key fails); ours left out."""
    built = {}
    for key, facet in facets.items():
        if key == CUSTOM:
            continue
        fields = {k: v for k, v in facet.items() if k not in ("_producer", "_schemaURL")}
        fields.update(_NESTED.get(key, lambda f: {})(facet))
        built[key] = _FACETS[key](producer=facet["_producer"], **fields)
    return built


def _parse(event: dict[str, Any]) -> event_v2.RunEvent:
    """The event as openlineage-python's RunEvent: its attrs validators check the runId
    UUID, the eventTime and the URIs."""
    return event_v2.RunEvent(
        eventType=event_v2.RunState(event["eventType"]),
        eventTime=event["eventTime"],
        producer=event["producer"],
        run=event_v2.Run(runId=event["run"]["runId"], facets=_facets(event["run"]["facets"])),
        job=event_v2.Job(namespace=event["job"]["namespace"], name=event["job"]["name"],
                         facets=_facets(event["job"]["facets"])),
        inputs=[event_v2.InputDataset(namespace=d["namespace"], name=d["name"], facets=_facets(d["facets"]))
                for d in event["inputs"]],
        outputs=[event_v2.OutputDataset(namespace=d["namespace"], name=d["name"], facets=_facets(d["facets"]))
                 for d in event["outputs"]],
    )


def _comparable(value: Any) -> Any:
    """Without our facets, and without empty lists and maps: openlineage-python fills the
    optional ones it was not given (``inputFacets: {}``, a schema field's ``fields: []``)."""
    if isinstance(value, dict):
        items = {k: _comparable(v) for k, v in value.items() if k != CUSTOM}
        return {k: v for k, v in items.items() if v not in ({}, [])}
    if isinstance(value, list):
        return [_comparable(v) for v in value]
    return value


def test_openlineage_events_are_rebuilt_by_openlineage_python_unchanged(world: World) -> None:
    for event in to_run_events(world.snapshot):
        parsed = _parse(event)
        assert parsed.schemaURL == event["schemaURL"]
        assert _comparable(json.loads(Serde.to_json(parsed))) == _comparable(event)
        for custom in _custom_facets(event):
            assert custom["_producer"].startswith("https://") and "#/$defs/" in custom["_schemaURL"]


def _custom_facets(event: dict[str, Any]) -> list[dict[str, Any]]:
    holders = [event["run"], *event["inputs"], *event["outputs"]]
    return [h["facets"][CUSTOM] for h in holders if CUSTOM in h["facets"]]


def test_openlineage_rebuild_fails_on_a_bad_run_id_or_facet(world: World) -> None:
    event = to_run_events(world.snapshot)[0]
    bad_id = copy.deepcopy(event)
    bad_id["run"]["runId"] = world.run.info.run_id + "-not-a-uuid"
    with pytest.raises(ValueError):
        _parse(bad_id)
    bad_facet = copy.deepcopy(event)
    bad_facet["inputs"][0]["facets"]["version"]["dataset_version"] = "x"
    with pytest.raises(TypeError):
        _parse(bad_facet)


def test_openlineage_event_types_follow_the_run_status(world: World) -> None:
    events = to_run_events(world.snapshot)
    assert [e["eventType"] for e in events] == ["START", "COMPLETE"]
    times = [_rfc3339(e["eventTime"]).timestamp() * 1000 for e in events]
    assert times == pytest.approx([world.run.info.start_time, world.run.info.end_time])
    assert events[0]["outputs"] == []
    assert {o["name"] for o in events[1]["outputs"]} == {f"models:/{MODEL}/1", f"models:/{world.model_id}"}
    for status, expected in (("FAILED", ["START", "FAIL"]), ("KILLED", ["START", "ABORT"]), ("RUNNING", ["START"])):
        end = None if status == "RUNNING" else world.run.info.end_time
        run = {**world.snapshot.run, "status": status, "end_time": end}
        assert [e["eventType"] for e in to_run_events(dataclasses.replace(world.snapshot, run=run))] == expected


def test_openlineage_run_id_is_a_stable_uuid(world: World) -> None:
    first, second = to_run_events(world.snapshot), to_run_events(world.snapshot)
    ids = {e["run"]["runId"] for e in first + second}
    assert len(ids) == 1
    run_id = uuid.UUID(ids.pop())
    assert run_id.version == 5
    assert str(run_id) == openlineage_run_id(world.run.info.run_id) != openlineage_run_id(uuid.uuid4().hex)
    assert first == second


def test_openlineage_inputs_carry_digests_license_owner_and_parents(world: World) -> None:
    complete = to_run_events(world.snapshot)[-1]
    inputs = {d["facets"][CUSTOM]["digest"]: d for d in complete["inputs"]}
    train = inputs[world.datasets["training"]]
    assert world.datasets["evaluation"] in inputs
    assert train["name"] == "wine-train"
    assert train["facets"]["version"]["datasetVersion"] == world.datasets["training"]
    assert train["facets"][CUSTOM]["parents"] == [world.datasets["source"]]
    assert train["facets"][CUSTOM]["license"] == "CC-BY-4.0"
    assert train["facets"]["ownership"]["owners"] == [{"name": "UCI Machine Learning Repository"}]
    assert train["facets"]["dataSource"]["uri"] == "https://archive.ics.uci.edu/dataset/109/wine"
    assert "alcohol" in {f["name"] for f in train["facets"]["schema"]["fields"]}


def test_openlineage_run_facet_names_the_checkpoint(world: World) -> None:
    for event in to_run_events(world.snapshot):
        facet = event["run"]["facets"][CUSTOM]
        assert facet["checkpoint"] == {"origin": world.snapshot.origin, "size": world.checkpoint["size"],
                                       "rootHash": world.checkpoint["root"]}
        assert facet["mlflowRunId"] == world.run.info.run_id
        assert event["job"]["name"] == "wine-quality"
