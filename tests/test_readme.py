"""The README's examples run, and its commands are the ones CI uses."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def test_python_examples_run_and_verify(verify, migrated_sqlite_template, tmp_path):
    import shutil

    shutil.copyfile(migrated_sqlite_template, tmp_path / "mlflow.db")  # cwd is tmp_path
    blocks = _blocks("python")
    assert blocks, "README has no python example"
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})
    code, report = verify("provenance+sqlite:///mlflow.db")
    assert code == 0, report["findings"]
    assert report["runs"] == sum("start_run" in block for block in blocks) and report["events"] >= 4


def test_ci_runs_the_readme_test_command():
    commands = [line for block in _blocks("bash") for line in block.splitlines() if "pytest" in line]
    assert commands, "README gives no test command"
    test_command = commands[0].split("&&")[-1].strip()
    ci = (ROOT / ".ci" / "run").read_text()
    assert test_command.replace("python ", "python3 ") in ci or test_command in ci
    install = commands[0].split("&&")[0].strip().replace("pip install", "pip install --quiet --disable-pip-version-check")
    assert install.split('"')[1] in ci  # same extras
