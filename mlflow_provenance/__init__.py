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


def record_seed(name: str, value: int | str) -> None:
    """Record a random seed this process uses; runs created afterwards carry it in their
    environment manifest (``invocation.seeds["api:<name>"]``).

    Raises:
        ValueError: ``name`` is empty, or ``value`` is not an int or a string.
    """
    from mlflow_provenance.environment.invocation import record_seed as _record

    _record(name, value)


def environment_tags() -> dict[str, str]:
    """Tags that carry this process's environment manifest to a provenance server.

    ``mlflow.start_run`` sends them by itself (through our run-context provider);
    ``MlflowClient.create_run`` against a remote server does not consult providers, so
    pass them there: ``client.create_run(exp_id, tags=mlflow_provenance.environment_tags())``.
    Never raises; a probe that failed is recorded in the manifest.
    """
    from mlflow_provenance.environment import capture_environment
    from mlflow_provenance.environment.manifest import transport_tags

    return transport_tags(capture_environment())


__all__ = [
    "ConfigurationError",
    "IntegrityError",
    "ProvenanceError",
    "__version__",
    "environment_tags",
    "record_seed",
]
