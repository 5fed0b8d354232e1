"""Lineage views and their renderings (text, JSON, Graphviz DOT, self-contained HTML).

The real lineage comes from one database per module: ``plugin_examples/train_classifier.py``
(wine-raw → train_test_split → wine-train / wine-test, one run, a logged model and version 1
of ``wine-classifier``) plus an ``owner`` tag and a gated Production promotion, so a signed
decision exists. Setting it up takes seconds, so it is built once (module scope, in its own
provenance home, as ``tests/adapters`` does) rather than through the per-test ``sqlite_uri``.

Hostile input — a dataset named ``<script>alert(1)</script>``, names with quotes, backslashes,
line breaks and terminal escapes, a parent cycle, a long derivation chain — uses small
hand-built graphs.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from mlflow_provenance.errors import ConfigurationError
from mlflow_provenance.exports import lineage_html, lineage_view
from mlflow_provenance.exports.lineage_view import UnknownDatasetError
from mlflow_provenance.lineage import LineageGraph, load_graph
from tests.conftest import inner_db_uri, isolated_env

pytestmark = [pytest.mark.filterwarnings("ignore::FutureWarning"),
              pytest.mark.filterwarnings("ignore:Hint. Inferred schema:UserWarning")]

ROOT = Path(__file__).resolve().parents[2]
TRAIN_SCRIPT = ROOT / "plugin_examples" / "train_classifier.py"
MODEL = "wine-classifier"
MODEL_URI = "models:/wine-classifier/1"
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
HOSTILE = "<script>alert(1)</script>"
DOT = shutil.which("dot")


# --- the real lineage ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Built:
    graph: LineageGraph
    snapshot: Any
    run_id: str
    digests: dict[str, str]  # dataset name → digest
    verification: dict[str, Any]  # what the dashboard passes to lineage_html.render


@functools.lru_cache(maxsize=1)
def _example() -> Any:
    spec = importlib.util.spec_from_file_location("plugin_examples_train_classifier_lineage", TRAIN_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _warm_environment_probes() -> None:
    """A process's first capture waits at most 5 s for its slowest probe, then records a partial
    manifest that the Production gate refuses; let the probes finish once."""
    from mlflow_provenance.environment import capture_environment

    deadline = time.monotonic() + 60
    while capture_environment().status != "complete" and time.monotonic() < deadline:
        time.sleep(0.5)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, migrated_sqlite_template: Path) -> Built:
    root = tmp_path_factory.mktemp("lineage")
    shutil.copyfile(migrated_sqlite_template, root / "mlflow.db")
    uri = f"provenance+sqlite:///{root}/mlflow.db"
    with isolated_env(root, quick_log_model=True):
        import mlflow

        from mlflow_provenance import config
        from mlflow_provenance.exports.snapshot import take_snapshot
        from mlflow_provenance.verify import Scope, verify_database

        _warm_environment_probes()
        ids = _example().train(uri)
        client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
        client.set_registered_model_tag(MODEL, "owner", "ml-platform@example.com")
        client.transition_model_version_stage(MODEL, ids["version"], "Production")
        engine = sa.create_engine(inner_db_uri(uri))
        try:
            with engine.connect() as conn:
                graph = load_graph(conn)
            snapshot = take_snapshot(engine, config.trusted_keyring(), model=(MODEL, "1"))
            report = verify_database(engine, config.trusted_keyring(),
                                     witness=config.read_witness(config.database_identity(engine.url)),
                                     scope=Scope(model=(MODEL, "1")))
        finally:
            engine.dispose()
    head = snapshot.events[-1]
    verification = {"ok": report.ok, "findings": [str(f) for f in report.findings], "checked_at": "2026-01-31T12:00:00Z",
                    "chain_head": {"seq": head["seq"], "hash": head["hash"]},
                    "checkpoint": {"size": snapshot.checkpoint["size"], "root": snapshot.checkpoint["root"]}}
    digests = {name: digest for digest, node in graph.datasets.items() for name in node.names}
    return Built(graph, snapshot, ids["run_id"], digests, verification)


@pytest.fixture
def upstream(built: Built) -> dict[str, Any]:
    return lineage_view.model_upstream(built.graph, built.snapshot)


@pytest.fixture
def downstream(built: Built) -> dict[str, Any]:
    return lineage_view.dataset_downstream(built.graph, built.digests["wine-raw"])


# --- views -----------------------------------------------------------------------------------------


def test_upstream_lists_the_training_and_evaluation_data_with_their_terms(upstream: dict[str, Any], built: Built) -> None:
    used = {e["name"]: e for e in upstream["datasets"]}
    assert set(used) == {"wine-raw", "wine-train", "wine-test"}
    assert used["wine-train"]["contexts"] == ["training"]
    assert used["wine-test"]["contexts"] == ["evaluation"]
    for name, entry in used.items():
        assert entry["digest"] == built.digests[name] and DIGEST.fullmatch(entry["digest"])
        assert entry["license"] == {"expression": "CC-BY-4.0", "kind": "spdx"}
        assert entry["source"] == "https://archive.ics.uci.edu/dataset/109/wine"
        assert entry["owner"] == "UCI Machine Learning Repository"
        assert entry["recorded"] is True


def test_upstream_traces_the_raw_ancestor_and_the_transformation_that_derived_each(upstream: dict[str, Any], built: Built) -> None:
    raw = built.digests["wine-raw"]
    assert [a["name"] for a in upstream["ancestors"]] == ["wine-raw"]
    assert upstream["ancestors"][0]["digest"] == raw and upstream["ancestors"][0]["parents"] == []
    for name in ("wine-train", "wine-test"):
        (entry,) = [e for e in upstream["datasets"] if e["name"] == name]
        assert entry["parents"] == [{"digest": raw, "name": "wine-raw"}]
        (step,) = entry["transformations"]
        assert step["name"] == "train_test_split"
        assert step["code"]["reference"].endswith(":train_test_split") and DIGEST.fullmatch(step["code"]["digest"])
        assert step["parameters"] == {"random_state": 7, "stratify": "target", "test_size": 0.25}


def test_upstream_names_the_version_run_environment_evaluation_and_gate_decision(upstream: dict[str, Any], built: Built) -> None:
    assert upstream["subject"] == MODEL_URI and upstream["direction"] == "upstream"
    assert upstream["model"]["stage"] == "Production" and upstream["model"]["aliases"] == ["candidate"]
    run = upstream["run"]
    assert (run["run_id"], run["name"], run["experiment"], run["status"]) == (built.run_id, "sgd-wine", "wine-quality", "FINISHED")
    assert run["params"]["epochs"] == "10" and run["params"]["loss"] == "log_loss"
    environment = upstream["environment"]
    assert environment["digest"] == built.snapshot.run["tags"]["provenance.env.digest"]
    assert environment["status"] == "complete" and environment["python"].startswith("CPython 3.")
    assert {"os", "gpu", "image", "git"} <= set(environment)
    (evaluation,) = upstream["evaluations"]
    assert evaluation["dataset"] == built.digests["wine-test"] and evaluation["dataset_name"] == "wine-test"
    assert evaluation["thresholds_met"] is True and evaluation["thresholds"]["test_final_accuracy"]["operator"] == ">="
    assert set(evaluation["metrics"]) == {"test_f1_macro", "test_final_accuracy"}
    (decision,) = upstream["decisions"]
    assert (decision["decision"], decision["target"], decision["target_kind"]) == ("allowed", "Production", "stage")
    assert DIGEST.fullmatch(decision["policy"]) and DIGEST.fullmatch(decision["record"])
    assert decision["actor"] and decision["time"]
    assert {m["uri"] for m in upstream["models"]} >= {MODEL_URI}
    assert upstream["checkpoint"]["size"] == built.snapshot.checkpoint["size"]


def test_downstream_of_the_raw_data_reaches_both_splits_the_run_and_the_model(downstream: dict[str, Any], built: Built) -> None:
    assert downstream["dataset"]["name"] == "wine-raw" and downstream["direction"] == "downstream"
    derived = {e["name"]: e for e in downstream["derived"]}
    assert set(derived) == {"wine-train", "wine-test"}
    for entry in derived.values():
        assert [t["name"] for t in entry["transformations"]] == ["train_test_split"]
        assert entry["parents"][0]["digest"] == built.digests["wine-raw"]
    (run,) = downstream["runs"]
    assert run["run_id"] == built.run_id
    assert {(d["name"], tuple(d["contexts"])) for d in run["datasets"]} == {
        ("wine-raw", ("source",)), ("wine-train", ("training",)), ("wine-test", ("evaluation",))}
    models = {m["uri"]: m for m in downstream["models"]}
    assert models[MODEL_URI]["kind"] == "model_version" and models[MODEL_URI]["run_id"] == built.run_id
    assert any(m["kind"] == "logged_model" for m in models.values())


def test_downstream_of_a_derived_dataset_does_not_climb_to_its_parent(built: Built) -> None:
    view = lineage_view.dataset_downstream(built.graph, built.digests["wine-train"])
    assert view["derived"] == []
    assert [n["label"] for n in view["graph"]["nodes"] if n["kind"] == "dataset"] == ["wine-train"]


def test_downstream_of_an_unknown_digest_says_so(built: Built) -> None:
    with pytest.raises(UnknownDatasetError, match="no dataset sha256:0+ in this ledger") as info:
        lineage_view.dataset_downstream(built.graph, "sha256:" + "0" * 64)
    assert isinstance(info.value, ConfigurationError)  # the CLI's exit 2: bad input, not tampering


def test_run_view_has_the_model_views_shape_without_model_or_decisions(built: Built, upstream: dict[str, Any]) -> None:
    view = lineage_html.run_view(built.graph, built.run_id, built.snapshot.documents())
    assert set(view) == set(upstream)
    assert view["model"] is None and view["decisions"] == [] and view["subject"] == f"runs:/{built.run_id}"
    assert view["datasets"] == upstream["datasets"] and view["ancestors"] == upstream["ancestors"]
    # no run description given: the environment is still found among the documents
    assert view["environment"]["digest"] == upstream["environment"]["digest"]
    (subject,) = [n for n in view["graph"]["nodes"] if n["subject"]]
    assert subject["id"] == f"run:{built.run_id}"


# --- text and JSON ---------------------------------------------------------------------------------------


def test_text_is_a_tree_of_the_lineage(upstream: dict[str, Any], downstream: dict[str, Any], built: Built) -> None:
    text = lineage_view.to_text(upstream)
    lines = text.splitlines()
    assert lines[0] == f"model version {MODEL_URI}"
    assert all(line[:4] in ("├── ", "└── ", "│   ", "    ") for line in lines[1:]), text
    for digest in built.digests.values():
        assert digest in text
    assert "train_test_split" in text and "license: CC-BY-4.0 (spdx)" in text
    assert re.search(r"wine-train \[training\] sha256:", text) and "thresholds met" in text
    assert re.search(r"allowed → stage Production at \S+ by ", text)
    down = lineage_view.to_text(downstream)
    assert down.splitlines()[0] == f"dataset wine-raw {built.digests['wine-raw']}"
    assert re.search(r"by train_test_split: wine-train sha256:", down)
    assert built.run_id in down and MODEL_URI in down


def test_json_round_trips_the_view(upstream: dict[str, Any], downstream: dict[str, Any]) -> None:
    for view in (upstream, downstream):
        assert json.loads(lineage_view.to_json(view)) == view
    parsed = json.loads(lineage_view.to_json(upstream))
    assert parsed["format"] == "mlflow-provenance/lineage-view/v1"
    assert {e["kind"] for e in parsed["graph"]["edges"]} == {"derived", "input", "output"}


# --- DOT -----------------------------------------------------------------------------------------------


_TOKEN = re.compile(r'\s*(?:(?P<string>"(?:[^"\\]|\\.)*")|(?P<arrow>->)|(?P<punct>[{}\[\];,=])|(?P<word>[A-Za-z_][\w.]*))', re.S)


def parse_dot(text: str) -> tuple[dict[str, dict[str, str]], list[tuple[str, str, dict[str, str]]]]:
    """A strict parser for the DOT subset ``to_dot`` writes: ``digraph ID { stmt; ... }`` with
    node, edge and default-attribute statements. Raises AssertionError on anything else."""
    tokens, position = [], 0
    while position < len(text.rstrip()):
        match = _TOKEN.match(text, position)
        assert match and match.end() > position, f"unexpected text at {position}: {text[position:position + 40]!r}"
        tokens.append((match.lastgroup, match.group(match.lastgroup)))
        position = match.end()
    assert tokens[:3] == [("word", "digraph"), ("word", "lineage"), ("punct", "{")] and tokens[-1] == ("punct", "}")
    nodes: dict[str, dict[str, str]] = {}
    edges: list[tuple[str, str, dict[str, str]]] = []
    statement: list[tuple[str, str]] = []
    for token in tokens[3:-1]:
        if token != ("punct", ";"):
            statement.append(token)
            continue
        head, attributes = _split_attributes(statement)
        if len(head) == 1 and head[0][0] == "word":
            assert head[0][1] in ("graph", "node", "edge"), head
        elif len(head) == 1:
            nodes[_unquote(head[0][1])] = attributes
        else:
            assert [kind for kind, _ in head] == ["string", "arrow", "string"], head
            edges.append((_unquote(head[0][1]), _unquote(head[2][1]), attributes))
        statement = []
    assert not statement, "statement without ';'"
    return nodes, edges


def _split_attributes(statement: list[tuple[str, str]]) -> tuple[list[tuple[str, str]], dict[str, str]]:
    if ("punct", "[") not in statement:
        return statement, {}
    start = statement.index(("punct", "["))
    assert statement[-1] == ("punct", "]"), statement
    body, attributes = statement[start + 1:-1], {}
    for i in range(0, len(body), 4):
        key, equals, value = body[i:i + 3]
        assert key[0] == "word" and equals == ("punct", "=") and value[0] == "string", body[i:i + 4]
        assert i + 3 >= len(body) or body[i + 3] == ("punct", ","), body
        attributes[key[1]] = _unquote(value[1])
    return statement[:start], attributes


def _unquote(token: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n", '"': '"', "\\": "\\"}.get(m.group(1), "\\" + m.group(1)), token[1:-1])


def _render_with_graphviz(dot: str) -> str:
    done = subprocess.run([DOT, "-Tsvg"], input=dot, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr
    return done.stdout


def test_dot_draws_datasets_run_and_models_with_labelled_edges(upstream: dict[str, Any], built: Built) -> None:
    nodes, edges = parse_dot(lineage_view.to_dot(upstream))
    raw, train, test = (f"dataset:{built.digests[n]}" for n in ("wine-raw", "wine-train", "wine-test"))
    run, model = f"run:{built.run_id}", f"model:{MODEL_URI}"
    assert len(nodes) == 6 and len(edges) == 7  # 3 datasets, the run, 2 models; 2 derived, 3 inputs, 2 outputs
    assert {nodes[d]["shape"] for d in (raw, train, test)} == {"cylinder"}
    assert nodes[run]["shape"] == "ellipse" and nodes[model]["shape"] == "box3d" and nodes[model]["penwidth"]
    assert nodes[raw]["label"].startswith("wine-raw\nsha256:") and nodes[raw]["tooltip"] == built.digests["wine-raw"]
    labelled = {(s, t): a["label"] for s, t, a in edges}
    assert labelled[(raw, train)] == labelled[(raw, test)] == "train_test_split"
    assert (labelled[(train, run)], labelled[(test, run)], labelled[(raw, run)]) == ("training", "evaluation", "source")
    assert labelled[(run, model)] == "registered"


def test_graphviz_renders_both_directions(upstream: dict[str, Any], downstream: dict[str, Any]) -> None:
    if DOT is None:
        if os.environ.get("CI"):
            pytest.fail("Graphviz `dot` is required in CI (.ci/run installs Debian's graphviz)")
        pytest.skip("Graphviz `dot` is not installed (the DOT is still parsed strictly above)")
    for view in (upstream, downstream):
        out = _render_with_graphviz(lineage_view.to_dot(view))
        assert out.count('class="node"') == len(view["graph"]["nodes"])
        assert out.count('class="edge"') == len(view["graph"]["edges"])


def test_dot_escapes_quotes_backslashes_and_line_breaks() -> None:
    name = 'evil" -> "x" [label="pwned"]; \\ \n<b>&'
    view = lineage_view.run_view(_graph([(name, _d(1), [], [])], used=[_d(1)]), "run-1", {})
    dot = lineage_view.to_dot(view)
    nodes, edges = parse_dot(dot)
    assert len(nodes) == 2 and len(edges) == 1
    assert nodes[f"dataset:{_d(1)}"]["label"] == f"{name}\n{_d(1)[:23]}…"  # the name survives, whole
    if DOT:
        assert _render_with_graphviz(dot).count('class="node"') == 2


# --- HTML ----------------------------------------------------------------------------------------------

#: Inside a tag (text cannot hold "<": it is escaped), any way to make the browser fetch or run something.
_EXTERNAL = [
    re.compile(r"""<[^>]*\s(?:src|href|xlink:href|action|formaction|poster|data|srcset)\s*=\s*(?:"(?!#)|'(?!#)|(?!["'#]))""", re.I),
    re.compile(r"<[^>]*\son[a-z]+\s*=", re.I),  # event handlers
    re.compile(r"<\s*(?:script|link|iframe|frame|object|embed|img|image|use|base|form|audio|video|source)\b", re.I),
    re.compile(r"@import|url\(|https?://[^\s\"'<]*\.(?:js|css|woff2?|png|svg)\b", re.I),
]


def assert_self_contained(page: str) -> None:
    for pattern in _EXTERNAL:
        assert not pattern.search(page), (pattern.pattern, pattern.search(page))
    csp = re.findall(r'<meta http-equiv="Content-Security-Policy" content="([^"]*)">', page)
    assert csp == ["default-src &#x27;none&#x27;; style-src &#x27;unsafe-inline&#x27;; img-src data:"]
    assert page.count("<body>") == 1  # the dashboard inserts its navigation after it


def test_html_of_the_model_is_self_contained_and_shows_its_evidence(upstream: dict[str, Any], built: Built) -> None:
    page = lineage_html.render(upstream, built.verification)
    assert_self_contained(page)
    assert built.verification["ok"] is True, built.verification
    assert 'data-verification="ok"' in page and 'class="status ok"' in page and 'class="status failed"' not in page
    for digest in [*built.digests.values(), upstream["environment"]["digest"], upstream["decisions"][0]["policy"],
                   built.verification["chain_head"]["hash"], built.verification["checkpoint"]["root"]]:
        assert digest in page, digest
    for text in ("wine-raw", "wine-train", "wine-test", "train_test_split", "CC-BY-4.0", "UCI Machine Learning Repository",
                 "https://archive.ics.uci.edu/dataset/109/wine", "Production", "sgd-wine", upstream["environment"]["python"]):
        assert text in page, text
    assert page.count("<svg") == 1 and "</svg>" in page


def test_html_graph_runs_from_source_data_through_the_transformation_to_run_and_models(upstream: dict[str, Any]) -> None:
    drawing = lineage_html.svg(upstream["graph"])
    x = {}
    for kind, label, coordinate in re.findall(r'<g><title>(\w+): ([^<]*?)(?: sha256:\S+| [0-9a-f]{32}| models:/\S+| m-\S+)?</title>'
                                             r'<\w+ class="[^"]*" (?:x|cx|points)="([\d.]+)', drawing):
        x[label] = float(coordinate)
    assert x["wine-raw"] < x["train_test_split"] < x["wine-train"] == x["wine-test"] < x["run sgd-wine"]
    assert x["run sgd-wine"] < x["wine-classifier v1"] == x["logged model"]
    # 3 derived arrows through the one shared transformation, 3 inputs, 2 outputs
    assert drawing.count('<path class="edge') == 8 and drawing.count("<polygon fill=") == 8


def test_html_shows_a_failed_verification_in_red_with_its_findings(upstream: dict[str, Any], built: Built) -> None:
    failed = {**built.verification, "ok": False, "findings": ["[state] runs.status edited <b>behind</b> the ledger"]}
    page = lineage_html.render(upstream, failed)
    assert 'data-verification="failed"' in page and 'class="status failed"' in page
    assert 'data-verification="ok"' not in page
    assert "Verification FAILED: 1 finding(s)" in page and "edited &lt;b&gt;behind&lt;/b&gt; the ledger" in page
    assert re.search(r"\.status\.failed\{[^}]*#dc2626", page)  # red


@pytest.mark.parametrize("verification", [
    {"ok": True, "findings": ["[hash] event 3 altered"]},  # inconsistent: fail closed
    {"ok": "true", "findings": []},  # not the boolean True
    {},  # no result at all
], ids=["ok-with-findings", "ok-not-boolean", "missing"])
def test_html_fails_closed_on_anything_but_a_clean_result(upstream: dict[str, Any], verification: dict[str, Any]) -> None:
    page = lineage_html.render(upstream, verification)
    assert 'data-verification="failed"' in page and 'data-verification="ok"' not in page


def test_html_escapes_a_hostile_dataset_name_everywhere() -> None:
    steps = [{"name": f"clean{HOSTILE}", "code": {"reference": f"m:{HOSTILE}"}, "parameters": {"p": HOSTILE}}]
    graph = _graph([(HOSTILE, _d(1), [], []), (f"derived{HOSTILE}", _d(2), [_d(1)], steps)], used=[_d(2)],
                   source='javascript:alert(1)" onmouseover="alert(2)')
    view = lineage_view.run_view(graph, "run-1", {})
    page = lineage_html.render(view, {"ok": True, "findings": []})
    assert_self_contained(page)
    assert "<script" not in page.lower() and "alert(1)</" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert 'onmouseover="' not in page and "onmouseover=&quot;alert(2)" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in lineage_html.svg(view["graph"])  # in the drawing too


def test_text_escapes_terminal_controls_and_bidi_overrides() -> None:
    name = "wine\x1b[2J\u202enaïve\nline"
    view = lineage_view.run_view(_graph([(name, _d(1), [], [])], used=[_d(1)]), "run-1", {})
    text = lineage_view.to_text(view)
    assert "\x1b" not in text and "\u202e" not in text and "\\u001b[2J\\u202enaïve\\u000aline" in text
    assert all(line[:4] in ("├── ", "└── ", "│   ", "    ") for line in text.splitlines()[1:])
    assert "\x1b" not in lineage_view.to_json(view) and "\\u001b" in lineage_view.to_json(view)


_CYCLE = """
from mlflow_provenance.exports import lineage_html, lineage_view
from tests.exports.test_lineage_view import _d, _graph
graph = _graph([("a", _d(1), [_d(2)], []), ("b", _d(2), [_d(1)], [])], used=[_d(1)])
view = lineage_view.run_view(graph, "run-1", {})
text = lineage_view.to_text(view)
assert text.count("(shown above)") == 1, text
assert lineage_view.to_dot(view) and lineage_view.to_json(view)
assert "<svg" in lineage_html.render(view, {"ok": True, "findings": []})
"""


def test_a_parent_cycle_renders_each_dataset_once_and_stops() -> None:
    """Two records naming each other as parent (forged, or two writers racing). Run in a child
    process with a memory cap and a deadline, so a renderer that loops fails instead of hanging."""
    import resource
    import sys

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))

    done = subprocess.run([sys.executable, "-c", _CYCLE], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          preexec_fn=cap)
    assert done.returncode == 0, done.stderr[-3000:]


def test_a_long_derivation_chain_renders_without_recursing() -> None:
    chain = _graph([(f"step-{i}", _d(i), [_d(i - 1)] if i > 1 else [], ["derive"]) for i in range(1, 1501)],
                   used=[_d(1500)])
    view = lineage_view.run_view(chain, "run-1", {})
    assert len(view["ancestors"]) == 1499
    assert lineage_view.to_text(view).count("derived from 1 dataset(s) by:") == 1499
    assert len(parse_dot(lineage_view.to_dot(view))[1]) == 1500
    assert lineage_html.render(view, {"ok": True, "findings": []}).count("<polygon class=\"transformation") == 1499


def test_html_puts_every_run_in_one_column_and_routes_long_edges_around_boxes() -> None:
    """raw is read by run-a directly; clean (raw → dedupe) by run-b: both runs share a column
    right of every dataset, and the raw → run-a edge passes through a waypoint per column."""
    graph = _graph([("raw", _d(1), [], []), ("clean", _d(2), [_d(1)], ["dedupe"])], used=[_d(1)], run="run-a")
    graph.node(_d(2)).runs["run-b"] = {"training"}
    graph.run_datasets["run-b"] = {_d(2)}
    view = lineage_view.dataset_downstream(graph, _d(1))
    drawing = lineage_html.svg(view["graph"])
    x = {label: float(v) for label, v in re.findall(r'<title>\w+: (\S+)[^<]*</title><\w+ class="[^"]*" (?:x|cx|points)="([\d.]+)', drawing)}
    assert x["raw"] < x["dedupe"] < x["clean"] < x["run"]
    assert drawing.count("<ellipse") == 2 and len(set(re.findall(r'<ellipse[^>]* cx="([\d.]+)"', drawing))) == 1
    assert drawing.count(" L") == 2  # raw (column 0) → run-a (column 3): a waypoint in columns 1 and 2


# --- hand-built graphs -----------------------------------------------------------------------------------


def _d(number: int) -> str:
    return f"sha256:{number:064x}"


def _graph(datasets: list[tuple[str, str, list[str], list[Any]]], *, used: list[str], run: str = "run-1",
           source: str = "s3://bucket/data") -> LineageGraph:
    """A lineage of ``(name, digest, parents, transformations)`` whose ``used`` datasets ``run`` read."""
    graph = LineageGraph()
    for name, digest, parents, steps in datasets:
        node = graph.node(digest)
        node.names.add(name)
        node.records.append({"name": name, "digest": digest, "license": {"expression": "MIT", "kind": "spdx"},
                             "source": source, "owner": "team", "parents": parents,
                             "transformations": [s if isinstance(s, dict) else {"name": s, "parameters": {}} for s in steps]})
        for parent in parents:
            node.parents.add(parent)
            graph.node(parent).children.add(digest)
    for digest in used:
        graph.node(digest).runs.setdefault(run, set()).add("training")
        graph.run_datasets.setdefault(run, set()).add(digest)
    return graph
