"""Environment manifests: where a run ran (DESIGN.md §3, issue 3).

Probes (:mod:`.packages`, :mod:`.system`, :mod:`.gpu`, :mod:`.container`, :mod:`.code`,
:mod:`.invocation`) → :class:`.collector.Collector` (parallel, cached, never raising) →
:class:`.manifest.Manifest` (canonical bytes, ``sha256:`` digest, summary tags) → stored
content-addressed in the ledger by the tracking store. No MLflow imports here.
"""

from mlflow_provenance.environment.collector import Collector, capture_environment, default_collector
from mlflow_provenance.environment.invocation import record_seed
from mlflow_provenance.environment.manifest import Manifest

__all__ = ["Collector", "Manifest", "capture_environment", "default_collector", "record_seed"]
