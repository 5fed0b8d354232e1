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


def log_dataset(data, **kwargs):  # type: ignore[no-untyped-def]
    """Record a dataset (full-content digest, lineage, license…): see
    :func:`mlflow_provenance.adapters.datasets.log_dataset`."""
    from mlflow_provenance.adapters.datasets import log_dataset as _log

    return _log(data, **kwargs)


def log_evaluation(metrics, **kwargs):  # type: ignore[no-untyped-def]
    """Record an evaluation bound to its dataset, slice, seed and model: see
    :func:`mlflow_provenance.adapters.datasets.log_evaluation`."""
    from mlflow_provenance.adapters.datasets import log_evaluation as _log

    return _log(metrics, **kwargs)


def dataset_lineage(digest, **kwargs):  # type: ignore[no-untyped-def]
    """Upstream or downstream lineage of a dataset: see
    :func:`mlflow_provenance.adapters.datasets.dataset_lineage`."""
    from mlflow_provenance.adapters.datasets import dataset_lineage as _lineage

    return _lineage(digest, **kwargs)


def run_lineage(run_id, **kwargs):  # type: ignore[no-untyped-def]
    """The datasets (and their ancestors) and evaluations of a run: see
    :func:`mlflow_provenance.adapters.datasets.run_lineage`."""
    from mlflow_provenance.adapters.datasets import run_lineage as _lineage

    return _lineage(run_id, **kwargs)


__all__ = [
    "ConfigurationError",
    "IntegrityError",
    "ProvenanceError",
    "__version__",
    "dataset_lineage",
    "environment_tags",
    "log_dataset",
    "log_evaluation",
    "record_seed",
    "run_lineage",
]
