"""How the process was started — the manifest's ``invocation`` section.

Command line and environment with secrets redacted (:mod:`.redaction`), working
directory, random seeds (``PYTHONHASHSEED``, framework seed variables, and the seeds
handed to :func:`record_seed`), and the settings of distributed launchers
(torchrun, SLURM, Open MPI, Horovod…).
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Any, Mapping, Sequence

from mlflow_provenance.environment.redaction import redact_argv, redact_environment

#: Variables that fix or describe randomness and determinism.
SEED_VARIABLES = (
    "PYTHONHASHSEED",
    "PL_GLOBAL_SEED",
    "TF_DETERMINISTIC_OPS",
    "TF_CUDNN_DETERMINISTIC",
    "CUBLAS_WORKSPACE_CONFIG",
    "TORCH_DETERMINISTIC",
)
#: Distributed-training variables, by exact name …
DISTRIBUTED_VARIABLES = (
    "WORLD_SIZE", "RANK", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK", "ROLE_RANK",
    "MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "TORCHELASTIC_RUN_ID", "TORCHELASTIC_RESTART_COUNT",
    "TORCHELASTIC_MAX_RESTARTS", "NCCL_SOCKET_IFNAME", "CUDA_VISIBLE_DEVICES",
)
#: … and by prefix.
DISTRIBUTED_PREFIXES = ("SLURM_", "OMPI_", "PMI_", "PMIX_", "HOROVOD_", "TORCHELASTIC_")

_seeds: dict[str, Any] = {}
_seeds_lock = threading.Lock()


def record_seed(name: str, value: int | str) -> None:
    """Remember a seed this process uses, for the manifests of runs created afterwards."""
    if not isinstance(name, str) or not name:
        raise ValueError("record_seed: name must be a non-empty string, e.g. 'numpy'")
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"record_seed: seed {name!r} must be an int or a string, not {type(value).__name__}")
    with _seeds_lock:
        _seeds[name] = value


def recorded_seeds() -> dict[str, Any]:
    with _seeds_lock:
        return dict(_seeds)


def invocation_info(
    argv: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Command line, working directory, redacted environment, seeds, distributed settings."""
    env = os.environ if environ is None else environ
    argv = list(sys.argv if argv is None else argv)
    redacted = redact_environment(env)
    distributed = {
        name: value
        for name, value in redacted.items()
        if name in DISTRIBUTED_VARIABLES or name.startswith(DISTRIBUTED_PREFIXES)
    }
    seeds: dict[str, Any] = {
        name: redacted[name] for name in SEED_VARIABLES if name in redacted
    }
    seeds.update({f"api:{name}": value for name, value in recorded_seeds().items()})
    return {
        "argv": redact_argv(argv),
        "orig_argv": redact_argv(getattr(sys, "orig_argv", argv)),
        "cwd": os.getcwd(),
        "pid": os.getpid(),
        "user": _user(),
        "environment": redacted,
        "seeds": seeds,
        "distributed": distributed,
    }


def _user() -> str | None:
    try:
        import getpass

        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry in some containers
        return None
