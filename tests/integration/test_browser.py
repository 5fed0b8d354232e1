"""The provenance in a real browser (issue 6): headless Chromium (Debian's ``chromium``,
driven by Playwright's Python client through ``executable_path``) against a real
``mlflow server --app-name provenance`` on PostgreSQL with basic-auth.

Checks what a reviewer sees: the run page's provenance tags and datasets in MLflow's own
UI, the self-contained ``provenance/lineage.html`` artifact (no request leaves the page),
the model version page's gate decisions, and the provenance dashboard — filters, a model's
lineage and verification status, and the export button, whose bundle then verifies
offline. Screenshots go to ``test-screenshots/`` (or ``$PROVENANCE_SCREENSHOTS``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request
from base64 import b64encode
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.integration.test_server_app import ADMIN_PASSWORD, provenance_app_server

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SCREENSHOTS = Path(os.environ.get("PROVENANCE_SCREENSHOTS", ROOT / "test-screenshots"))

_CLIENT = r"""
import json, os, sys, importlib.util, warnings
warnings.simplefilter("ignore")
import mlflow
uri, root = sys.argv[1], sys.argv[2]
spec = importlib.util.spec_from_file_location("example", os.path.join(root, "plugin_examples", "train_classifier.py"))
example = importlib.util.module_from_spec(spec); spec.loader.exec_module(example)
ids = example.train(uri)
client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
client.set_registered_model_tag("wine-classifier", "owner", "ml-platform@example.com")
client.transition_model_version_stage("wine-classifier", "1", "Production")
run = client.get_run(ids["run_id"])
print(json.dumps({"run_id": ids["run_id"], "experiment_id": run.info.experiment_id}))
"""


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("Chromium is required in CI (.ci/run installs Debian's chromium)")
        pytest.skip("Debian's chromium is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield instance
        instance.close()


def _shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def _artifact(base: str, run_id: str, path: str, wait_s: float = 60) -> bytes:
    """A run artifact; the lineage page is written by the server in the background at run end."""
    import time

    deadline = time.monotonic() + wait_s
    while True:
        request = urllib.request.Request(f"{base}/get-artifact?path={path}&run_uuid={run_id}")
        request.add_header("Authorization", "Basic " + b64encode(f"admin:{ADMIN_PASSWORD}".encode()).decode())
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.read()
        except OSError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(1)


def test_reviewer_sees_provenance_in_mlflow_ui_lineage_artifact_and_dashboard(browser, postgres_uri, tmp_path, monkeypatch):
    with provenance_app_server(postgres_uri, tmp_path) as (base, log, _key):
        client_env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_PROVENANCE", "MLFLOW_TRACKING"))}
        client_env.update(MLFLOW_TRACKING_USERNAME="admin", MLFLOW_TRACKING_PASSWORD=ADMIN_PASSWORD)
        done = subprocess.run([sys.executable, "-c", _CLIENT, base, str(ROOT)], env=client_env, cwd=ROOT,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-4000:] + log.read_text()[-3000:]
        ids = json.loads(done.stdout.strip().splitlines()[-1])
        run_id, experiment_id = ids["run_id"], ids["experiment_id"]

        context = browser.new_context(http_credentials={"username": "admin", "password": ADMIN_PASSWORD},
                                      viewport={"width": 1400, "height": 1000}, accept_downloads=True)
        page = context.new_page()

        # 1. MLflow's run page: our tags and the recorded datasets.
        page.goto(f"{base}/#/experiments/{experiment_id}/runs/{run_id}")
        page.get_by_text("provenance.env.digest").first.wait_for(timeout=60_000)
        _shot(page, "01-run-page-tags-and-datasets")
        assert page.get_by_text("provenance.env.status").count() >= 1
        # MLflow's Datasets panel: our dataset, with our digest (its first 36 hex digits), the rest behind "+2".
        page.wait_for_function("document.body.innerText.includes('wine-raw (')", timeout=30_000)
        shown = page.evaluate("document.body.innerText")
        digest = shown.split("wine-raw (", 1)[1].split(")", 1)[0]
        assert len(digest) == 36 and all(c in "0123456789abcdef" for c in digest), digest

        # 2. The lineage artifact renders on its own: no request leaves the page.
        lineage = _artifact(base, run_id, "provenance/lineage.html").decode()
        requests: list[str] = []
        offline = context.new_page()
        offline.on("request", lambda r: requests.append(r.url))
        offline.set_content(lineage, wait_until="load")
        assert offline.locator("svg").count() >= 1
        for name in ("wine-raw", "wine-train", "wine-test"):
            assert offline.get_by_text(name).count() >= 1, name
        assert [u for u in requests if not u.startswith(("about:", "data:"))] == []
        _shot(offline, "02-lineage-artifact")

        # 3. The model version page in MLflow's UI shows the gate decision tag.
        page.goto(f"{base}/#/models/wine-classifier/versions/1")
        page.get_by_text("provenance.gate.production").first.wait_for(timeout=60_000)
        _shot(page, "03-model-version-gate-decision")

        # 4. The dashboard: filter, open the model, see lineage + verification, export a bundle.
        page.goto(f"{base}/provenance/?model=wine&owner=ml-platform")
        _shot(page, "04-dashboard-filtered")
        assert page.locator("#versions").get_by_text("wine-classifier v1").count() == 1, page.content()[:3000]
        page.goto(f"{base}/provenance/?experiment=wine-quality&from=2000-01-01")
        assert page.locator("#runs").get_by_text("sgd-wine").count() == 1
        page.goto(f"{base}/provenance/?to=2000-01-01")
        assert page.locator("#runs").get_by_text("no runs match").count() == 1
        page.goto(f"{base}/provenance/?model=no-such-model")
        assert page.locator("#versions").get_by_text("no model versions match").count() == 1
        page.goto(f"{base}/provenance/?model=wine")
        page.locator("#versions").get_by_text("wine-classifier v1").click()
        page.wait_for_load_state("load")
        _shot(page, "05-dashboard-model-lineage")
        page.wait_for_function("document.body.innerText.includes('wine-raw')", timeout=60_000)
        body = page.content()
        assert "sha256:" in body and "CC-BY-4.0" in body
        assert page.locator("[data-verification='ok']").count() >= 1 or "verified" in body.lower()
        _shot(page, "05-dashboard-model-lineage")
        with page.expect_download(timeout=60_000) as download:
            page.get_by_text("export bundle").click()
        bundle = tmp_path / "bundle.json"
        download.value.save_as(str(bundle))
        context.close()

    code, summary = run_cli("verify-bundle", str(bundle))
    assert code == 0, summary
