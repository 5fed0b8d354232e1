"""Where a run's (or a logged model's) artifacts are, from the process writing them.

Inside ``mlflow server`` with proxied artifacts, an ``mlflow-artifacts:/…`` URI names a path
under the server's ``--artifacts-destination``; the server reaches it directly, as its own
upload handler does. Anywhere else, MLflow's artifact repository for the URI.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlparse


def repository(artifact_uri: str) -> tuple[Any, str]:
    """The artifact repository for ``artifact_uri``, and the path of the URI's root inside it."""
    from mlflow.server import ARTIFACTS_DESTINATION_ENV_VAR

    if artifact_uri.startswith("mlflow-artifacts:") and os.environ.get(ARTIFACTS_DESTINATION_ENV_VAR):
        from mlflow.server.handlers import _get_artifact_repo_mlflow_artifacts

        return _get_artifact_repo_mlflow_artifacts(), urlparse(artifact_uri).path.lstrip("/")
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    return get_artifact_repository(artifact_uri), ""


def log_directory(artifact_uri: str, local_dir: str, artifact_path: str) -> None:
    """Upload the files of ``local_dir`` to ``artifact_path`` under ``artifact_uri``."""
    repo, root = repository(artifact_uri)
    repo.log_artifacts(local_dir, f"{root}/{artifact_path}" if root else artifact_path)


def download(artifact_uri: str, destination: str) -> str:
    """Download everything under ``artifact_uri`` into ``destination``; returns the local path."""
    repo, root = repository(artifact_uri)
    return repo.download_artifacts(root, destination)
