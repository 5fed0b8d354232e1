"""The provenance model-registry store: MLflow's SQL registry store, every write recorded.

The promotion gate builds on this class; for now it records and passes through.
"""

from __future__ import annotations

from typing import Any

from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore

from mlflow_provenance.adapters.binding import (
    ENGINES,
    ENGINES_LOCK,
    bind_sessions, record_write_methods,
    recorder_for,
    signing_key,
)
from mlflow_provenance.uri import inner_uri


class ProvenanceRegistryStore(SqlAlchemyStore):
    """MLflow model-registry store for ``provenance+<inner>`` URIs.

    Raises:
        ConfigurationError: as :class:`~mlflow_provenance.adapters.tracking_store.ProvenanceTrackingStore`.
    """

    _engine_map = ENGINES
    _engine_map_lock = ENGINES_LOCK

    def __init__(self, store_uri: str, read_db_uri: str | None = None) -> None:
        self.provenance_uri = store_uri
        db_uri = inner_uri(store_uri) if store_uri.startswith("provenance+") else store_uri
        key = signing_key()
        super().__init__(db_uri)
        self.recorder = recorder_for(self.engine, key)
        bind_sessions(self, self.recorder)


def _promotion(name: str, *args: Any, **kwargs: Any) -> str:
    return f"registry:{name}"


record_write_methods(
    ProvenanceRegistryStore,
    SqlAlchemyStore,
    checkpoints={
        "transition_model_version_stage": _promotion,
        "set_registered_model_alias": _promotion,
        "delete_model_version": _promotion,
        "delete_registered_model": _promotion,
    },
)
