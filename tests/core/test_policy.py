"""The promotion policy (issue 5): parsing, normalising, digests, and errors a user can act on.

No MLflow here: :mod:`mlflow_provenance.policy` is pure. Every configuration error must
name the line of the offending YAML node (the expected line is computed from the text
each case writes, by finding a marker in it) and end with a ``Fix:`` hint.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from mlflow_provenance.canonical import canonical_json
from mlflow_provenance.errors import ConfigurationError
from mlflow_provenance.policy import DEFAULT_POLICY_YAML, REQUIREMENTS, load_policy, parse_policy

ALL = ("environment", "code", "training_data", "evaluation", "integrity", "owner")
#: What every requirement normalises to when it is simply switched on.
ALL_ON = {
    "environment": True,
    "code": "commit-or-digest",
    "training_data": {"min": 1},
    "evaluation": {"thresholds_met": True},
    "integrity": True,
    "owner": {"tag": "owner"},
}


def line_of(text: str, marker: str) -> int:
    """1-based number of the first line of ``text`` containing ``marker``."""
    for number, line in enumerate(text.splitlines(), start=1):
        if marker in line:
            return number
    raise AssertionError(f"marker {marker!r} is not in the test's YAML")


def reported_line(message: str) -> int:
    match = re.search(r"\bline (\d+)\b", message)
    assert match, f"no 'line N' in the error: {message}"
    return int(match.group(1))


def error_of(text: str, origin: str = "policy.yaml") -> str:
    with pytest.raises(ConfigurationError) as info:
        parse_policy(text, origin=origin)
    message = str(info.value)
    assert origin in message, message
    return message


# --- the built-in default --------------------------------------------------------------------


def test_builtin_default_parses_and_gates_production_staging_and_aliases() -> None:
    policy = load_policy(None)
    assert policy.origin == "built-in"
    assert policy.digest == parse_policy(DEFAULT_POLICY_YAML).digest
    assert set(policy.targets) == {("stage", "Staging"), ("stage", "Production"),
                                   ("alias", "production"), ("alias", "champion")}
    assert policy.target("Production", "stage").require == ALL_ON
    assert policy.target("champion", "alias").require == ALL_ON
    staging = policy.target("Staging", "stage").require
    assert set(staging) == {"environment", "code", "training_data", "integrity"}
    assert policy.protected_models == ("*-prod", "*-production")
    assert REQUIREMENTS == ALL


# --- target lookup ---------------------------------------------------------------------------

TWO_SECTIONS = """\
version: 1
stages:
  Production:
    require: [owner]
aliases:
  Champion:
    require: [environment]
  production:
    require: [integrity]
"""


@pytest.mark.parametrize("spelling", ["Production", "production", "PRODUCTION", "pRoDuCtIoN"])
def test_stage_names_match_case_insensitively(spelling: str) -> None:
    target = parse_policy(TWO_SECTIONS).target(spelling, "stage")
    assert target is not None
    assert (target.name, target.kind, target.require) == ("Production", "stage", {"owner": {"tag": "owner"}})


def test_aliases_match_exactly_and_apart_from_stages() -> None:
    policy = parse_policy(TWO_SECTIONS)
    assert policy.target("Champion", "alias").require == {"environment": True}
    assert policy.target("champion", "alias") is None
    assert policy.target("CHAMPION", "alias") is None
    # the alias named "production" is its own target, not the Production stage
    alias = policy.target("production", "alias")
    assert (alias.kind, alias.require) == ("alias", {"integrity": True})
    assert policy.target("Production", "alias") is None
    assert policy.target("Staging", "stage") is None
    assert policy.target("Champion", "stage") is None


# --- normalisation ---------------------------------------------------------------------------


def test_list_form_and_mapping_form_normalise_alike() -> None:
    listed = parse_policy("version: 1\nstages:\n  Production:\n    require: [" + ", ".join(ALL) + "]\n")
    mapped = parse_policy(
        "version: 1\nstages:\n  Production:\n    require:\n"
        + "".join(f"      {name}: true\n" for name in ALL)
    )
    assert listed.target("Production", "stage").require == ALL_ON
    assert mapped.target("Production", "stage").require == ALL_ON
    # they are different documents, so different policies
    assert listed.digest != mapped.digest


def test_false_drops_a_requirement_and_settings_are_kept() -> None:
    policy = parse_policy("""\
version: 1
aliases:
  champion:
    require:
      environment: false
      code: clean-commit
      training_data: {min: 2}
      evaluation: {thresholds_met: false}
      integrity: false
      owner: {tag: steward}
  candidate:
    require:
      code: false
      owner: true
""")
    assert policy.target("champion", "alias").require == {
        "code": "clean-commit",
        "training_data": {"min": 2},
        "evaluation": {"thresholds_met": False},
        "owner": {"tag": "steward"},
    }
    assert policy.target("candidate", "alias").require == {"owner": {"tag": "owner"}}


@pytest.mark.parametrize(("setting", "expected"), [
    ("true", "commit-or-digest"),
    ("commit-or-digest", "commit-or-digest"),
    ("clean-commit", "clean-commit"),
])
def test_code_settings(setting: str, expected: str) -> None:
    policy = parse_policy(f"version: 1\nstages:\n  Staging:\n    require:\n      code: {setting}\n")
    assert policy.target("staging", "stage").require == {"code": expected}


def test_empty_targets_and_settings_default() -> None:
    policy = parse_policy("version: 1\naliases:\n  champion:\n    require: {training_data: true, owner: {}}\n")
    assert policy.target("champion", "alias").require == {"training_data": {"min": 1}, "owner": {"tag": "owner"}}
    assert parse_policy("version: 1\nstages: {}\n").targets == {}


# --- errors: line and fix --------------------------------------------------------------------


@dataclass(frozen=True)
class Bad:
    text: str
    marker: str  # the expected line is the first one containing this
    fix: str  # text the Fix: hint must contain
    field: str = ""  # the field the message must name


_PARENT_LINE = (
    "an additionalProperties/propertyNames error is reported at the line of the enclosing "
    "mapping's first key (policy._line_of walks error.absolute_path, which ends at the mapping), "
    "not at the offending key"
)

BAD = {
    "unknown-requirement-in-list": Bad(
        "version: 1\nstages:\n  Production:\n    require:\n      - environment\n      - bogus\n",
        "- bogus", "use a list of environment, code", "stages.Production.require"),
    "unknown-requirement-in-flow-list": Bad(
        "version: 1\naliases:\n  champion:\n    require: [environment, bogus]\n",
        "bogus", "use a list of environment, code", "aliases.champion.require"),
    "unknown-requirement-in-mapping": Bad(
        "version: 1\nstages:\n  Production:\n    require:\n      environment: true\n      bogus: true\n",
        "bogus: true", "use a list of environment, code", "stages.Production.require"),
    "bad-code-setting": Bad(
        "version: 1\nstages:\n  Production:\n    require:\n      environment: true\n      code: dirty-ok\n",
        "dirty-ok", "clean-commit", "stages.Production.require.code"),
    "wrong-version": Bad(
        "# my policy\nversion: 2\nstages:\n  Production:\n    require: [environment]\n",
        "version: 2", "version: 1", "version"),
    "missing-version": Bad(
        "stages:\n  Production:\n    require: [environment]\n",
        "stages:", "version: 1"),
    "missing-stages-and-aliases": Bad(
        "version: 1\nprotected_models: ['*-prod']\n",
        "version: 1", "`stages:` or `aliases:`"),
    "not-valid-yaml": Bad(
        "version: 1\nstages:\n  Production:\n    require: [environment]\naliases: @champion\n",
        "@champion", ""),
    "unknown-top-level-key": Bad(
        "version: 1\nstages:\n  Production:\n    require: [environment]\nbogus: 1\n",
        "bogus: 1", ""),
    "stage-not-staging-or-production": Bad(
        "version: 1\nstages:\n  Prod:\n    require: [environment]\n",
        "Prod:", "Staging or Production", "stages"),
    "stage-not-staging-or-production-after-another": Bad(
        "version: 1\nstages:\n  Staging:\n    require: [environment]\n  Prod:\n    require: [environment]\n",
        "Prod:", "Staging or Production", "stages"),
    "bad-protected-models": Bad(
        "version: 1\naliases:\n  champion:\n    require: [owner]\nprotected_models: '*-prod'\n",
        "protected_models", "model-name patterns", "protected_models"),
}



@pytest.mark.parametrize("case", list(BAD))
def test_error_names_the_right_line(case: str) -> None:
    bad = BAD[case]
    message = error_of(bad.text)
    assert reported_line(message) == line_of(bad.text, bad.marker), message
    if bad.field:
        assert f": {bad.field}" in message, message


@pytest.mark.parametrize("case", list(BAD))
def test_error_ends_with_a_fix(case: str) -> None:
    bad = BAD[case]
    message = error_of(bad.text)
    assert "Fix: " in message, message
    fix = message.split("Fix: ", 1)[1]
    assert fix.strip(), message
    assert bad.fix in fix, message


def test_unknown_names_are_quoted_in_the_error() -> None:
    assert "'bogus'" in error_of(BAD["unknown-top-level-key"].text)
    assert "'bogus'" in error_of(BAD["unknown-requirement-in-list"].text)
    assert "'Prod'" in error_of(BAD["stage-not-staging-or-production"].text)
    assert "not valid YAML" in error_of(BAD["not-valid-yaml"].text)


@pytest.mark.parametrize("text", ["- stages\n- aliases\n", ""])
def test_a_non_mapping_document_points_at_the_current_format(text: str) -> None:
    message = error_of(text)
    assert "targets:" not in message, message
    assert "stages:" in message and "aliases:" in message, message
    assert "Fix: " in message, message


def test_duplicate_requirements_in_a_list_are_refused() -> None:
    text = "version: 1\naliases:\n  champion:\n    require: [owner, owner]\n"
    message = error_of(text)
    assert reported_line(message) == line_of(text, "[owner, owner]")


# --- digest ----------------------------------------------------------------------------------


def test_digest_is_sha256_of_the_canonical_json_of_the_document() -> None:
    text = DEFAULT_POLICY_YAML
    policy = parse_policy(text)
    document = yaml.safe_load(text)
    assert policy.document == document
    assert policy.content == canonical_json(document)
    # independent of our canonicaliser (plain ASCII strings, ints, bools only here)
    plain = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    assert policy.content == plain
    assert policy.digest == "sha256:" + hashlib.sha256(plain).hexdigest()


def test_digest_ignores_formatting_and_follows_content() -> None:
    block = "version: 1\n# note\nstages:\n  Production:\n    require:\n      - owner\n      - code\n"
    flow = "{version: 1, stages: {Production: {require: [owner, code]}}}"
    assert parse_policy(block).digest == parse_policy(flow).digest
    assert parse_policy(block, origin="a.yaml").digest == parse_policy(block, origin="b.yaml").digest
    changed = {
        "order of the list": "{version: 1, stages: {Production: {require: [code, owner]}}}",
        "a requirement": "{version: 1, stages: {Production: {require: [owner]}}}",
        "a setting": "{version: 1, stages: {Production: {require: {owner: {tag: steward}, code: true}}}}",
        "protected models": "{version: 1, stages: {Production: {require: [owner, code]}}, protected_models: [x]}",
        "a description": "{version: 1, stages: {Production: {require: [owner, code], description: d}}}",
    }
    digests = {parse_policy(flow).digest} | {parse_policy(text).digest for text in changed.values()}
    assert len(digests) == len(changed) + 1


# --- protected models ------------------------------------------------------------------------


def test_copy_target_only_for_protected_models_with_productions_requirements() -> None:
    policy = parse_policy("""\
version: 1
stages:
  production:
    require: [owner, integrity]
aliases:
  champion:
    require: [environment]
protected_models: ["*-prod", "release/*"]
""")
    for name in ("wine-prod", "-prod", "release/wine"):
        target = policy.copy_target(name)
        assert target is not None, name
        assert target.kind == "copy"
        assert target.require == {"owner": {"tag": "owner"}, "integrity": True}
    for name in ("wine-prod-2", "wine-PROD", "wine", "prod", "staging/wine-prod/x"):
        assert policy.copy_target(name) is None, name


def test_copy_target_without_a_production_stage_requires_everything() -> None:
    policy = parse_policy("version: 1\naliases:\n  champion:\n    require: [owner]\nprotected_models: ['*-prod']\n")
    assert policy.copy_target("m-prod").require == ALL_ON
    assert parse_policy("version: 1\naliases:\n  champion:\n    require: [owner]\n").copy_target("m-prod") is None


def test_builtin_protects_prod_and_production_suffixes() -> None:
    policy = load_policy(None)
    assert policy.copy_target("wine-classifier-prod").require == ALL_ON
    assert policy.copy_target("wine-classifier-production") is not None
    assert policy.copy_target("wine-classifier") is None
    assert policy.copy_target("wine-classifier-prod-old") is None


# --- files -----------------------------------------------------------------------------------


def test_load_policy_reads_a_file_and_keeps_its_origin(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(TWO_SECTIONS)
    policy = load_policy(path)
    assert policy.origin == str(path)
    assert policy.digest == parse_policy(TWO_SECTIONS).digest
    assert load_policy(str(path)).digest == policy.digest


def test_load_policy_of_a_missing_file_names_it(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "policy.yaml"
    with pytest.raises(ConfigurationError) as info:
        load_policy(path)
    assert str(path) in str(info.value)


def test_load_policy_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    text = BAD["wrong-version"].text
    path.write_text(text)
    with pytest.raises(ConfigurationError) as info:
        load_policy(path)
    message = str(info.value)
    assert str(path) in message
    assert reported_line(message) == line_of(text, "version: 2")
