"""The collector: probes that fail or overrun, caching, re-probing packages, the invocation section."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import pytest

from mlflow_provenance.environment import code, container, gpu, invocation, packages, system
from mlflow_provenance.environment.collector import Collector
from mlflow_provenance.environment.manifest import SCHEMA_ID, validate
from mlflow_provenance.environment.redaction import REDACTED

STATIC = ("python", "os", "hardware", "gpu", "container")

STUB_OS = {
    "name": "Linux", "release": "6.0-stub", "kernel": "#1 SMP", "architecture": "x86_64",
    "libc": {"name": "glibc", "version": "2.36"}, "hostname": "stub-host",
}
STUB_HARDWARE = {"cpu": {"logical_cores": 4}, "memory": {"total_bytes": 1 << 30}}
STUB_GPU = {"available": False, "reason": "no NVIDIA driver: stub"}
STUB_CONTAINER = {"in_container": False, "markers": [], "api": {"used": False, "reason": "stub"}}
STUB_DISTS = [{"name": "stubpkg", "version": "1.0", "editable": False, "local": False, "modified": None}]


@pytest.fixture(autouse=True)
def no_recorded_seeds(monkeypatch: pytest.MonkeyPatch) -> None:
    """``record_seed`` state is process-wide: every test starts and ends without seeds."""
    monkeypatch.setattr(invocation, "_seeds", {})


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Counter:
    """Counts calls of each probe function; the real functions still answer."""
    counter: Counter = Counter()

    def counting(module: Any, attribute: str, label: str) -> None:
        real = getattr(module, attribute)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            counter[label] += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(module, attribute, wrapper)

    counting(packages, "distributions", "python")
    counting(system, "os_info", "os")
    counting(system, "hardware_info", "hardware")
    counting(gpu, "gpu_info", "gpu")
    counting(container, "container_info", "container")
    counting(invocation, "invocation_info", "invocation")
    counting(code, "git_info", "code")
    return counter


@pytest.fixture
def stub_probes(monkeypatch: pytest.MonkeyPatch) -> Counter:
    """Fast, fixed answers from every static probe (so deadlines measure only what a test adds)."""
    counter: Counter = Counter()

    def stub(module: Any, attribute: str, label: str, answer: Callable[[], Any]) -> None:
        def fake(*args: Any, **kwargs: Any) -> Any:
            counter[label] += 1
            return answer()

        monkeypatch.setattr(module, attribute, fake)

    stub(packages, "distributions", "python", lambda: [dict(d) for d in STUB_DISTS])
    stub(system, "os_info", "os", lambda: dict(STUB_OS))
    stub(system, "hardware_info", "hardware", lambda: dict(STUB_HARDWARE))
    stub(gpu, "gpu_info", "gpu", lambda: (dict(STUB_GPU), []))
    stub(container, "container_info", "container", lambda: dict(STUB_CONTAINER))
    monkeypatch.setattr(packages, "site_directories_signature", lambda: (("/stub/site-packages", 1.0),))
    return counter


def errors_of(document: dict[str, Any], probe: str) -> list[dict[str, Any]]:
    return [e for e in document["capture"]["errors"] if e.get("probe") == probe]


# --- a full capture ------------------------------------------------------------------------------


def test_real_capture_is_complete_and_valid(tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    script.write_text("print('training')\n")
    m = Collector(argv=[str(script)]).capture(script=str(script))
    doc = m.document
    validate(doc)
    assert doc["$schema"] == SCHEMA_ID
    assert doc["schema_version"] == 1
    assert doc["captured_at"].endswith("Z")
    assert doc["capture"]["tool"] == "mlflow-provenance"
    assert doc["capture"]["cached"] == []  # nothing to reuse on a first capture
    assert doc["capture"]["duration_ms"] >= 0
    assert doc["capture"]["errors"] == [], doc["capture"]["errors"]
    assert m.status == "complete"
    for section in (*STATIC, "code", "invocation"):
        assert "error" not in doc[section], section
    assert doc["code"]["entry_point"]["kind"] == "script"
    assert doc["code"]["entry_point"]["path"] == str(script)
    assert doc["invocation"]["argv"] == [str(script)]
    assert doc["python"]["freeze"] == packages.freeze(doc["python"]["distributions"])


# --- probes that raise ---------------------------------------------------------------------------


def test_a_probe_that_raises_is_recorded_not_raised(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, calls: Counter
) -> None:
    real_os_info = system.os_info  # the counting wrapper from ``calls``

    def exploding(root: Path) -> dict[str, Any]:
        calls["exploding"] += 1
        raise RuntimeError("os probe exploded")

    monkeypatch.setattr(system, "os_info", exploding)
    collector = Collector()
    caplog.set_level(logging.WARNING)
    m = collector.capture()
    doc = m.document
    assert doc["os"] == {"error": "RuntimeError: os probe exploded"}
    assert errors_of(doc, "os") == [{"probe": "os", "error": "RuntimeError: os probe exploded"}]
    assert m.status == "partial"
    assert m.summary_tags()["provenance.env.status"] == "partial"
    assert "error" not in doc["hardware"]  # the other probes still answered
    validate(doc)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert any("probe os failed" in r.getMessage() and "os probe exploded" in r.getMessage() for r in warnings)

    # The next capture tries the failed probe again; the others come from the cache.
    monkeypatch.setattr(system, "os_info", real_os_info)
    second = collector.capture().document
    assert calls["exploding"] == 1
    assert calls["os"] == 1
    assert "error" not in second["os"]
    assert second["os"]["name"]
    assert errors_of(second, "os") == []
    assert "os" not in second["capture"]["cached"]
    assert {"python", "hardware", "gpu", "container"} <= set(second["capture"]["cached"])


@pytest.mark.parametrize("probe, module, attribute", [
    ("invocation", invocation, "invocation_info"),
    ("code", code, "git_info"),
])
def test_per_run_probe_that_raises_is_recorded(
    monkeypatch: pytest.MonkeyPatch, stub_probes: Counter, probe: str, module: Any, attribute: str
) -> None:
    def exploding(*args: Any, **kwargs: Any) -> Any:
        raise ValueError(f"{probe} exploded")

    monkeypatch.setattr(module, attribute, exploding)
    m = Collector(argv=["x.py"]).capture()
    assert m.document[probe] == {"error": f"ValueError: {probe} exploded"}
    assert errors_of(m.document, probe) == [{"probe": probe, "error": f"ValueError: {probe} exploded"}]
    assert m.status == "partial"
    validate(m.document)


def test_git_error_is_an_error_entry_but_keeps_the_code_section(
    monkeypatch: pytest.MonkeyPatch, stub_probes: Counter
) -> None:
    def failing_git(start: Any) -> dict[str, Any]:
        raise code.GitError("git log: fatal: bad object")

    monkeypatch.setattr(code, "git_info", failing_git)
    m = Collector(argv=["x.py"]).capture()
    assert m.document["code"]["git"] == {"available": False, "error": "git log: fatal: bad object"}
    assert errors_of(m.document, "code.git") == [{"probe": "code.git", "error": "git log: fatal: bad object"}]
    assert m.status == "partial"
    validate(m.document)


def test_capture_never_raises_even_when_the_machinery_fails(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken() -> tuple:
        raise OSError("sys.path unreadable")

    monkeypatch.setattr(packages, "site_directories_signature", broken)
    caplog.set_level(logging.WARNING)
    m = Collector().capture()
    assert errors_of(m.document, "capture") == [{"probe": "capture", "error": "OSError: sys.path unreadable"}]
    assert m.status == "partial"
    assert m.digest.startswith("sha256:")
    assert any("sys.path unreadable" in r.getMessage() for r in caplog.records)


def test_probe_field_errors_from_gpu_are_kept(monkeypatch: pytest.MonkeyPatch, stub_probes: Counter) -> None:
    entry = {"probe": "gpu", "field": "devices/0/mig_mode", "error": "NVMLError: unknown"}
    section = {"available": True, "driver_version": "550", "cuda_driver_version": "12.4", "count": 0, "devices": []}
    monkeypatch.setattr(gpu, "gpu_info", lambda nvml: (dict(section), [dict(entry)]))
    m = Collector().capture()
    assert m.document["gpu"] == section
    assert errors_of(m.document, "gpu") == [entry]
    assert m.status == "partial"
    validate(m.document)


# --- caching ---------------------------------------------------------------------------------------


def test_static_probes_are_cached_and_per_run_sections_recomputed(
    monkeypatch: pytest.MonkeyPatch, calls: Counter, tmp_path: Path
) -> None:
    monkeypatch.setattr(packages, "site_directories_signature", lambda: (("/fixed/site-packages", 1.0),))
    script = tmp_path / "train.py"
    script.write_text("version = 1\n")
    collector = Collector(argv=[str(script)], environ={"PATH": "/usr/bin"})

    first = collector.capture(script=str(script))
    assert first.document["capture"]["cached"] == []
    assert all(calls[name] == 1 for name in STATIC), calls

    invocation.record_seed("numpy", 42)
    script.write_text("version = 2\n")
    second = collector.capture(script=str(script))
    doc = second.document
    assert doc["capture"]["cached"] == sorted(STATIC)
    assert all(calls[name] == 1 for name in STATIC), calls  # not probed again
    for name in STATIC:
        assert doc[name] == first.document[name], name
    # code and invocation are read for every capture
    assert calls["invocation"] == 2
    assert calls["code"] == 2
    assert "api:numpy" not in first.document["invocation"]["seeds"]
    assert doc["invocation"]["seeds"]["api:numpy"] == 42
    assert doc["code"]["entry_point"]["sha256"] != first.document["code"]["entry_point"]["sha256"]
    assert second.digest != first.digest
    validate(doc)


def test_changed_site_directories_make_the_python_probe_run_again(
    monkeypatch: pytest.MonkeyPatch, stub_probes: Counter
) -> None:
    signature = [(("/env/site-packages", 100.0),)]
    monkeypatch.setattr(packages, "site_directories_signature", lambda: signature[0])
    collector = Collector()
    collector.capture()
    assert stub_probes["python"] == 1

    signature[0] = (("/env/site-packages", 200.0),)  # something was installed
    second = collector.capture().document
    assert stub_probes["python"] == 2
    assert "python" not in second["capture"]["cached"]
    assert second["capture"]["cached"] == sorted(set(STATIC) - {"python"})
    assert all(stub_probes[name] == 1 for name in ("os", "hardware", "gpu", "container"))

    third = collector.capture().document  # unchanged since: cached again
    assert stub_probes["python"] == 2
    assert third["capture"]["cached"] == sorted(STATIC)


def test_python_section_has_interpreter_distributions_and_freeze(stub_probes: Counter) -> None:
    doc = Collector().capture().document
    assert doc["python"]["distributions"] == STUB_DISTS
    assert doc["python"]["freeze"] == ["stubpkg==1.0"]
    assert doc["python"]["executable"] == packages.python_info()["executable"]


# --- deadlines -----------------------------------------------------------------------------------


def test_a_slow_probe_does_not_hold_up_the_capture(
    monkeypatch: pytest.MonkeyPatch, stub_probes: Counter
) -> None:
    finished = threading.Event()

    def slow_os(root: Path) -> dict[str, Any]:
        time.sleep(1.0)
        finished.set()
        return {**STUB_OS, "hostname": "slow-host"}

    monkeypatch.setattr(system, "os_info", slow_os)
    collector = Collector(argv=["x.py"], deadline_s=0.2)

    started = time.perf_counter()
    first = collector.capture().document
    elapsed = time.perf_counter() - started
    assert elapsed < 0.8, f"first capture took {elapsed:.2f} s with a 0.2 s deadline"
    assert not finished.is_set()
    assert "did not finish" in first["os"]["error"]
    assert [e["probe"] for e in first["capture"]["errors"]] == ["os"]
    assert "did not finish" in errors_of(first, "os")[0]["error"]
    assert first["hardware"] == STUB_HARDWARE  # the fast probes made it
    validate(first)

    started = time.perf_counter()
    second = collector.capture().document  # right away: the slow probe is still running
    assert time.perf_counter() - started < 0.6
    if not finished.is_set():
        assert "did not finish" in second["os"]["error"]

    assert finished.wait(5.0)
    deadline = time.monotonic() + 5.0
    while True:  # the probe's future completes just after it returns
        later = collector.capture().document
        if "error" not in later["os"] or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert later["os"]["hostname"] == "slow-host"
    assert errors_of(later, "os") == []
    assert "os" in later["capture"]["cached"]
    assert stub_probes["os"] == 0  # the slow probe replaced the stub; it ran once
    validate(later)


def test_an_overdue_probe_is_not_waited_for_a_second_time(
    monkeypatch: pytest.MonkeyPatch, stub_probes: Counter
) -> None:
    release = threading.Event()
    runs = Counter()

    def blocked_gpu(nvml: Any) -> tuple[dict[str, Any], list]:
        runs["gpu"] += 1
        release.wait(30)
        return {"available": False, "reason": "no NVIDIA driver: released"}, []

    monkeypatch.setattr(gpu, "gpu_info", blocked_gpu)
    collector = Collector(argv=["x.py"], deadline_s=1.2)
    try:
        started = time.perf_counter()
        first = collector.capture().document
        waited = time.perf_counter() - started
        assert 1.1 <= waited < 4.0, waited  # waited out its deadline once
        assert "did not finish" in first["gpu"]["error"]

        started = time.perf_counter()
        second = collector.capture().document
        again = time.perf_counter() - started
        assert again < 0.4, f"second capture waited {again:.2f} s for a probe that already overran"
        assert "did not finish" in second["gpu"]["error"]
        assert runs["gpu"] == 1  # still the same, running probe
    finally:
        release.set()

    deadline = time.monotonic() + 5.0
    while True:
        later = collector.capture().document
        if "error" not in later["gpu"] or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert later["gpu"] == {"available": False, "reason": "no NVIDIA driver: released"}
    assert errors_of(later, "gpu") == []
    assert runs["gpu"] == 1
    assert later["capture"]["cached"] == sorted(STATIC)


def test_overrun_message_states_the_deadline(monkeypatch: pytest.MonkeyPatch, stub_probes: Counter) -> None:
    release = threading.Event()

    def blocked_os(root: Path) -> dict[str, Any]:
        release.wait(10)
        return dict(STUB_OS)

    monkeypatch.setattr(system, "os_info", blocked_os)
    try:
        doc = Collector(argv=["x.py"], deadline_s=0.2).capture().document
    finally:
        release.set()
    assert "0.2 s" in doc["os"]["error"]


# --- invocation ----------------------------------------------------------------------------------


def test_invocation_records_seeds_distributed_settings_and_redacts_secrets(stub_probes: Counter) -> None:
    environ = {
        "PATH": "/usr/bin",
        "PYTHONHASHSEED": "0",
        "CUBLAS_WORKSPACE_CONFIG": ":4096:8",
        "WORLD_SIZE": "8",
        "RANK": "3",
        "SLURM_JOB_ID": "4242",
        "OMPI_COMM_WORLD_RANK": "3",
        "AWS_SECRET_ACCESS_KEY": "aws-secret-value-9f2e",
        "DATABASE_URL": "postgresql://alice:db-pass-4c1d@db.example/x",
        "HF_HUB": "hf_" + "Q" * 30,
        "MY_API_TOKEN": "api-token-value-77ab",
    }
    invocation.record_seed("numpy", 42)
    invocation.record_seed("torch", "seed-string")
    argv = ["train.py", "--api-token=cli-token-5e5e", "--password", "cli-pass-6f6f", "--lr", "0.1"]
    m = Collector(environ=environ, argv=argv).capture()
    inv = m.document["invocation"]

    assert inv["seeds"]["PYTHONHASHSEED"] == "0"
    assert inv["seeds"]["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    assert inv["seeds"]["api:numpy"] == 42
    assert inv["seeds"]["api:torch"] == "seed-string"
    assert inv["distributed"] == {"WORLD_SIZE": "8", "RANK": "3", "SLURM_JOB_ID": "4242", "OMPI_COMM_WORLD_RANK": "3"}
    assert inv["environment"]["PATH"] == "/usr/bin"
    assert inv["environment"]["AWS_SECRET_ACCESS_KEY"] == REDACTED
    assert inv["environment"]["MY_API_TOKEN"] == REDACTED
    assert inv["environment"]["HF_HUB"] == REDACTED
    assert inv["environment"]["DATABASE_URL"] == f"postgresql://{REDACTED}@db.example/x"
    assert set(inv["environment"]) == set(environ)  # names kept, values hidden
    assert inv["argv"] == ["train.py", f"--api-token={REDACTED}", "--password", REDACTED, "--lr", "0.1"]
    for secret in ("aws-secret-value-9f2e", "db-pass-4c1d", "Q" * 30, "api-token-value-77ab",
                   "cli-token-5e5e", "cli-pass-6f6f"):
        assert secret.encode() not in m.content, secret
    assert inv["cwd"]
    validate(m.document)


def test_invocation_without_distributed_variables(stub_probes: Counter) -> None:
    inv = Collector(environ={"HOME": "/home/u", "LANG": "C"}, argv=["x.py"]).capture().document["invocation"]
    assert inv["distributed"] == {}
    assert inv["seeds"] == {}
    assert inv["environment"] == {"HOME": "/home/u", "LANG": "C"}


def test_record_seed_between_captures_appears_in_the_later_one(stub_probes: Counter) -> None:
    collector = Collector(environ={}, argv=["x.py"])
    before = collector.capture().document["invocation"]["seeds"]
    invocation.record_seed("numpy", 42)
    after = collector.capture().document["invocation"]["seeds"]
    assert before == {}
    assert after == {"api:numpy": 42}
    invocation.record_seed("numpy", 7)  # the latest value wins
    assert collector.capture().document["invocation"]["seeds"] == {"api:numpy": 7}


@pytest.mark.parametrize("value", [True, False, 1.5, 42.0, None, [1], b"7"])
def test_record_seed_rejects_non_int_non_str_values(value: Any) -> None:
    with pytest.raises(ValueError, match="int or a string"):
        invocation.record_seed("numpy", value)
    assert invocation.recorded_seeds() == {}


@pytest.mark.parametrize("name", ["", None, 3])
def test_record_seed_rejects_bad_names(name: Any) -> None:
    with pytest.raises(ValueError, match="name"):
        invocation.record_seed(name, 1)
    assert invocation.recorded_seeds() == {}
