"""Which MLflow entity a captured row belongs to.

Rows of ``runs``, ``params``, ``metrics``… belong to a run; rows of ``model_versions`` to a
model version, and so on. The ledger uses this to choose the hash chain an event
extends, and ``verify`` to name the entity in a report.
"""

from __future__ import annotations

from typing import Any, Iterable, Protocol

# (table, entity type, id columns); earlier rules win when a write touches several.
ENTITY_RULES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("runs", "run", ("run_uuid",)),
    ("params", "run", ("run_uuid",)),
    ("metrics", "run", ("run_uuid",)),
    ("latest_metrics", "run", ("run_uuid",)),
    ("tags", "run", ("run_uuid",)),
    ("inputs", "run", ("destination_id",)),
    ("model_versions", "model_version", ("name", "version")),
    ("model_version_tags", "model_version", ("name", "version")),
    ("registered_models", "registered_model", ("name",)),
    ("registered_model_tags", "registered_model", ("name",)),
    ("registered_model_aliases", "registered_model", ("name",)),
    ("logged_models", "logged_model", ("model_id",)),
    ("logged_model_params", "logged_model", ("model_id",)),
    ("logged_model_tags", "logged_model", ("model_id",)),
    ("logged_model_metrics", "logged_model", ("model_id",)),
    ("experiments", "experiment", ("experiment_id",)),
    ("experiment_tags", "experiment", ("experiment_id",)),
    ("datasets", "experiment", ("experiment_id",)),
    ("trace_info", "trace", ("request_id",)),
)
_RULES_BY_TABLE = {table: (kind, cols) for table, kind, cols in ENTITY_RULES}
_PRIORITY = {kind: i for i, kind in enumerate(dict.fromkeys(k for _, k, _ in ENTITY_RULES))}
# An operation whose name mentions an entity type prefers that type's chain.
_OP_PREFERS = ("experiment", "registered_model", "model_version", "logged_model", "trace")


class _ChangeLike(Protocol):
    table: str
    old: dict[str, Any] | None
    new: dict[str, Any] | None


def entity_of_row(table: str, row: dict[str, Any]) -> tuple[str, str] | None:
    """The (type, id) a row belongs to, or None for tables outside the rules."""
    rule = _RULES_BY_TABLE.get(table)
    if rule is None:
        return None
    kind, cols = rule
    if table == "inputs":
        # dataset -> run (an input) or run -> logged model (an output): the run's chain.
        # (MLflow writes outputs with source_type RUN_OUTPUT, destination_type MODEL_OUTPUT.)
        for side in ("destination", "source"):
            if row.get(f"{side}_type") in ("RUN", "RUN_OUTPUT"):
                return "run", str(row.get(f"{side}_id"))
        return None
    return kind, "/".join(str(row.get(c)) for c in cols)


def entity_of(op_name: str, changes: Iterable[_ChangeLike]) -> tuple[str, str]:
    """The (type, id) whose chain an event extends; ``("database", "-")`` if none applies."""
    found: dict[str, str] = {}
    seen_tables: set[str] = set()
    for change in changes:
        # One row per table decides (all rows of a table in one write share the entity
        # kind); decoding every row of a 1,000-metric batch would cost more than the rest.
        if change.table in seen_tables and change.table != "inputs":
            continue
        seen_tables.add(change.table)
        row = change.new if change.new is not None else change.old
        entity = entity_of_row(change.table, row or {})
        if entity is not None and entity[0] not in found:
            found[entity[0]] = entity[1]
    if not found:
        return ("database", "-")
    for kind in _OP_PREFERS:
        if kind in op_name and kind in found:
            return kind, found[kind]
    kind = min(found, key=lambda k: _PRIORITY[k])
    return kind, found[kind]
