"""Factories named by the ``mlflow.tracking_store`` and ``mlflow.model_registry_store``
entry points.

MLflow loads entry points while ``import mlflow`` is still running, so this module
imports nothing from MLflow (or from the stores) at module level.
"""

from __future__ import annotations

from typing import Any


def tracking_store(store_uri: str, artifact_uri: str | None = None) -> Any:
    """Build the provenance tracking store for a ``provenance+<inner>`` URI."""
    from mlflow_provenance.adapters.tracking_store import ProvenanceTrackingStore

    return ProvenanceTrackingStore(store_uri, artifact_uri)


def registry_store(store_uri: str, tracking_uri: str | None = None) -> Any:
    """Build the provenance model-registry store for a ``provenance+<inner>`` URI."""
    from mlflow_provenance.adapters.registry_store import ProvenanceRegistryStore

    return ProvenanceRegistryStore(store_uri)
