"""mlflow-provenance: tamper-evident, auditable model provenance for MLflow.

Data flow: MLflow write → capture trigger (same transaction) → ledger event (RFC 8785
canonical JSON, per-entity hash chain) → RFC 9162 Merkle log → Ed25519-signed C2SP
checkpoint → ``mlflow-provenance verify`` (ledger vs. MLflow tables, chains, tree, signatures).

Core modules (``canonical``, ``merkle``, ``keys``, ``checkpoint``, ``capture``, ``ledger``,
``verify``…) never import MLflow; ``mlflow_provenance.adapters`` does; ``cli`` is thin.
This module imports nothing heavy: MLflow loads our entry points during ``import mlflow``.
"""

from mlflow_provenance.errors import (
    ConfigurationError,
    IntegrityError,
    ProvenanceError,
)

__version__ = "0.1.0"

__all__ = ["ConfigurationError", "IntegrityError", "ProvenanceError", "__version__"]
