"""``mlflow-provenance``: a thin command line over the core and the adapters.

Exit codes (DESIGN.md §7): 0 intact/complete, 1 integrity failure/incomplete, 2 usage
or configuration error. Only :class:`ProvenanceError` is caught; its message says what to do.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Sequence

from mlflow_provenance import config
from mlflow_provenance.errors import ConfigurationError, ProvenanceError

EXIT_OK, EXIT_INTEGRITY, EXIT_USAGE = 0, 1, 2


def _engine_for(tracking_uri: str | None):
    import sqlalchemy as sa

    from mlflow_provenance.uri import inner_uri

    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        raise ConfigurationError(
            "No tracking URI: pass --tracking-uri provenance+sqlite:///mlflow.db (or set MLFLOW_TRACKING_URI)."
        )
    db_uri = inner_uri(uri) if uri.startswith("provenance+") else inner_uri("provenance+" + uri)
    if db_uri.startswith("sqlite:///"):
        path = db_uri[len("sqlite:///") :].split("?", 1)[0]
        if path and path != ":memory:" and not Path(path).exists():
            raise ConfigurationError(f"No database at {path}: check --tracking-uri.")
    return sa.create_engine(db_uri)


def _cmd_verify(args: argparse.Namespace) -> int:
    from mlflow_provenance.verify import Scope, read_snapshot, verify_database

    model = None
    if args.model:
        name, sep, version = args.model.rpartition("/")
        if not sep or not name or not version:
            raise ConfigurationError(f"--model takes NAME/VERSION, got {args.model!r}.")
        model = (name, version)
    engine = _engine_for(args.tracking_uri)
    keyring = config.trusted_keyring()
    with engine.connect() as conn, read_snapshot(conn):
        database = config.database_identity(engine.url)
        witness = config.read_witness(database)
        report = verify_database(conn, keyring, witness=witness, scope=Scope(args.run_id, model))
    if report.ok and report.latest_checkpoint:
        cp = report.latest_checkpoint
        config.write_witness(database, report.origin, cp["size"], cp["root"], cp["note"])
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, default=str))
    else:
        print(report.summary())
    return EXIT_OK if report.ok else EXIT_INTEGRITY


def _parse_model_uri(text: str) -> tuple[str, str | None, str | None]:
    """``models:/NAME/VERSION`` or ``models:/NAME@ALIAS`` → (name, version, alias)."""
    if not text.startswith("models:/"):
        raise ConfigurationError(f"expected models:/NAME/VERSION or models:/NAME@ALIAS, got {text!r}")
    rest = text[len("models:/"):]
    if "@" in rest:
        name, alias = rest.rsplit("@", 1)
        if name and alias:
            return name, None, alias
    name, sep, version = rest.rpartition("/")
    if not sep or not name or not version.isdigit():
        raise ConfigurationError(f"expected models:/NAME/VERSION or models:/NAME@ALIAS, got {text!r}")
    return name, version, None


def _cmd_check(args: argparse.Namespace) -> int:
    from mlflow_provenance import gate
    from mlflow_provenance.policy import STAGES, load_policy
    from mlflow_provenance.verify import Scope, read_snapshot, verify_database

    name, version, alias = _parse_model_uri(args.model_uri)
    policy = load_policy(args.policy or os.environ.get(config.ENV_POLICY) or None)
    kind, sep, target_name = args.target.partition(":")
    if not sep or kind not in ("stage", "alias"):
        target_name = args.target
        kind = "stage" if target_name.lower() in STAGES else "alias"
    target = policy.target(target_name, kind)
    if target is None:
        gated = ", ".join(f"{k}:{n}" for k, n in sorted(policy.targets)) or "none"
        raise ConfigurationError(f"target {args.target!r} is not gated by policy {policy.origin} (gated: {gated})")
    engine = _engine_for(args.tracking_uri)
    keyring = config.trusted_keyring()
    database = config.database_identity(engine.url)
    with engine.connect() as conn, read_snapshot(conn):
        if alias is not None:
            from mlflow_provenance.sql import query

            version = query(conn, "SELECT version FROM registered_model_aliases WHERE name = ? AND alias = ?",
                            name, alias).scalar()
            if version is None:
                raise ConfigurationError(f"model {name!r} has no alias {alias!r}")

        def integrity(run_id: str) -> list[str]:
            report = verify_database(conn, keyring, witness=config.read_witness(database), scope=Scope(run_id=run_id))
            return [str(f) for f in report.findings]

        result = gate.evaluate(conn, policy, target, name, str(version), integrity=integrity)
    if args.json:
        print(json.dumps({**result.to_dict(), "policy_origin": policy.origin}, indent=2, default=str))
    elif result.allowed:
        print(f"COMPLETE — model '{name}' version {version} meets {target.kind} '{target.name}' "
              f"(policy {policy.origin}, {policy.digest})")
        for requirement, evidence in result.evidence.items():
            print(f"  {requirement}: {evidence}")
    else:
        print(f"INCOMPLETE — {result.refusal()}")
    return EXIT_OK if result.allowed else EXIT_INTEGRITY


def _cmd_lineage(args: argparse.Namespace) -> int:
    from mlflow_provenance import ledger_schema
    from mlflow_provenance.exports import lineage_view
    from mlflow_provenance.exports.snapshot import take_snapshot
    from mlflow_provenance.lineage import load_graph

    if bool(args.model_uri) == bool(args.dataset):
        raise ConfigurationError("give either models:/NAME/VERSION (upstream) or --dataset DIGEST (downstream)")
    engine = _engine_for(args.tracking_uri)
    with engine.connect() as conn:
        if not ledger_schema.read_meta(conn):
            raise ConfigurationError("this database has no provenance ledger: nothing to trace")
        graph = load_graph(conn)
    if args.dataset:
        view = lineage_view.dataset_downstream(graph, args.dataset)
    else:
        name, version, alias = _parse_model_uri(args.model_uri)
        if alias is not None:
            raise ConfigurationError("lineage takes models:/NAME/VERSION")
        view = lineage_view.model_upstream(graph, take_snapshot(engine, config.trusted_keyring(), model=(name, version)))
    render = lineage_view.to_json if args.json else lineage_view.to_dot if args.dot else lineage_view.to_text
    print(render(view))
    return EXIT_OK


def _cmd_export(args: argparse.Namespace) -> int:
    from mlflow_provenance.adapters.exporting import export_model

    name, version, alias = _parse_model_uri(args.model_uri)
    if alias is not None:
        raise ConfigurationError("export takes models:/NAME/VERSION")
    content, _, _ = export_model(_engine_for(args.tracking_uri), name, version, args.format)
    out = Path(args.output)
    if out.exists() and not args.force:
        raise ConfigurationError(f"{out} exists: choose another -o path or pass --force")
    out.write_bytes(content)
    print(f"wrote {args.format} export of {name}/{version} to {out} ({len(content):,} bytes)")
    return EXIT_OK


def _cmd_verify_bundle(args: argparse.Namespace) -> int:
    from mlflow_provenance.exports.offline import verify_bundle

    trusted = list(args.trusted_key or [])
    if args.keyring:
        from mlflow_provenance.keys import load_keyring

        trusted += [entry.public_key.vkey() for entry in load_keyring(Path(args.keyring)).entries]
    report = verify_bundle(Path(args.path), trusted_keys=trusted or None)
    print(json.dumps(report.to_dict(), indent=2, default=str) if args.json else report.summary())
    return EXIT_OK if report.ok else EXIT_INTEGRITY


def _cmd_keygen(args: argparse.Namespace) -> int:
    from mlflow_provenance.keys import generate_signing_key, write_signing_key

    key = generate_signing_key(args.name)
    write_signing_key(key, Path(args.out))
    print(f"wrote private key {args.out} (mode 0600)")
    print(f"key id:  {key.public_key.key_id}")
    print(f"public:  {key.public_key.vkey()}")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlflow-provenance", description="Verify and inspect MLflow provenance ledgers."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    verify = sub.add_parser("verify", help="check a ledger against the MLflow database")
    verify.add_argument("--tracking-uri", help="provenance+<database URI> (default: $MLFLOW_TRACKING_URI)")
    target = verify.add_mutually_exclusive_group()
    target.add_argument("--run-id", help="compare only this run's rows (chains are always checked whole)")
    target.add_argument("--model", metavar="NAME/VERSION", help="compare only this model version and its run")
    verify.add_argument("--json", action="store_true", help="machine-readable report")
    verify.set_defaults(func=_cmd_verify)

    check = sub.add_parser("check", help="is a model version's provenance complete for a target? (for CI)")
    check.add_argument("model_uri", metavar="models:/NAME/VERSION", help="or models:/NAME@ALIAS")
    check.add_argument("--target", default="Production", help="gated stage or alias (default Production); "
                       "stage:NAME or alias:NAME when a name is both")
    check.add_argument("--policy", help="policy YAML (default: $MLFLOW_PROVENANCE_POLICY, else built-in)")
    check.add_argument("--tracking-uri", help="provenance+<database URI> (default: $MLFLOW_TRACKING_URI)")
    check.add_argument("--json", action="store_true", help="machine-readable verdict")
    check.set_defaults(func=_cmd_check)

    lineage = sub.add_parser("lineage", help="upstream lineage of a model version, or downstream of a dataset")
    lineage.add_argument("model_uri", nargs="?", metavar="models:/NAME/VERSION")
    lineage.add_argument("--dataset", metavar="DIGEST", help="sha256:… of a dataset: everything derived from it")
    lineage.add_argument("--tracking-uri", help="provenance+<database URI> (default: $MLFLOW_TRACKING_URI)")
    shape = lineage.add_mutually_exclusive_group()
    shape.add_argument("--json", action="store_true", help="machine-readable")
    shape.add_argument("--dot", action="store_true", help="Graphviz DOT")
    lineage.set_defaults(func=_cmd_lineage)

    export = sub.add_parser("export", help="export a model version's provenance for auditors")
    export.add_argument("model_uri", metavar="models:/NAME/VERSION")
    export.add_argument("--format", required=True, choices=["bundle", "prov-json", "prov-o", "slsa", "openlineage"])
    export.add_argument("-o", "--output", required=True, help="file to write")
    export.add_argument("--force", action="store_true", help="overwrite an existing file")
    export.add_argument("--tracking-uri", help="provenance+<database URI> (default: $MLFLOW_TRACKING_URI)")
    export.set_defaults(func=_cmd_export)

    bundle = sub.add_parser("verify-bundle", help="check an exported bundle offline, with nothing else")
    bundle.add_argument("path")
    bundle.add_argument("--trusted-key", action="append", metavar="VKEY", help="only trust this verifier key (repeatable)")
    bundle.add_argument("--keyring", help="only trust the keys of this keyring file")
    bundle.add_argument("--json", action="store_true", help="machine-readable report")
    bundle.set_defaults(func=_cmd_verify_bundle)

    keygen = sub.add_parser("keygen", help="create an Ed25519 signing key")
    keygen.add_argument("--out", required=True, help="path of the new private key file (mode 0600)")
    keygen.add_argument("--name", default="mlflow-provenance", help="key name in signed notes")
    keygen.set_defaults(func=_cmd_keygen)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: 0 for --help, 2 for usage errors
        return int(exc.code or 0)
    try:
        return args.func(args)
    except ProvenanceError as exc:
        print(f"mlflow-provenance: error: {exc.diagnostics()}", file=sys.stderr)
        return EXIT_USAGE if isinstance(exc, ConfigurationError) else EXIT_INTEGRITY
    except (OSError, ImportError) as exc:
        print(f"mlflow-provenance: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:  # noqa: BLE001 - boundary: a crash is not an integrity verdict
        import sqlalchemy.exc

        if not isinstance(exc, sqlalchemy.exc.SQLAlchemyError):
            raise
        print(f"mlflow-provenance: error: cannot read the database: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
