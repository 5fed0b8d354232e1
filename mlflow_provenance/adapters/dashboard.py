"""The provenance dashboard, served by ``mlflow server --app-name provenance``.

``/provenance/``            runs and model versions, filtered by date, experiment, owner
                            and model; each row shows the environment status, datasets,
                            gate decisions and a link to the model's page
``/provenance/model``       one model version (``?name=…&version=…``): its lineage (the
                            same self-contained view as the ``provenance/lineage.html`` run
                            artifact), verification status and chain head, gate decisions,
                            and export buttons
``/provenance/export``      downloads an export of a model version (``&format=bundle|
                            prov-json|prov-o|slsa|openlineage``)

Plain server-rendered HTML with GET forms: no JavaScript. What a user sees is what MLflow's
basic-auth lets them read: experiments and registered models they hold READ on (admins: all).
"""

from __future__ import annotations

import datetime as _dt
import html
from typing import Any, Callable
from urllib.parse import urlencode

import sqlalchemy as sa

from mlflow_provenance.sql import query

PREFIX = "/provenance"
ROUTES = (f"{PREFIX}/", f"{PREFIX}/model", f"{PREFIX}/export")
EXPORT_FORMATS = ("bundle", "prov-json", "prov-o", "slsa", "openlineage")


def register(app: Any, auth: Any) -> None:
    """Add the dashboard routes to ``app``, with basic-auth decisions for each."""
    app.add_url_rule(f"{PREFIX}/", "provenance_dashboard", _guard(_dashboard), methods=["GET"])
    app.add_url_rule(f"{PREFIX}/model", "provenance_model", _guard(_model_page), methods=["GET"])
    app.add_url_rule(f"{PREFIX}/export", "provenance_export", _guard(_export), methods=["GET"])
    # Authenticated users reach the list (filtered per user inside); a model page or export
    # needs READ on that registered model (``name`` is a query parameter).
    auth.BEFORE_REQUEST_VALIDATORS[(f"{PREFIX}/", "GET")] = lambda: True
    auth.BEFORE_REQUEST_VALIDATORS[(f"{PREFIX}/model", "GET")] = auth.validate_can_read_registered_model
    auth.BEFORE_REQUEST_VALIDATORS[(f"{PREFIX}/export", "GET")] = auth.validate_can_read_registered_model


def _guard(view: Callable[[], Any]) -> Callable[[], Any]:
    def wrapped() -> Any:
        from flask import Response

        from mlflow_provenance.errors import ProvenanceError

        try:
            return view()
        except ProvenanceError as exc:  # boundary: a page, not a stack trace
            return Response(_page("Error", f"<p class='bad'>{html.escape(str(exc))}</p>"), status=400,
                            mimetype="text/html")

    wrapped.__name__ = view.__name__
    return wrapped


# --- data ------------------------------------------------------------------------------------------


def _engine() -> sa.engine.Engine:
    from mlflow.server.handlers import _get_tracking_store

    return _get_tracking_store().engine


def _readable(kind: str) -> Callable[[str], bool]:
    """Whether the requesting user may read an experiment / registered model."""
    from mlflow.server import auth

    if auth.sender_is_admin():
        return lambda _id: True
    username = auth.authenticate_request().username
    if kind == "experiment":
        return lambda experiment_id: auth._get_experiment_permission(str(experiment_id), username).can_read
    return lambda name: auth._get_registered_model_permission(name).can_read


def _filters() -> dict[str, str]:
    from flask import request

    return {key: request.args.get(key, "").strip() for key in ("from", "to", "experiment", "owner", "model")}


def _millis(day: str, end: bool) -> int | None:
    if not day:
        return None
    try:
        moment = _dt.datetime.fromisoformat(day).replace(tzinfo=_dt.timezone.utc)
    except ValueError:
        from mlflow_provenance.errors import ConfigurationError

        raise ConfigurationError(f"dates are YYYY-MM-DD, got {day!r}")
    if end and len(day) <= 10:
        moment += _dt.timedelta(days=1)
    return int(moment.timestamp() * 1000)


def _runs(conn: sa.engine.Connection, f: dict[str, str], can_read: Callable[[str], bool]) -> list[dict[str, Any]]:
    rows = conn.exec_driver_sql(
        "SELECT r.run_uuid, r.name, r.experiment_id, e.name, r.start_time, r.user_id, r.status "
        "FROM runs r JOIN experiments e ON e.experiment_id = r.experiment_id "
        "WHERE r.lifecycle_stage = 'active' ORDER BY r.start_time DESC"
    ).all()
    tags = _tags(conn, "SELECT run_uuid, key, value FROM tags WHERE key IN (?, ?)", "owner", "provenance.env.status")
    start, end = _millis(f["from"], False), _millis(f["to"], True)
    result = []
    for run_id, name, experiment_id, experiment, started, user, status in rows:
        owner = tags.get(run_id, {}).get("owner") or user or ""
        if (start and (started or 0) < start) or (end and (started or 0) >= end):
            continue
        if f["experiment"] and f["experiment"] not in (str(experiment_id), experiment):
            continue
        if f["owner"] and f["owner"].lower() not in owner.lower():
            continue
        if not can_read(str(experiment_id)):
            continue
        result.append({"run_id": run_id, "name": name, "experiment": experiment, "started": started,
                       "owner": owner, "status": status,
                       "environment": tags.get(run_id, {}).get("provenance.env.status", "missing")})
    return result


def _versions(conn: sa.engine.Connection, f: dict[str, str], runs: set[str] | None,
              can_read: Callable[[str], bool]) -> list[dict[str, Any]]:
    rows = conn.exec_driver_sql(
        "SELECT name, version, run_id, current_stage, creation_time FROM model_versions ORDER BY name, version"
    ).all()
    tags: dict[str, dict[str, str]] = {}
    for name, version, key, value in query(conn, "SELECT name, version, key, value FROM model_version_tags "
                                                 "WHERE key LIKE ?", "provenance.gate.%"):
        tags.setdefault(f"{name}/{version}", {})[key] = value
    owners = dict(query(conn, "SELECT name, value FROM registered_model_tags WHERE key = ?", "owner").all())
    aliases: dict[str, list[str]] = {}
    for name, alias, version in conn.exec_driver_sql("SELECT name, alias, version FROM registered_model_aliases"):
        aliases.setdefault(f"{name}/{version}", []).append(alias)
    start, end = _millis(f["from"], False), _millis(f["to"], True)
    result = []
    for name, version, run_id, stage, created in rows:
        key = f"{name}/{version}"
        if f["model"] and f["model"].lower() not in name.lower():
            continue
        if (start and (created or 0) < start) or (end and (created or 0) >= end):
            continue
        if f["owner"] and f["owner"].lower() not in (owners.get(name) or "").lower():
            continue
        if runs is not None and run_id not in runs:
            continue
        if not can_read(name):
            continue
        result.append({"name": name, "version": str(version), "run_id": run_id, "stage": stage,
                       "aliases": sorted(aliases.get(key, [])), "owner": owners.get(name, ""),
                       "gates": {k[len("provenance.gate."):]: v for k, v in tags.get(key, {}).items()}})
    return result


def _tags(conn: sa.engine.Connection, sql: str, *params: Any) -> dict[str, dict[str, str]]:
    result: dict[str, dict[str, str]] = {}
    for owner, key, value in query(conn, sql, *params):
        result.setdefault(str(owner), {})[key] = value
    return result


# --- pages -----------------------------------------------------------------------------------------


def _dashboard() -> Any:
    f = _filters()
    with _engine().connect() as conn:
        runs = _runs(conn, f, _readable("experiment"))
        run_filter = {r["run_id"] for r in runs} if (f["experiment"] or f["owner"] and not f["model"]) else None
        versions = _versions(conn, {**f, "owner": f["owner"] if not run_filter else ""}, run_filter,
                             _readable("registered_model"))
    form = "".join(
        f"<label>{label} <input name='{key}' value='{html.escape(f[key])}' {extra}></label> "
        for key, label, extra in (("from", "from", "type='date'"), ("to", "to", "type='date'"),
                                  ("experiment", "experiment", ""), ("owner", "owner", ""), ("model", "model", ""))
    )
    run_rows = "".join(
        f"<tr><td><code>{html.escape(r['run_id'])}</code></td><td>{html.escape(r['name'] or '')}</td>"
        f"<td>{html.escape(r['experiment'])}</td><td>{_when(r['started'])}</td><td>{html.escape(r['owner'])}</td>"
        f"<td class='{'ok' if r['environment'] == 'complete' else 'bad'}'>{html.escape(r['environment'])}</td></tr>"
        for r in runs
    ) or "<tr><td colspan='6'>no runs match</td></tr>"
    version_rows = "".join(
        f"<tr><td><a href='{PREFIX}/model?{urlencode({'name': v['name'], 'version': v['version']})}'>"
        f"{html.escape(v['name'])} v{v['version']}</a></td><td>{html.escape(v['stage'] or '')}</td>"
        f"<td>{html.escape(', '.join(v['aliases']))}</td><td>{html.escape(v['owner'])}</td>"
        f"<td>{html.escape(', '.join(sorted(v['gates'])) or '—')}</td><td><code>{html.escape(v['run_id'] or '')}</code></td></tr>"
        for v in versions
    ) or "<tr><td colspan='6'>no model versions match</td></tr>"
    body = (
        f"<form method='get' action='{PREFIX}/'>{form}<button type='submit'>Filter</button></form>"
        f"<h2>Model versions ({len(versions)})</h2><table id='versions'><tr><th>model</th><th>stage</th>"
        f"<th>aliases</th><th>owner</th><th>gate decisions</th><th>run</th></tr>{version_rows}</table>"
        f"<h2>Runs ({len(runs)})</h2><table id='runs'><tr><th>run</th><th>name</th><th>experiment</th>"
        f"<th>started</th><th>owner</th><th>environment</th></tr>{run_rows}</table>"
    )
    return _html(_page("Provenance", body))


def _model_page() -> Any:
    from flask import request

    from mlflow_provenance import config
    from mlflow_provenance.exports.lineage_html import render
    from mlflow_provenance.exports.lineage_view import model_upstream
    from mlflow_provenance.exports.snapshot import take_snapshot
    from mlflow_provenance.lineage import load_graph
    from mlflow_provenance.verify import Scope, verify_database

    name, version = request.args.get("name", ""), request.args.get("version", "")
    engine = _engine()
    snapshot = take_snapshot(engine, config.trusted_keyring(), model=(name, version))
    with engine.connect() as conn:
        graph = load_graph(conn)
    report = verify_database(engine, config.trusted_keyring(),
                             witness=config.read_witness(config.database_identity(engine.url)),
                             scope=Scope(model=(name, version)))
    verification = _verification(report, snapshot)
    page = render(model_upstream(graph, snapshot), verification)
    links = " ".join(
        f"<a class='export' href='{PREFIX}/export?{urlencode({'name': name, 'version': version, 'format': fmt})}'>"
        f"export {fmt}</a>" for fmt in EXPORT_FORMATS
    )
    # The lineage page is self-contained; the dashboard adds its navigation and export links.
    return _html(page.replace("<body>", f"<body><nav><a href='{PREFIX}/'>← provenance dashboard</a> {links}</nav>", 1))


def _verification(report: Any, snapshot: Any) -> dict[str, Any]:
    head = snapshot.events[-1] if snapshot.events else None
    return {
        "ok": report.ok,
        "findings": [str(f) for f in report.findings],
        "checked_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "chain_head": {"seq": head["seq"], "hash": head["hash"]} if head else None,
        "checkpoint": {"size": snapshot.checkpoint["size"], "root": snapshot.checkpoint["root"]},
    }


def _export() -> Any:
    from flask import Response, request

    from mlflow_provenance.adapters import exporting
    from mlflow_provenance.errors import ConfigurationError

    name, version, fmt = (request.args.get(k, "") for k in ("name", "version", "format"))
    if fmt not in EXPORT_FORMATS:
        raise ConfigurationError(f"format must be one of {', '.join(EXPORT_FORMATS)}")
    content, filename, mimetype = exporting.export_model(_engine(), name, version, fmt, serving=True)
    response = Response(content, mimetype=mimetype)
    response.headers["Content-Disposition"] = f"attachment; filename={filename}"
    return response


def _when(millis: Any) -> str:
    if not millis:
        return ""
    return _dt.datetime.fromtimestamp(int(millis) / 1000, _dt.timezone.utc).strftime("%Y-%m-%d %H:%M")


def _html(text: str) -> Any:
    from flask import Response

    return Response(text, mimetype="text/html")


_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:1.5rem;color:#1b1f23}table{border-collapse:collapse;"
    "margin:.5rem 0 1.5rem}td,th{border:1px solid #d0d7de;padding:.3rem .6rem;text-align:left;font-size:.9rem}"
    "th{background:#f6f8fa}.ok{color:#1a7f37;font-weight:600}.bad{color:#cf222e;font-weight:600}"
    "form label{margin-right:.8rem}nav a{margin-right:.8rem}"
)


def _page(title: str, body: str) -> str:
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; style-src 'unsafe-inline'; "
        "img-src data:; form-action 'self'\">"
        f"<title>{html.escape(title)} — mlflow-provenance</title><style>{_STYLE}</style></head>"
        f"<body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )
