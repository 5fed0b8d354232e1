"""The provenance model-registry store: MLflow's SQL registry store, every write recorded,
and promotions gated by the provenance policy (issue 5).

``transition_model_version_stage`` to a gated stage, ``set_registered_model_alias`` to a
gated alias and ``create_model_version`` in a protected model (which is what
``copy_model_version`` does, locally and through the REST API) first evaluate the policy
(:mod:`mlflow_provenance.gate`) over the ledger. A refusal raises an ``MlflowException``
listing each missing item and how to supply it — through ``mlflow server`` it reaches
the client as is — and writes nothing. An allowed promotion records a decision (policy
digest, evidence digests, actor, time, the ledger head it was judged on), signed with the
ledger key, in the same transaction as the promotion, which also signs a checkpoint;
the version is then tagged ``provenance.gate.<target>``. Prompts are never gated.

The policy is loaded when the store starts (``MLFLOW_PROVENANCE_POLICY``, else the
built-in default); a policy that differs from the last one recorded is recorded as a
ledger event before the store serves a request. A bad policy stops the store.
"""

from __future__ import annotations

import base64
import functools
import inspect
import os
import re
from typing import Any, Callable

from mlflow.entities.model_registry import ModelVersionTag
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import PERMISSION_DENIED
from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore

from mlflow_provenance import config, gate, ledger_schema
from mlflow_provenance.adapters.binding import (
    ENGINES,
    ENGINES_LOCK,
    bind_sessions,
    current_actor,
    record_write_methods,
    recorder_for,
    signing_key,
)
from mlflow_provenance.canonical import canonical_json
from mlflow_provenance.ledger import utc_now
from mlflow_provenance.policy import MEDIA_TYPE as POLICY_MEDIA_TYPE
from mlflow_provenance.policy import Policy, Target, load_policy
from mlflow_provenance.recorder import Attachment, Blob, attach, operation
from mlflow_provenance.uri import inner_uri
from mlflow_provenance.verify import Scope, verify_database

DECISION_MEDIA_TYPE = "application/vnd.mlflow-provenance.promotion-decision.v1+json"
GATE_TAG_PREFIX = "provenance.gate."


class ProvenanceRegistryStore(SqlAlchemyStore):
    """MLflow model-registry store for ``provenance+<inner>`` URIs.

    Raises:
        ConfigurationError: as :class:`~mlflow_provenance.adapters.tracking_store.ProvenanceTrackingStore`,
            or an invalid policy file.
    """

    _engine_map = ENGINES
    _engine_map_lock = ENGINES_LOCK

    def __init__(self, store_uri: str, read_db_uri: str | None = None) -> None:
        self.provenance_uri = store_uri
        db_uri = inner_uri(store_uri) if store_uri.startswith("provenance+") else store_uri
        self._signing_key = signing_key()
        self.policy: Policy = load_policy(os.environ.get(config.ENV_POLICY) or None)
        super().__init__(db_uri)
        self.recorder = recorder_for(self.engine, self._signing_key)
        bind_sessions(self, self.recorder)
        _record_policy(self)

    # --- the gate --------------------------------------------------------------------------

    def check_promotion(self, name: str, version: str | None, target: Target, run_id: str | None = None,
                        source: str | None = None) -> gate.GateResult:
        """The gate's verdict for ``name`` version ``version`` and ``target`` (writes nothing)."""
        with self.engine.connect() as conn:
            return gate.evaluate(conn, self.policy, target, name, None if version is None else str(version),
                                 run_id=run_id, source=source, integrity=self._integrity)

    def _integrity(self, run_id: str) -> list[str]:
        database = config.database_identity(self.engine.url)
        report = verify_database(self.engine, config.trusted_keyring(), witness=config.read_witness(database),
                                 scope=Scope(run_id=run_id))
        return [str(f) for f in report.findings]

    def _decide(self, name: str, version: str | None, target: Target | None, run_id: str | None = None,
                source: str | None = None) -> list[Attachment]:
        """Refuse (raise), or return the signed decision to bind into the promotion's event."""
        if target is None:
            return []
        with self.engine.connect() as conn:
            if gate.is_prompt(conn, name):
                return []
        result = self.check_promotion(name, version, target, run_id, source)
        if not result.allowed:
            # PERMISSION_DENIED (HTTP 403): not permitted by the policy. Not INVALID_STATE, which
            # MLflow sends as HTTP 500 — and its clients retry those for minutes.
            raise MlflowException(result.refusal(), PERMISSION_DENIED)
        head = _ledger_head(self.engine)
        decision = {
            "kind": "promotion-decision", "decision": "allowed", **result.to_dict(),
            "actor": current_actor(), "time": utc_now(), "ledger_head": head,
        }
        content = canonical_json(decision)
        digest = Blob.digest_of(content)
        signature = self._signing_key.sign(b"mlflow-provenance/promotion-decision/v1\n" + content)
        record = {
            "kind": "promotion-decision", "blob": digest, "media_type": DECISION_MEDIA_TYPE,
            "model": name, "version": result.version, "target": target.name, "target_kind": target.kind,
            "policy": self.policy.digest,
            "signature": f"{self._signing_key.public_key.key_id}:{base64.b64encode(signature).decode()}",
        }
        return [Attachment(record, (Blob(digest, DECISION_MEDIA_TYPE, content),))]

    def _tag_decision(self, name: str, version: str, target: Target, attachments: list[Attachment]) -> None:
        if attachments:
            key = GATE_TAG_PREFIX + ("copy" if target.kind == "copy" else target.name.lower().replace(" ", "-"))
            # Sealed by a checkpoint of its own, like the promotion it reports.
            with operation("set_model_version_tag", checkpoint_reason=f"registry:{name}"):
                self.set_model_version_tag(name, version, ModelVersionTag(key, attachments[0].record["blob"]))


def _record_policy(store: ProvenanceRegistryStore) -> None:
    """Record the policy in force as a ledger event if it is not the last one recorded."""
    policy = store.policy
    with store.engine.begin() as conn, ledger_schema.schema_lock(conn):
        last = conn.exec_driver_sql(
            "SELECT body FROM prov_events WHERE entity_type = 'policy' ORDER BY seq DESC LIMIT 1"
        ).scalar()
        if last is not None and policy.digest in last:
            return
        record = {"kind": "policy", "blob": policy.digest, "media_type": POLICY_MEDIA_TYPE, "origin": policy.origin}
        store.recorder.writer.put_blob(conn, policy.digest, POLICY_MEDIA_TYPE, policy.content)
        appended = store.recorder.writer.append(
            conn, entity_type="policy", entity_id="promotion", op="set_policy", actor=current_actor(),
            payload={"kind": "provenance.policy", "records": [record]}, checkpoint_reason="policy",
        )
    if appended.checkpoint_note and store.recorder._on_checkpoint is not None:
        store.recorder._on_checkpoint(appended.checkpoint_note)


def _ledger_head(engine: Any) -> dict[str, Any]:
    with engine.connect() as conn:
        size = conn.execute(ledger_schema.prov_log.select().with_only_columns(ledger_schema.prov_log.c.size)).scalar()
        checkpoint = conn.execute(
            ledger_schema.prov_checkpoints.select()
            .with_only_columns(ledger_schema.prov_checkpoints.c.size, ledger_schema.prov_checkpoints.c.root)
            .order_by(ledger_schema.prov_checkpoints.c.id.desc()).limit(1)
        ).first()
    return {"size": size, "checkpoint": {"size": checkpoint[0], "root": checkpoint[1]} if checkpoint else None}


def _promotion(name: str, *args: Any, **kwargs: Any) -> str:
    return f"registry:{name}"


record_write_methods(
    ProvenanceRegistryStore,
    SqlAlchemyStore,
    checkpoints={
        "transition_model_version_stage": _promotion,
        "set_registered_model_alias": _promotion,
        "create_model_version": lambda name, *a, **k: f"registry:{name}",
        "delete_model_version": _promotion,
        "delete_registered_model": _promotion,
    },
)


def _gated(method: Callable[..., Any], decide: Callable[[Any, inspect.BoundArguments], tuple]) -> Callable[..., Any]:
    """``method`` (MLflow's signature and doc) behind the gate: ``decide`` returns the target,
    the version judged and its run; the decision commits with the write."""
    signature = inspect.signature(method)

    @functools.wraps(method)
    def wrapper(self: ProvenanceRegistryStore, *args: Any, **kwargs: Any) -> Any:
        call = signature.bind(self, *args, **kwargs)
        target, name, version, run_id, source = decide(self, call)
        attachments = self._decide(name, version, target, run_id, source)
        if not attachments:
            return method(*call.args, **call.kwargs)
        with attach(*attachments):
            result = method(*call.args, **call.kwargs)
        created = "source" in call.arguments  # create_model_version: tag the new version
        self._tag_decision(*((result.name, result.version) if created else (name, version)), target, attachments)
        return result

    return wrapper


def _stage(store: ProvenanceRegistryStore, call: inspect.BoundArguments) -> tuple:
    a = call.arguments
    return store.policy.target(str(a["stage"]), "stage"), a["name"], str(a["version"]), None, None


def _alias(store: ProvenanceRegistryStore, call: inspect.BoundArguments) -> tuple:
    a = call.arguments
    return store.policy.target(str(a["alias"]), "alias"), a["name"], str(a["version"]), None, None


_VERSION_URI = re.compile(r"models:/(?P<name>[^/@]+)/(?P<version>\d+)")


def _new_version(store: ProvenanceRegistryStore, call: inspect.BoundArguments) -> tuple:
    """A version created in a protected model — by ``copy_model_version`` (its source is
    ``models:/NAME/VERSION``, judged as that version) or registered there directly."""
    a = call.arguments
    target = store.policy.copy_target(a["name"])
    source = str(a.get("source") or "")
    match = _VERSION_URI.fullmatch(source)
    if match:
        return target, match["name"], match["version"], a.get("run_id"), None
    return target, a["name"], None, a.get("run_id"), source


ProvenanceRegistryStore.transition_model_version_stage = _gated(  # type: ignore[method-assign]
    ProvenanceRegistryStore.transition_model_version_stage, _stage)
ProvenanceRegistryStore.set_registered_model_alias = _gated(  # type: ignore[method-assign]
    ProvenanceRegistryStore.set_registered_model_alias, _alias)
ProvenanceRegistryStore.create_model_version = _gated(  # type: ignore[method-assign]
    ProvenanceRegistryStore.create_model_version, _new_version)


def _checked_before_copy(copy: Callable[..., Any]) -> Callable[..., Any]:
    """MLflow's ``copy_model_version`` creates the destination model before the version, and
    wraps any error of the second step: judge the source first, so a refusal writes nothing
    and reaches the caller as itself. (The version's creation is then gated and recorded.)"""
    signature = inspect.signature(copy)

    @functools.wraps(copy)
    def wrapper(self: ProvenanceRegistryStore, *args: Any, **kwargs: Any) -> Any:
        call = signature.bind(self, *args, **kwargs)
        source, destination = call.arguments["src_mv"], call.arguments["dst_name"]
        target = self.policy.copy_target(destination)
        if target is not None:
            with self.engine.connect() as conn:
                prompt = gate.is_prompt(conn, source.name)
            if not prompt:
                result = self.check_promotion(source.name, str(source.version), target, source.run_id)
                if not result.allowed:
                    raise MlflowException(result.refusal(), PERMISSION_DENIED)
        return copy(*call.args, **call.kwargs)

    return wrapper


ProvenanceRegistryStore.copy_model_version = _checked_before_copy(  # type: ignore[method-assign]
    ProvenanceRegistryStore.copy_model_version)
