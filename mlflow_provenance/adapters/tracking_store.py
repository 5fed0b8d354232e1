"""The provenance tracking store: MLflow's own SQL store, with every write recorded.

It *is* MLflow's ``SqlAlchemyStore`` (a subclass), so every call behaves exactly as
MLflow's — same return values, same exceptions — and ``isinstance`` checks that MLflow
makes on its SQL store still hold. What it adds happens inside MLflow's own
transactions: capture triggers copy each written row, and the ledger event describing
them commits with them.
"""

from __future__ import annotations

import functools
import inspect
import os
from typing import Any, Callable

from mlflow.entities import RunStatus
from mlflow.store.tracking import DEFAULT_LOCAL_FILE_AND_ARTIFACT_PATH
from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

from mlflow_provenance.adapters.binding import (
    ENGINES,
    ENGINES_LOCK,
    bind_sessions, record_write_methods,
    recorder_for,
    signing_key,
)
from mlflow_provenance.adapters import records, run_environment
from mlflow_provenance.recorder import attach, operation
from mlflow_provenance.uri import inner_uri

_SERVER_ARTIFACT_ROOT_ENV_VAR = "_MLFLOW_SERVER_ARTIFACT_ROOT"


class ProvenanceTrackingStore(SqlAlchemyStore):
    """MLflow tracking store for ``provenance+<inner>`` URIs.

    Raises:
        ConfigurationError: unsupported inner URI, unusable signing key, or a ledger
            written by a newer version of this package. Nothing is written then.
    """

    # Engines of our own: a plain MLflow store in the same process must not share them.
    _engine_map = ENGINES
    _engine_map_lock = ENGINES_LOCK

    def __init__(self, store_uri: str, default_artifact_root: str | None = None, read_db_uri: str | None = None) -> None:
        self.provenance_uri = store_uri
        db_uri = inner_uri(store_uri) if store_uri.startswith("provenance+") else store_uri
        if default_artifact_root is None:
            default_artifact_root = os.environ.get(
                _SERVER_ARTIFACT_ROOT_ENV_VAR, DEFAULT_LOCAL_FILE_AND_ARTIFACT_PATH
            )
        self._signing_key = signing_key()
        super().__init__(db_uri, default_artifact_root)

    def _initialize_store_state(self) -> None:
        # Called by SqlAlchemyStore.__init__ once the engine and sessions exist, before
        # the first write (the default experiment): bind the ledger here.
        self.recorder = recorder_for(self.engine, self._signing_key)
        bind_sessions(self, self.recorder)
        with operation("create_default_experiment"):
            super()._initialize_store_state()


def _with_environment(create_run: Callable[..., Any]) -> Callable[..., Any]:
    """MLflow's ``create_run`` (same signature and doc), with the environment manifest bound
    into its ledger event and written as ``provenance/environment.json`` once committed."""
    signature = inspect.signature(create_run)

    @functools.wraps(create_run)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        call = signature.bind(self, *args, **kwargs)
        environment = run_environment.for_new_run(call.arguments.get("tags"))
        call.arguments["tags"] = environment.tags
        with operation("create_run"), attach(environment.attachment):
            run = create_run(*call.args, **call.kwargs)
        run_environment.write_artifacts(run, environment.manifest)
        return run

    wrapper.__provenance_op__ = "create_run"  # type: ignore[attr-defined]
    return wrapper


ProvenanceTrackingStore.create_run = _with_environment(SqlAlchemyStore.create_run)  # type: ignore[method-assign]


def _with_lineage_page(update_run_info: Callable[..., Any]) -> Callable[..., Any]:
    """MLflow's ``update_run_info``; when it ends the run, the run's lineage page is written
    as ``provenance/lineage.html`` (after the commit, in the background)."""

    @functools.wraps(update_run_info)
    def wrapper(self: Any, run_id: str, *args: Any, **kwargs: Any) -> Any:
        info = update_run_info(self, run_id, *args, **kwargs)
        if _run_end(run_id, *args, **kwargs):
            from mlflow_provenance.adapters.lineage_artifact import schedule_run_lineage

            schedule_run_lineage(self, run_id)
        return info

    return wrapper


def _run_end(run_id: str, run_status: Any = None, *args: Any, **kwargs: Any) -> str | None:
    status = kwargs.get("run_status", run_status)
    if status is not None and RunStatus.is_terminated(status):
        return f"run-end:{run_id}"
    return None


def _hard_delete(ident: Any, *args: Any, **kwargs: Any) -> str:
    return f"hard-delete:{ident}"


record_write_methods(
    ProvenanceTrackingStore,
    SqlAlchemyStore,
    checkpoints={
        "update_run_info": _run_end,
        "_hard_delete_run": _hard_delete,
        "_hard_delete_experiment": _hard_delete,
        "_hard_delete_logged_model": _hard_delete,
    },
    extra=tuple(
        name
        for name in ("_hard_delete_run", "_hard_delete_experiment", "_hard_delete_logged_model")
        if hasattr(SqlAlchemyStore, name)
    ),
)


def _prepared(method: Callable[..., Any], prepare: Callable[[Any, inspect.BoundArguments], list[Any]]) -> Callable[..., Any]:
    """``method`` (MLflow's signature and doc) after ``prepare``, which may refuse (raise)
    before anything is written, rewrite the arguments, and return records to bind into
    the write's event."""
    signature = inspect.signature(method)

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        call = signature.bind(self, *args, **kwargs)
        attachments = prepare(self, call)
        if not attachments:
            return method(*call.args, **call.kwargs)
        with attach(*attachments):
            return method(*call.args, **call.kwargs)

    return wrapper


def _refuse_owned_tags(keys: list[str]) -> None:
    """The ``provenance.env.*`` tags are set by the store at ``create_run`` from the manifest
    it recorded: a later edit through the API would make the UI disagree with the ledger
    (it would be recorded, but mislead whoever reads the run page)."""
    for key in keys:
        if str(key).startswith(run_environment.OWNED_TAG_PREFIX):
            raise run_environment.owned_tag_error(key)


def _set_tag(store: Any, call: inspect.BoundArguments) -> list[Any]:
    _refuse_owned_tags([call.arguments["tag"].key])
    return []


def _delete_tag(store: Any, call: inspect.BoundArguments) -> list[Any]:
    _refuse_owned_tags([call.arguments["key"]])
    return []


def _inputs(store: Any, call: inspect.BoundArguments) -> list[Any]:
    return records.for_inputs(store, call.arguments["run_id"], call.arguments.get("datasets"))


def _batch(store: Any, call: inspect.BoundArguments) -> list[Any]:
    """Take an evaluation record out of the batch's tags; refuse edits of our tags."""
    tags = call.arguments.get("tags")
    if not tags:
        return []  # the common case: metrics and params only
    kept, attachments = records.for_batch(store, call.arguments["run_id"], call.arguments.get("metrics") or (), tags)
    _refuse_owned_tags([t.key for t in kept])
    call.arguments["tags"] = kept
    return attachments


ProvenanceTrackingStore.update_run_info = _with_lineage_page(  # type: ignore[method-assign]
    ProvenanceTrackingStore.update_run_info)
ProvenanceTrackingStore.set_tag = _prepared(ProvenanceTrackingStore.set_tag, _set_tag)  # type: ignore[method-assign]
ProvenanceTrackingStore.delete_tag = _prepared(ProvenanceTrackingStore.delete_tag, _delete_tag)  # type: ignore[method-assign]
ProvenanceTrackingStore.log_inputs = _prepared(ProvenanceTrackingStore.log_inputs, _inputs)  # type: ignore[method-assign]
ProvenanceTrackingStore.log_batch = _prepared(ProvenanceTrackingStore.log_batch, _batch)  # type: ignore[method-assign]
