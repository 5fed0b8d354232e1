"""Run-context provider: sends this process's environment manifest to a remote server.

Registered under MLflow's ``mlflow.run_context_provider`` entry point, so every
``mlflow.start_run`` consults it. Against a remote tracking server (``http(s)://``) it
returns the manifest, compressed, in transport tags that the server's provenance store
consumes (:mod:`.run_environment`); a server without the plugin would keep them as
ordinary tags, each under MLflow's tag size limit. For a local ``provenance+`` store it
returns nothing: the store captures the manifest itself, for ``MlflowClient.create_run``
too. Other tracking URIs are left untouched.

MLflow logs and swallows a provider's exceptions; this one never raises, and a failed
capture still yields a (partial) manifest.
"""

from __future__ import annotations

import logging

from mlflow.tracking.context.abstract_context import RunContextProvider

_logger = logging.getLogger(__name__)
_REMOTE_SCHEMES = ("http://", "https://")


class ProvenanceRunContext(RunContextProvider):
    def in_context(self) -> bool:
        try:
            from mlflow.tracking._tracking_service.utils import get_tracking_uri

            from mlflow_provenance.adapters import mlflow_datasets

            mlflow_datasets.install()  # full digests for plain log_input from here on
            return get_tracking_uri().lower().startswith(_REMOTE_SCHEMES)
        except Exception as exc:  # noqa: BLE001 - boundary: MLflow would only log it
            _logger.warning("mlflow-provenance: could not read the tracking URI: %s", exc)
            return False

    def tags(self) -> dict[str, str]:
        from mlflow_provenance.environment import capture_environment
        from mlflow_provenance.environment.manifest import transport_tags

        try:
            return transport_tags(capture_environment())
        except Exception as exc:  # noqa: BLE001 - boundary: never break start_run
            _logger.warning(
                "mlflow-provenance: no environment manifest for this run (the server will mark "
                "it missing): %s", exc, exc_info=True,
            )
            return {}
