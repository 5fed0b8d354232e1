"""NVIDIA GPUs through NVML — the manifest's ``gpu`` section.

Uses the ``pynvml`` module from NVIDIA's ``nvidia-ml-py`` bindings. Without a driver
(no ``libnvidia-ml``), the section says so plainly: that is a fact about the machine,
not a failed probe. Per-device queries that a GPU does not support (MIG mode on a
consumer card) are recorded as ``"not supported"``; any other NVML failure becomes an
error entry, so the manifest is marked partial rather than silently thin.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import Any, Callable

NOT_SUPPORTED = "not supported"


ProbeErrors = list  # error entries ({"probe", "field", "error"}) met while reading what could be read


def gpu_info(nvml: ModuleType | None = None) -> tuple[dict[str, Any], ProbeErrors]:
    """NVML's view of the machine's GPUs, and the errors met per field."""
    errors: ProbeErrors = []
    if nvml is None:
        try:
            nvml = importlib.import_module("pynvml")
        except ImportError as exc:
            return {"available": False, "reason": f"NVML bindings not installed (nvidia-ml-py): {exc}"}, errors
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    try:
        nvml.nvmlInit()
    except Exception as exc:  # noqa: BLE001 - NVMLError subclasses name the cause
        return {"available": False, "reason": f"no NVIDIA driver: {_message(exc)}",
                "cuda_visible_devices": visible}, errors
    try:
        section: dict[str, Any] = {"available": True, "cuda_visible_devices": visible}
        section["driver_version"] = _text(_query(nvml, errors, "driver_version", lambda: nvml.nvmlSystemGetDriverVersion()))
        cuda = _query(nvml, errors, "cuda_driver_version", lambda: _cuda_version_call(nvml)())
        section["cuda_driver_version"] = _cuda_version(cuda)
        count = _query(nvml, errors, "device_count", lambda: nvml.nvmlDeviceGetCount())
        devices = []
        for index in range(count if isinstance(count, int) else 0):
            devices.append(_device(nvml, errors, index))
        section["count"] = len(devices)
        section["devices"] = devices
        return section, errors
    finally:
        try:
            nvml.nvmlShutdown()
        except Exception:  # noqa: BLE001 - shutting down a library we are done with
            pass


def _device(nvml: ModuleType, errors: ProbeErrors, index: int) -> dict[str, Any]:
    try:
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
    except Exception as exc:  # noqa: BLE001
        errors.append({"probe": "gpu", "field": f"devices[{index}]", "error": _message(exc)})
        return {"index": index}
    q = lambda field, call: _query(nvml, errors, f"devices[{index}].{field}", call)  # noqa: E731
    memory = q("memory", lambda: nvml.nvmlDeviceGetMemoryInfo(handle))
    capability = q("compute_capability", lambda: nvml.nvmlDeviceGetCudaComputeCapability(handle))
    mig = q("mig_mode", lambda: nvml.nvmlDeviceGetMigMode(handle))
    pci = q("pci_bus_id", lambda: nvml.nvmlDeviceGetPciInfo(handle))
    return {
        "index": index,
        "name": _text(q("name", lambda: nvml.nvmlDeviceGetName(handle))),
        "uuid": _text(q("uuid", lambda: nvml.nvmlDeviceGetUUID(handle))),
        "memory_total_bytes": getattr(memory, "total", memory if memory == NOT_SUPPORTED else None),
        "compute_capability": (
            f"{capability[0]}.{capability[1]}" if isinstance(capability, (tuple, list)) else capability
        ),
        "mig_mode": _mig(mig),
        "pci_bus_id": _text(getattr(pci, "busId", pci if pci == NOT_SUPPORTED else None)),
    }


def _query(nvml: ModuleType, errors: ProbeErrors, field: str, call: Callable[[], Any]) -> Any:
    try:
        return call()
    except Exception as exc:  # noqa: BLE001 - NVMLError, or AttributeError on old bindings
        if _is_not_supported(nvml, exc):
            return NOT_SUPPORTED
        errors.append({"probe": "gpu", "field": field, "error": _message(exc)})
        return None


def _is_not_supported(nvml: ModuleType, exc: Exception) -> bool:
    not_supported = getattr(nvml, "NVMLError_NotSupported", None)
    return isinstance(not_supported, type) and isinstance(exc, not_supported)


def _cuda_version_call(nvml: ModuleType) -> Callable[[], Any]:
    return getattr(nvml, "nvmlSystemGetCudaDriverVersion_v2", None) or nvml.nvmlSystemGetCudaDriverVersion


def _cuda_version(value: Any) -> Any:
    """NVML's integer ``12040`` is CUDA ``12.4``."""
    if isinstance(value, int):
        return f"{value // 1000}.{value % 1000 // 10}"
    return value


def _mig(value: Any) -> Any:
    if isinstance(value, (tuple, list)) and len(value) == 2:
        names = {0: "disabled", 1: "enabled"}
        return {"current": names.get(value[0], value[0]), "pending": names.get(value[1], value[1])}
    return value


def _text(value: Any) -> Any:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _message(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
