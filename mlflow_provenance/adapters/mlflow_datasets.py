"""Full-content digests for datasets logged with plain ``mlflow.log_input`` (issue 4).

User code and autologging log ``mlflow.data`` pandas and numpy datasets through MLflow's own
``log_input``; MLflow's digest of them covers at most 10,000 rows in 8 hex digits. Where
the data is in memory — in the logging process — this module adds its full-content digest
(:mod:`mlflow_provenance.datasets.frames`) to the dataset's profile under
``mlflow_provenance_content``, and the provenance store records it with the input
(:mod:`.records`). It wraps the two dataset classes' ``_to_mlflow_entity`` once, when the
first run starts on a provenance store (or a remote server), and adds the digest only while
the tracking URI is one; plain MLflow use is left as it is.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
from typing import Any, Callable

_logger = logging.getLogger(__name__)

PROFILE_KEY = "mlflow_provenance_content"
_lock = threading.Lock()
_installed = False


def install() -> None:
    """Wrap ``PandasDataset`` and ``NumpyDataset`` (idempotent; never raises)."""
    global _installed
    with _lock:
        if _installed:
            return
        _installed = True
        try:
            from mlflow.data.numpy_dataset import NumpyDataset
            from mlflow.data.pandas_dataset import PandasDataset
        except ImportError as exc:  # pragma: no cover - part of MLflow
            _logger.debug("mlflow-provenance: mlflow.data datasets unavailable: %s", exc)
            return
        for cls in (PandasDataset, NumpyDataset):
            cls._to_mlflow_entity = _with_content_digest(cls._to_mlflow_entity)


def _with_content_digest(to_entity: Callable[[Any], Any]) -> Callable[[Any], Any]:
    @functools.wraps(to_entity)
    def wrapper(self: Any) -> Any:
        entity = to_entity(self)
        if not _provenance_tracking():
            return entity
        try:
            from mlflow.entities import Dataset

            from mlflow_provenance.adapters.datasets import _mlflow_dataset_payload
            from mlflow_provenance.datasets.frames import digest_data

            data, _ = _mlflow_dataset_payload(self)
            content = digest_data(data)
            profile = json.loads(entity.profile) if entity.profile else {}
            profile[PROFILE_KEY] = {"digest": content.digest, "description": content.description}
        except Exception as exc:  # noqa: BLE001 - boundary: never break the user's log_input
            _logger.warning("mlflow-provenance: no full-content digest for dataset %r: %s", entity.name, exc)
            return entity
        return Dataset(entity.name, entity.digest, entity.source_type, entity.source, entity.schema,
                       json.dumps(profile))

    return wrapper


def _provenance_tracking() -> bool:
    from mlflow.tracking._tracking_service.utils import get_tracking_uri

    uri = get_tracking_uri().lower()
    return uri.startswith(("provenance+", "http://", "https://"))
