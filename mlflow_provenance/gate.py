"""The promotion gate: is a model version's provenance complete enough for a target?

Evidence comes from the ledger (the records bound into the run's events: environment
manifest, dataset and evaluation records) and MLflow's rows (the version's run and tags),
read in one database snapshot; each requirement of the policy's target is checked and
every unmet one is reported with how to supply it. The result is data: the registry
store refuses or records a signed decision, ``mlflow-provenance check`` prints it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import sqlalchemy as sa

from mlflow_provenance.policy import Policy, Target
from mlflow_provenance.sql import query

PROMPT_TAG = "mlflow.prompt.is_prompt"


@dataclass(frozen=True)
class Missing:
    requirement: str
    message: str
    fix: str


@dataclass
class GateResult:
    """The verdict for one version and target, with what it rests on."""

    model: str
    version: str
    target: str
    target_kind: str
    run_id: str | None
    policy_digest: str
    missing: list[Missing] = field(default_factory=list)
    evidence: dict[str, Any] = field(default_factory=dict)

    @property
    def allowed(self) -> bool:
        return not self.missing

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model, "version": self.version, "target": self.target, "target_kind": self.target_kind,
            "run_id": self.run_id, "policy": self.policy_digest, "allowed": self.allowed,
            "missing": [asdict(m) for m in self.missing], "evidence": self.evidence,
        }

    def refusal(self) -> str:
        """The message a refused promotion raises, one line per missing item."""
        noun = "requirement is" if len(self.missing) == 1 else "requirements are"
        subject = f"model '{self.model}' version {self.version}" if self.version else f"a version of run {self.run_id}"
        action = (f"copy {subject} into the protected model '{self.target}'" if self.target_kind == "copy"
                  else f"move {subject} to {self.target_kind} '{self.target}'")
        lines = [f"mlflow-provenance refused to {action}: {len(self.missing)} {noun} not met:"]
        lines += [f"  - {m.requirement}: {m.message} To fix: {m.fix}" for m in self.missing]
        lines.append(f"Policy {self.policy_digest}. Check before promoting: "
                     f"mlflow-provenance check models:/{self.model}/{self.version or '<version>'} --target {self.target}")
        return "\n".join(lines)


def is_prompt(conn: sa.engine.Connection, model: str) -> bool:
    """Registered models that are prompts (MLflow's prompt registry) are never gated."""
    value = query(conn, "SELECT value FROM registered_model_tags WHERE name = ? AND key = ?", model, PROMPT_TAG).scalar()
    return str(value).lower() == "true"


def evaluate(
    conn: sa.engine.Connection,
    policy: Policy,
    target: Target,
    model: str,
    version: str | None,
    *,
    run_id: str | None = None,
    source: str | None = None,
    integrity: Callable[[str], list[str]] | None = None,
) -> GateResult:
    """Check ``target``'s requirements for ``model`` version ``version``.

    ``run_id`` overrides the version's own run (a copy is judged by its source's run).
    With ``version`` None, a version about to be created from ``run_id`` and ``source``
    is judged. ``integrity(run_id)`` returns verify's findings for the run (empty when intact).
    """
    if version is None:
        row: Any = (run_id, source)
    else:
        row = query(conn, "SELECT run_id, source FROM model_versions WHERE name = ? AND version = ?",
                    model, int(version)).first()
    run = run_id or (row[0] if row else None)
    result = GateResult(model, str(version) if version is not None else "", target.name, target.kind, run, policy.digest)
    if row is None:
        result.missing.append(Missing("model version", f"model '{model}' has no version {version}.", "check the name and version"))
        return result
    source = row[1] or ""
    evidence = _Evidence(conn, run, source)
    result.evidence["policy"] = policy.digest
    checks = {
        "environment": _environment, "code": _code, "training_data": _training_data,
        "evaluation": _evaluation, "owner": _owner,
    }
    for requirement, setting in target.require.items():
        if requirement == "integrity":
            continue
        if run is None and requirement != "owner":
            result.missing.append(Missing(requirement, "the version was registered without a run, so nothing records how it was made.",
                                          "register a version from a run logged through a provenance store"))
            continue
        checks[requirement](evidence, setting, result)
    if "integrity" in target.require and run is not None and integrity is not None:
        findings = integrity(run)
        result.evidence["integrity"] = "intact" if not findings else f"{len(findings)} findings"
        if findings:
            result.missing.append(Missing(
                "integrity", f"verify found {len(findings)} problem(s) in run {run}'s provenance: " + "; ".join(findings[:3]) + ".",
                f"investigate with `mlflow-provenance verify --run-id {run}`; tampered provenance cannot be promoted"))
    return result


class _Evidence:
    """What the ledger and MLflow's rows say about one run (read lazily, once)."""

    def __init__(self, conn: sa.engine.Connection, run_id: str | None, source: str) -> None:
        self.conn, self.run_id, self.source = conn, run_id, source
        self._records: list[dict[str, Any]] | None = None
        self._blobs: dict[str, dict[str, Any]] = {}

    def records(self) -> list[dict[str, Any]]:
        if self._records is None:
            self._records = []
            if self.run_id:
                rows = query(self.conn, "SELECT op, body FROM prov_events WHERE entity_type = 'run' AND entity_id = ? "
                                        "ORDER BY seq", self.run_id)
                for op, body in rows:
                    for record in (json.loads(body).get("payload") or {}).get("records") or ():
                        self._records.append({**record, "_op": op})
        return self._records

    def blob(self, digest: str | None) -> dict[str, Any]:
        if not digest:
            return {}
        if digest not in self._blobs:
            content = query(self.conn, "SELECT content FROM prov_blobs WHERE digest = ?", digest).scalar()
            try:
                self._blobs[digest] = json.loads(bytes(content)) if content is not None else {}
            except ValueError:
                self._blobs[digest] = {}
        return self._blobs[digest]

    def model_id(self) -> str | None:
        if self.source.startswith("models:/m-"):
            return self.source[len("models:/"):].split("/", 1)[0]
        return None

    def evaluations_of_model(self) -> list[dict[str, Any]]:
        model_id = self.model_id()
        if not model_id:
            return []
        found = []
        rows = query(self.conn, "SELECT body FROM prov_events WHERE body LIKE ? ORDER BY seq", '%"kind":"evaluation"%')
        for (body,) in rows:
            for record in (json.loads(body).get("payload") or {}).get("records") or ():
                if record.get("kind") == "evaluation" and (self.blob(record.get("blob")).get("model") or {}).get("model_id") == model_id:
                    found.append(record)
        return found

    def tag(self, table: str, key: str, **where: Any) -> str | None:
        clause = " AND ".join(f"{column} = ?" for column in where)
        return query(self.conn, f"SELECT value FROM {table} WHERE {clause} AND key = ?", *where.values(), key).scalar()


def _environment(evidence: _Evidence, setting: Any, result: GateResult) -> None:
    record = next((r for r in evidence.records() if r.get("kind") == "environment-manifest"), None)
    if record is None or record.get("status") != "complete" or not record.get("blob"):
        status = "none recorded" if record is None else f"status {record.get('status')}"
        reason = f" ({record.get('reason')})" if record and record.get("reason") else ""
        result.missing.append(Missing(
            "environment", f"run {evidence.run_id} has no complete environment manifest: {status}{reason}.",
            "train with mlflow-provenance installed where the run is created (mlflow.start_run), so the "
            "run gets its manifest; a partial manifest lists its failed probes in provenance/environment.json"))
        return
    result.evidence["environment"] = record["blob"]


def _code(evidence: _Evidence, setting: Any, result: GateResult) -> None:
    env_record = next((r for r in evidence.records() if r.get("kind") == "environment-manifest"), None)
    manifest = evidence.blob(env_record.get("blob")) if env_record else {}
    code = manifest.get("code") or {}
    git, entry = code.get("git") or {}, code.get("entry_point") or {}
    if git.get("available") and git.get("commit"):
        if not git.get("dirty"):
            result.evidence["code"] = {"commit": git["commit"]}
            return
        if setting == "commit-or-digest" and (git.get("diff") or {}).get("sha256"):
            result.evidence["code"] = {"commit": git["commit"], "diff_sha256": git["diff"]["sha256"]}
            return
        result.missing.append(Missing("code", f"run {evidence.run_id} ran from commit {git['commit'][:12]} with uncommitted changes.",
                                      "commit the changes and train again from a clean work tree"))
        return
    if setting == "commit-or-digest" and entry.get("sha256"):
        result.evidence["code"] = {"entry_point_sha256": entry["sha256"]}
        return
    why = git.get("reason") or "no environment manifest" if not manifest else git.get("reason") or "no commit"
    fix = ("train from a git work tree with a commit" if setting == "clean-commit"
           else "train from a git work tree with a commit, or run a script file (its digest is recorded)")
    result.missing.append(Missing("code", f"run {evidence.run_id} records no code version ({why}).", fix))


def _training_data(evidence: _Evidence, setting: Any, result: GateResult) -> None:
    training = [r for r in evidence.records() if r.get("kind") == "dataset" and r.get("context") == "training"]
    complete, problems = [], []
    for record in training:
        doc = evidence.blob(record.get("blob"))
        gaps = [what for what, ok in (("source", doc.get("source")), ("license", doc.get("license"))) if not ok]
        if gaps:
            problems.append(f"'{doc.get('name')}' has no {' or '.join(gaps)}")
        else:
            complete.append(record)
    plain = [r for r in evidence.records() if r.get("kind") == "mlflow-dataset-input"]
    if len(complete) >= setting["min"]:
        result.evidence["training_data"] = [r["blob"] for r in complete]
        return
    detail = "; ".join(problems) if problems else "no training dataset recorded"
    if plain and not training:
        detail += f" ({len(plain)} dataset(s) logged with plain mlflow.log_input, which records no license or full digest)"
    result.missing.append(Missing(
        "training_data", f"run {evidence.run_id} needs {setting['min']} training dataset(s) with a full digest, a source and a license: {detail}.",
        "record the training data with mlflow_provenance.log_dataset(data, name=..., context='training', "
        "source=..., license=...) in the run"))


def _evaluation(evidence: _Evidence, setting: Any, result: GateResult) -> None:
    training = {r.get("data_digest") for r in evidence.records() if r.get("kind") == "dataset" and r.get("context") == "training"}
    candidates = [r for r in evidence.records() if r.get("kind") == "evaluation"] + evidence.evaluations_of_model()
    reasons = []
    for record in candidates:
        doc = evidence.blob(record.get("blob"))
        dataset = (doc.get("dataset") or {}).get("digest")
        if dataset in training:
            reasons.append("an evaluation used a training dataset")
            continue
        if setting.get("thresholds_met"):
            if not doc.get("thresholds"):
                reasons.append("an evaluation has no thresholds")
                continue
            if not doc.get("thresholds_met"):
                failed = [k for k, t in doc["thresholds"].items() if not t.get("met")]
                reasons.append(f"thresholds not met: {', '.join(failed)}")
                continue
        result.evidence["evaluation"] = record.get("blob")
        return
    detail = "; ".join(dict.fromkeys(reasons)) if reasons else "none recorded"
    result.missing.append(Missing(
        "evaluation", f"no evaluation of run {evidence.run_id} (or its model) on held-out data with all thresholds met: {detail}.",
        "record one with mlflow_provenance.log_evaluation(metrics, dataset=<a dataset not used for training>, "
        "model=..., thresholds={...}) and meet its thresholds"))


def _owner(evidence: _Evidence, setting: Any, result: GateResult) -> None:
    tag = setting["tag"]
    places = [("registered_model_tags", {"name": result.model})]
    if result.version:
        places.insert(0, ("model_version_tags", {"name": result.model, "version": int(result.version)}))
    for table, where in places:
        value = evidence.tag(table, tag, **where)
        if value:
            result.evidence["owner"] = value
            return
    if evidence.run_id:
        value = evidence.tag("tags", tag, run_uuid=evidence.run_id)
        if value:
            result.evidence["owner"] = value
            return
    result.missing.append(Missing(
        "owner", f"no '{tag}' tag on the model version, the registered model or its run.",
        f"set one, e.g. MlflowClient().set_registered_model_tag('{result.model}', '{tag}', 'team@example.com')"))
