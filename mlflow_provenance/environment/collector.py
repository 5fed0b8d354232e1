"""Running the probes: in parallel, time-bounded, cached, never raising.

What cannot change within a process — interpreter and packages, OS, hardware, GPUs,
container — is probed once (in parallel threads on first use) and reused; packages are
probed again only if a directory on ``sys.path`` changed (an install in a notebook).
The code (git, entry script) and the invocation (environment, seeds) are read for every
run. A probe that raises or overruns its deadline becomes an error entry in
``capture.errors`` and a logged warning; the manifest is then *partial*, never absent.
"""

from __future__ import annotations

import concurrent.futures as futures
import datetime as _dt
import logging
import os
import threading
import time
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

from mlflow_provenance.environment import code, container, gpu, invocation, packages, system
from mlflow_provenance.environment.manifest import SCHEMA_ID, SCHEMA_VERSION, Manifest

_logger = logging.getLogger(__name__)

#: How long the first capture of a process waits for its slowest probe.
DEADLINE_S = 5.0

Section = tuple[dict[str, Any], list[dict[str, Any]]]


class Collector:
    """Captures manifests for one process; thread-safe.

    Args:
        root: filesystem root the Linux probes read (tests point it at a fake tree).
        nvml: an NVML module to use instead of ``pynvml`` (tests pass a fake).
        environ: environment to describe instead of ``os.environ``.
        deadline_s: how long the first capture waits for the static probes.
    """

    def __init__(
        self,
        *,
        root: Path = Path("/"),
        nvml: ModuleType | None = None,
        environ: dict[str, str] | None = None,
        argv: list[str] | None = None,
        deadline_s: float = DEADLINE_S,
    ) -> None:
        self._root = root
        self._nvml = nvml
        self._environ = environ
        self._argv = argv
        self._deadline_s = deadline_s
        self._lock = threading.Lock()
        self._pool: futures.ThreadPoolExecutor | None = None
        self._static: dict[str, futures.Future[Section]] = {}
        self._site_signature: tuple | None = None
        self._overdue: set[str] = set()  # probes that already made one capture wait in vain

    def _probes(self) -> dict[str, Callable[[], Section]]:
        return {
            "python": self._python,
            "os": lambda: (system.os_info(self._root), []),
            "hardware": lambda: (system.hardware_info(self._root), []),
            "gpu": lambda: gpu.gpu_info(self._nvml),
            "container": lambda: (container.container_info(self._root, self._environ), []),
        }

    def _python(self) -> Section:
        dists = packages.distributions()
        section = {**packages.python_info(), "distributions": dists, "freeze": packages.freeze(dists)}
        unreadable = packages.unreadable_distributions()
        if unreadable:
            section["unreadable_distributions"] = unreadable
        return section, []

    def capture(self, *, script: str | None = None) -> Manifest:
        """A manifest of this process's environment, now. Never raises."""
        started = time.perf_counter()
        captured_at = _utc_now()
        errors: list[dict[str, Any]] = []
        cached: list[str] = []
        document: dict[str, Any] = {
            "$schema": SCHEMA_ID,
            "schema_version": SCHEMA_VERSION,
            "captured_at": captured_at,
        }
        try:
            pending = self._start_static()
            deadline = started + self._deadline_s
            for name, future in pending.items():
                if future.done() and name in self._reused:
                    cached.append(name)
                document[name] = self._collect(name, future, deadline, errors)
            document["code"] = self._run_probe("code", lambda: self._code(script), errors)
            document["invocation"] = self._run_probe(
                "invocation", lambda: (invocation.invocation_info(self._argv, self._environ), []), errors
            )
        except Exception as exc:  # noqa: BLE001 - capture must never break a user's run
            _logger.warning("mlflow-provenance: environment capture failed: %s", exc, exc_info=True)
            errors.append({"probe": "capture", "error": f"{type(exc).__name__}: {exc}"})
        from mlflow_provenance import __version__

        document["capture"] = {
            "tool": "mlflow-provenance",
            "version": __version__,
            "duration_ms": round((time.perf_counter() - started) * 1000, 3),
            "cached": sorted(cached),
            "errors": errors,
        }
        for error in errors:
            _logger.warning(
                "mlflow-provenance: environment probe %s failed: %s (the run's manifest is partial)",
                error.get("probe"), error.get("error"),
            )
        return Manifest.from_document(document)

    # --- static probes ---------------------------------------------------------------------

    _reused: frozenset[str] = frozenset()

    def _start_static(self) -> dict[str, futures.Future[Section]]:
        with self._lock:
            reused = set(self._static)
            signature = packages.site_directories_signature()
            if self._site_signature is not None and signature != self._site_signature:
                self._static.pop("python", None)  # something was installed or removed
            self._site_signature = signature
            for name, probe in self._probes().items():
                if name not in self._static:
                    reused.discard(name)
                    self._static[name] = self._executor().submit(probe)
            self._reused = frozenset(reused)
            return dict(self._static)

    def _executor(self) -> futures.ThreadPoolExecutor:
        if self._pool is None:
            self._pool = futures.ThreadPoolExecutor(max_workers=5, thread_name_prefix="mlflow-provenance-env")
        return self._pool

    def _collect(
        self, name: str, future: futures.Future[Section], deadline: float, errors: list[dict[str, Any]]
    ) -> dict[str, Any]:
        # A probe that already overran once is not waited for again (DESIGN.md §8: nothing
        # waits on a driver or daemon more than once per process); its result is used once in.
        wait = 0.0 if name in self._overdue else max(0.0, deadline - time.perf_counter())
        try:
            section, probe_errors = future.result(timeout=wait)
        except futures.TimeoutError:
            self._overdue.add(name)
            message = f"did not finish within {self._deadline_s:g} s (still running; later runs will get it)"
            errors.append({"probe": name, "error": message})
            return {"error": message}
        except Exception as exc:  # noqa: BLE001 - a probe's failure is recorded, not raised
            with self._lock:
                self._static.pop(name, None)  # try again next run
            message = f"{type(exc).__name__}: {exc}"
            errors.append({"probe": name, "error": message})
            return {"error": message}
        errors.extend(probe_errors)
        return section

    def _run_probe(self, name: str, probe: Callable[[], Section], errors: list[dict[str, Any]]) -> dict[str, Any]:
        try:
            section, probe_errors = probe()
        except Exception as exc:  # noqa: BLE001 - a probe's failure is recorded, not raised
            message = f"{type(exc).__name__}: {exc}"
            errors.append({"probe": name, "error": message})
            return {"error": message}
        errors.extend(probe_errors)
        return section

    def _code(self, script: str | None) -> Section:
        entry = code.entry_point(self._argv) if script is None else {
            "kind": "script", "path": os.path.abspath(script), "sha256": code._file_sha256(script),
        }
        start = entry.get("path") or os.getcwd()
        errors = []
        try:
            git = code.git_info(start)
        except code.GitError as exc:
            git = {"available": False, "error": str(exc)}
            errors.append({"probe": "code.git", "error": str(exc)})
        return {"entry_point": entry, "git": git}, errors

    def reset_after_fork(self) -> None:
        """Threads do not survive ``fork``: drop pending work (results already in are kept)."""
        self._lock = threading.Lock()
        self._pool = None
        self._static = {name: f for name, f in self._static.items() if f.done()}


def _utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="microseconds")[:-6] + "Z"


_default: Collector | None = None
_default_lock = threading.Lock()


def default_collector() -> Collector:
    """The process-wide collector (its cache is what makes later runs cheap)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Collector()
        return _default


def capture_environment(*, script: str | None = None) -> Manifest:
    """This process's environment manifest (cached probes reused). Never raises."""
    return default_collector().capture(script=script)


def _after_fork() -> None:
    global _default_lock
    _default_lock = threading.Lock()
    if _default is not None:
        _default.reset_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)
