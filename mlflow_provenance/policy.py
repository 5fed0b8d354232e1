"""The promotion policy: what a model version needs before it reaches a stage or alias.

A YAML file (``MLFLOW_PROVENANCE_POLICY``), checked against a JSON Schema; a mistake is
reported with its line and the fix::

    version: 1
    stages:                       # registry stages (Staging, Production)
      Production:
        require: [environment, code, training_data, evaluation, integrity, owner]
    aliases:                      # registered-model aliases
      champion:
        require:
          environment: true
          code: clean-commit      # or: commit-or-digest (default)
          training_data: {min: 1} # each with a full digest, a source and a license
          evaluation: {thresholds_met: true}
          integrity: true
          owner: {tag: owner}
    protected_models: ["*-prod"]  # copy_model_version into these needs Production's items

A stage or alias not listed is not gated. Requirements:

``environment``    the run's environment manifest is recorded and complete
``code``           ``commit-or-digest``: a git commit (a dirty tree counts with the digest of
                   its diff) or, outside git, the entry script's digest; ``clean-commit``: a
                   commit and a clean tree
``training_data``  at least ``min`` datasets recorded with context ``training``, each with a
                   full-content digest, a source and a license
``evaluation``     an evaluation recorded for the run or its model, on a dataset that is not
                   one of the training datasets, with thresholds, all met
``integrity``      ``verify`` of the run finds nothing (chains, Merkle log, signatures, rows)
``owner``          a tag (default ``owner``) on the model version, the registered model or the run
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mlflow_provenance.canonical import canonical_json
from mlflow_provenance.errors import ConfigurationError

REQUIREMENTS = ("environment", "code", "training_data", "evaluation", "integrity", "owner")
STAGES = ("staging", "production")
MEDIA_TYPE = "application/vnd.mlflow-provenance.policy.v1+json"

DEFAULT_POLICY_YAML = """\
# mlflow-provenance built-in promotion policy
version: 1
stages:
  Staging:
    require: [environment, code, training_data, integrity]
  Production:
    require: [environment, code, training_data, evaluation, integrity, owner]
aliases:
  production:
    require: [environment, code, training_data, evaluation, integrity, owner]
  champion:
    require: [environment, code, training_data, evaluation, integrity, owner]
protected_models: ["*-prod", "*-production"]
"""

_REQUIREMENT_SCHEMA = {
    "environment": {"type": "boolean"},
    "code": {"oneOf": [{"type": "boolean"}, {"enum": ["commit-or-digest", "clean-commit"]}]},
    "training_data": {"oneOf": [{"type": "boolean"}, {
        "type": "object", "additionalProperties": False,
        "properties": {"min": {"type": "integer", "minimum": 1}}}]},
    "evaluation": {"oneOf": [{"type": "boolean"}, {
        "type": "object", "additionalProperties": False,
        "properties": {"thresholds_met": {"type": "boolean"}}}]},
    "integrity": {"type": "boolean"},
    "owner": {"oneOf": [{"type": "boolean"}, {
        "type": "object", "additionalProperties": False,
        "properties": {"tag": {"type": "string", "minLength": 1}}}]},
}

_TARGETS = {
    "type": "object",
    "additionalProperties": {
        "type": "object",
        "required": ["require"],
        "additionalProperties": False,
        "properties": {
            "require": {
                "oneOf": [
                    {"type": "array", "items": {"enum": list(REQUIREMENTS)}, "uniqueItems": True},
                    {"type": "object", "additionalProperties": False, "properties": _REQUIREMENT_SCHEMA},
                ]
            },
            "description": {"type": "string"},
        },
    },
}

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["version"],
    "anyOf": [{"required": ["stages"]}, {"required": ["aliases"]}],
    "additionalProperties": False,
    "properties": {
        "version": {"const": 1},
        "stages": {**_TARGETS, "propertyNames": {"enum": ["Staging", "Production", "staging", "production"]}},
        "aliases": _TARGETS,
        "protected_models": {"type": "array", "items": {"type": "string", "minLength": 1}},
    },
}

_FIXES = {
    "version": "start the file with `version: 1`",
    "stages": "gate stages, e.g. `stages: {Production: {require: [environment, code]}}` (Staging or Production)",
    "aliases": "gate aliases, e.g. `aliases: {champion: {require: [environment, code]}}`",
    "require": f"use a list of {', '.join(REQUIREMENTS)}, or a mapping of them to settings",
    "code": "use `code: commit-or-digest` or `code: clean-commit` (or true/false)",
    "protected_models": "give a list of model-name patterns, e.g. `[\"*-prod\"]`",
}


@dataclass(frozen=True)
class Target:
    """One gated stage or alias and what it requires (normalised)."""

    name: str
    kind: str  # "stage" or "alias"
    require: dict[str, Any]


@dataclass(frozen=True)
class Policy:
    """A validated policy, its canonical JSON form and digest, and where it came from."""

    targets: dict[tuple[str, str], Target]  # (kind, name)
    protected_models: tuple[str, ...]
    document: dict[str, Any] = field(repr=False)
    origin: str = "built-in"

    @property
    def content(self) -> bytes:
        return canonical_json(self.document)

    @property
    def digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.content).hexdigest()

    def target(self, name: str, kind: str) -> Target | None:
        """The gated target named ``name`` (stages match case-insensitively), or None."""
        if kind == "stage":
            return next((t for (k, n), t in self.targets.items() if k == "stage" and n.lower() == name.lower()), None)
        return self.targets.get(("alias", name))

    def copy_target(self, model_name: str) -> Target | None:
        """The requirements for copying a version into ``model_name`` (Production's), if protected."""
        if not any(fnmatch.fnmatchcase(model_name, pattern) for pattern in self.protected_models):
            return None
        production = self.target("Production", "stage")
        return Target(model_name, "copy", production.require if production else _normalise(list(REQUIREMENTS)))


def load_policy(path: str | Path | None) -> Policy:
    """The policy at ``path``, or the built-in default when ``path`` is None.

    Raises:
        ConfigurationError: unreadable file, invalid YAML, or a schema violation — the
            message names the file, the line, the field and the fix.
    """
    if path is None:
        return parse_policy(DEFAULT_POLICY_YAML, origin="built-in")
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigurationError(f"cannot read policy file {path}: {exc.strerror or exc}") from exc
    return parse_policy(text, origin=str(path))


def parse_policy(text: str, origin: str = "<policy>") -> Policy:
    """Parse and validate a policy document.

    Raises:
        ConfigurationError: as :func:`load_policy`.
    """
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigurationError(
            f"policy {origin}{where}: not valid YAML: {getattr(exc, 'problem', exc)}. "
            f"Fix: check the indentation, colons and quoting at that line"
        ) from exc
    if not isinstance(document, dict):
        raise ConfigurationError(
            f"policy {origin} line 1: must be a mapping. Fix: start with `version: 1`, then gate "
            f"targets under `stages:` and/or `aliases:` (see the policy format in the README)"
        )
    import jsonschema
    from jsonschema.exceptions import best_match

    error = best_match(jsonschema.Draft202012Validator(SCHEMA).iter_errors(document))
    if error is not None:
        path = [str(p) for p in error.absolute_path]
        line = _line_of(node, path)
        offending = _offending_key(error)
        if offending is not None:  # an unknown key: point at it, not at its parent mapping
            line = _line_of(node, [*path, offending], at_key=True)
            path = [*path, offending]
        field_name = ".".join(path) or "(top level)"
        fix = next((_FIXES[p] for p in reversed(path) if p in _FIXES), None) or _FIXES.get(
            str(error.validator_value) if error.validator == "required" else "", "see the policy format in the README")
        if error.validator == "required":
            missing = next(iter(set(error.validator_value) - set(error.instance)), "")
            fix = _FIXES.get(missing, f"add `{missing}`")
        elif error.validator == "anyOf" and not path:
            fix = "gate at least one target under `stages:` or `aliases:`"
        raise ConfigurationError(
            f"policy {origin} line {line}: {field_name}: {error.message}. Fix: {fix}"
        )
    targets = {}
    for section, kind in (("stages", "stage"), ("aliases", "alias")):
        for name, spec in (document.get(section) or {}).items():
            targets[(kind, name)] = Target(name, kind, _normalise(spec["require"]))
    return Policy(targets, tuple(document.get("protected_models", ())), json.loads(json.dumps(document)), origin)


def _normalise(require: Any) -> dict[str, Any]:
    if isinstance(require, list):
        require = {name: True for name in require}
    result: dict[str, Any] = {}
    for name, setting in require.items():
        if setting is False:
            continue
        if name == "code":
            result[name] = "commit-or-digest" if setting is True else setting
        elif name == "training_data":
            result[name] = {"min": 1, **(setting if isinstance(setting, dict) else {})}
        elif name == "evaluation":
            result[name] = {"thresholds_met": True, **(setting if isinstance(setting, dict) else {})}
        elif name == "owner":
            result[name] = {"tag": "owner", **(setting if isinstance(setting, dict) else {})}
        else:
            result[name] = True
    return result


def _offending_key(error: Any) -> str | None:
    """The key an ``additionalProperties`` or ``propertyNames`` error is about."""
    if error.validator == "propertyNames" or "propertyNames" in error.relative_schema_path:
        return str(error.instance)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = set((error.schema or {}).get("properties", {}))
        unknown = [str(k) for k in error.instance if k not in known]
        return unknown[0] if unknown else None
    return None


def _line_of(node: Any, path: list[str], at_key: bool = False) -> int:
    """The 1-based line of the YAML node at ``path`` (or its nearest existing parent); with
    ``at_key``, of the last key itself rather than of its value."""
    current = node
    for index, key in enumerate(path):
        if isinstance(current, yaml.MappingNode):
            pair = next(((k, v) for k, v in current.value if str(k.value) == key), None)
            if pair is not None and at_key and index == len(path) - 1:
                return pair[0].start_mark.line + 1
            nxt = pair[1] if pair is not None else None
        elif isinstance(current, yaml.SequenceNode) and key.isdigit() and int(key) < len(current.value):
            nxt = current.value[int(key)]
        else:
            nxt = None
        if nxt is None:
            break
        current = nxt
    return (current.start_mark.line + 1) if current is not None else 1
