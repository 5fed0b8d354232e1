"""``mlflow server --app-name provenance``: MLflow's basic-auth app plus the provenance rules.

Composes MLflow's own authentication and authorization (``mlflow.server.auth``: users,
per-experiment and per-model permissions, admins) — run fail-closed, so a route without
an authorization decision is denied — with the rules that provenance needs on top:

* **Promotion needs MANAGE.** Moving a version to a gated stage, setting or deleting a
  gated alias, and creating a version in a protected model (``copy_model_version``) need
  MANAGE permission on the registered model (basic-auth alone asks for EDIT). The
  provenance registry store then applies the policy to whoever is allowed through.
* **A run that a registered version depends on cannot be deleted** (nor by an admin):
  the version's provenance would lose its run. Delete the versions first.

It serves the provenance dashboard (:mod:`.dashboard`) at ``/provenance/``, and makes the
actor recorded in every ledger event an authenticated user. Configure
basic-auth as for ``--app-name basic-auth`` (``MLFLOW_AUTH_CONFIG_PATH``, admin password,
``MLFLOW_FLASK_SERVER_SECRET_KEY``).
"""

from __future__ import annotations

import os
from typing import Any, Callable

#: (path suffix, HTTP method) → the provenance rule that decides the request.
RULES: dict[tuple[str, str], str] = {
    ("/mlflow/model-versions/transition-stage", "POST"): "promotion:stage",
    ("/mlflow/registered-models/alias", "POST"): "promotion:alias",
    ("/mlflow/registered-models/alias", "DELETE"): "promotion:alias",
    ("/mlflow/model-versions/create", "POST"): "promotion:new-version",
    ("/mlflow/runs/delete", "POST"): "run-deletion",
}


#: MLflow 3.17 routes for which basic-auth has no validator of its own: with fail-closed on
#: (set by :func:`create_app`) they are denied to everyone but admins. Listed here so that
#: the route-coverage test notices when MLflow adds or changes a route.
DENIED_UNLESS_ADMIN: frozenset[tuple[str, str]] = frozenset({
    ("/build/<path:filename>", "GET"),  # Flask's default static route; the UI uses /static-files
    ("/api/2.0mlflow/experiments/search-datasets", "POST"),  # MLflow's malformed duplicate route
    ("/ajax-api/2.0mlflow/experiments/search-datasets", "POST"),
    *((f"/{api}/2.0/mlflow/unified-traces", "GET") for api in ("api", "ajax-api")),
    *((f"/{api}/2.0/mlflow/get-online-trace-details", "GET") for api in ("api", "ajax-api")),
    *((f"/{api}/3.0/mlflow/workspaces/<workspace_name>", method)
      for api in ("api", "ajax-api") for method in ("GET", "PATCH", "DELETE")),
    *((f"/{api}/3.0/mlflow/prompt-optimization/jobs/<job_id>", method)
      for api in ("api", "ajax-api") for method in ("GET", "DELETE")),
    *((f"/{api}/3.0/mlflow/prompt-optimization/jobs/<job_id>/cancel", "POST") for api in ("api", "ajax-api")),
    ("/api/2.0/mlflow/users/create-ui", "POST"),  # admin-only signup form
})


def create_app(app: Any = None) -> Any:
    """The MLflow server app with basic-auth (fail-closed) and the provenance rules."""
    os.environ.setdefault("MLFLOW_BASIC_AUTH_FAIL_CLOSED", "true")
    from mlflow.server import app as flask_app
    from mlflow.server import auth

    from mlflow_provenance.adapters import dashboard

    flask_app = app or flask_app
    dashboard.register(flask_app, auth)  # before basic-auth wraps the app (FastAPI under uvicorn)
    composed = auth.create_app(flask_app)
    flask_app.before_request(_provenance_rules)  # runs after basic-auth authenticated the user
    return composed


def rule_for(path: str, method: str) -> str | None:
    """Which provenance rule decides a request, if any."""
    return next((rule for (suffix, verb), rule in RULES.items() if method == verb and path.endswith(suffix)), None)


def _provenance_rules() -> Any:
    from flask import request

    rule = rule_for(request.path, request.method)
    if rule is None:
        return None
    if rule == "run-deletion":
        return _refuse_run_deletion(_param("run_id"))
    return _require_manage_for_gated(rule)


def _param(name: str) -> str | None:
    from flask import request

    body = request.get_json(force=True, silent=True) or {}
    value = body.get(name) if isinstance(body, dict) else None
    return value if value is not None else request.args.get(name)


def _require_manage_for_gated(rule: str) -> Any:
    from mlflow.server import auth

    from mlflow_provenance.policy import load_policy

    policy = _policy(load_policy)
    name = _param("name") or ""
    if rule == "promotion:stage":
        gated = policy.target(str(_param("stage") or ""), "stage") is not None
    elif rule == "promotion:alias":
        gated = policy.target(str(_param("alias") or ""), "alias") is not None
    else:
        gated = policy.copy_target(name) is not None
    if not gated or auth.sender_is_admin():
        return None
    try:
        allowed = auth.validate_can_manage_registered_model()
    except Exception:  # noqa: BLE001 - no such model yet: nobody holds MANAGE on it
        allowed = False
    if allowed:
        return None
    return _error(403, "PERMISSION_DENIED",
                  f"Promoting model '{name}' ({rule.split(':', 1)[1]}) needs MANAGE permission on it: "
                  f"ask its owner or an admin to grant it.")


def _refuse_run_deletion(run_id: str | None) -> Any:
    if not run_id:
        return None  # MLflow's own handler reports the missing parameter
    from mlflow.server.handlers import _get_model_registry_store

    versions = _get_model_registry_store().search_model_versions(f"run_id = '{run_id}'", max_results=5)
    if not versions:
        return None
    listed = ", ".join(f"{v.name}/{v.version}" for v in versions)
    return _error(403, "PERMISSION_DENIED",
                  f"Run {run_id} cannot be deleted: registered model version(s) {listed} depend on it, and "
                  f"their provenance would lose its run. Delete those versions first.")


def _error(status: int, code: str, message: str) -> Any:
    from flask import jsonify

    response = jsonify(error_code=code, message=f"mlflow-provenance: {message}")
    response.status_code = status
    return response


_cached_policy: list[Any] = []


def _policy(load: Callable[[Any], Any]) -> Any:
    if not _cached_policy:
        from mlflow_provenance import config

        _cached_policy.append(load(os.environ.get(config.ENV_POLICY) or None))
    return _cached_policy[0]
