"""The ``gpu`` section: NVML through a fake library module, and the real bindings without a driver.

The fake mirrors the public surface of NVIDIA's ``pynvml`` module (nvidia-ml-py): the
same function names and return shapes (``bytes`` or ``str`` strings, a memory struct with
``.total``, a ``(major, minor)`` capability, ``[current, pending]`` MIG modes, a PCI
struct with ``.busId``) and its own ``NVMLError`` hierarchy, where ``NVMLError(code)``
becomes the subclass for that code, as in the real bindings.
"""

from __future__ import annotations

import ctypes
import json
import sys
import types
from dataclasses import dataclass, field
from typing import Any

import pytest

from mlflow_provenance.environment import gpu
from mlflow_provenance.environment.collector import Collector
from mlflow_provenance.environment.gpu import NOT_SUPPORTED, gpu_info
from mlflow_provenance.environment.manifest import TAG_GPU, Manifest, validate

# Error codes and messages as in pynvml.
NVML_ERROR_UNINITIALIZED = 1
NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_NO_PERMISSION = 4
NVML_ERROR_DRIVER_NOT_LOADED = 9
NVML_ERROR_LIBRARY_NOT_FOUND = 12
NVML_ERROR_GPU_IS_LOST = 15
NVML_ERROR_UNKNOWN = 999

_ERROR_NAMES = {
    NVML_ERROR_UNINITIALIZED: ("Uninitialized", "Uninitialized"),
    NVML_ERROR_NOT_SUPPORTED: ("NotSupported", "Not Supported"),
    NVML_ERROR_NO_PERMISSION: ("NoPermission", "Insufficient Permissions"),
    NVML_ERROR_DRIVER_NOT_LOADED: ("DriverNotLoaded", "Driver Not Loaded"),
    NVML_ERROR_LIBRARY_NOT_FOUND: ("LibraryNotFound", "NVML Shared Library Not Found"),
    NVML_ERROR_GPU_IS_LOST: ("GpuIsLost", "GPU is lost"),
    NVML_ERROR_UNKNOWN: ("Unknown", "Unknown Error"),
}

H100 = "NVIDIA H100 80GB HBM3"
H100_MEMORY = 85_520_809_984  # 79.6 GiB, what NVML reports for an 80 GB H100
UUID0 = "GPU-5a7a2c1e-0c7b-1d3e-8e6f-0123456789ab"
UUID1 = "GPU-9f8e7d6c-5b4a-3928-1706-fedcba987654"


@dataclass
class FakeGPU:
    name: str | bytes = H100
    uuid: str | bytes = UUID0
    memory_total: int = H100_MEMORY
    capability: tuple[int, int] = (9, 0)
    mig: list[int] = field(default_factory=lambda: [0, 0])
    bus_id: bytes = b"00000000:18:00.0"
    #: NVML call name (e.g. "nvmlDeviceGetUUID") -> error code raised instead of answering
    fail: dict[str, int] = field(default_factory=dict)


def _error_classes(module: types.ModuleType) -> None:
    """An NVMLError hierarchy like pynvml's, private to ``module``."""
    mapping: dict[int, type] = {}

    class NVMLError(Exception):
        def __new__(typ, value):
            if typ is NVMLError:
                typ = mapping.get(value, typ)
            obj = Exception.__new__(typ)
            obj.value = value
            return obj

        def __str__(self) -> str:
            return _ERROR_NAMES.get(self.value, ("", f"NVML Error with code {self.value}"))[1]

    NVMLError.__module__ = module.__name__
    module.NVMLError = NVMLError
    for code, (suffix, _) in _ERROR_NAMES.items():

        def gen_new(val):
            def new(typ, *args):
                return NVMLError.__new__(typ, val)

            return new

        cls = type(f"NVMLError_{suffix}", (NVMLError,), {"__new__": gen_new(code)})
        cls.__module__ = module.__name__
        setattr(module, cls.__name__, cls)
        setattr(module, f"NVML_ERROR_{suffix.upper()}", code)
        mapping[code] = cls


def fake_nvml(
    devices: list[FakeGPU],
    *,
    driver: str | bytes = b"550.54.15",
    cuda: int = 12040,
    init_error: int | None = None,
    fail: dict[str, int] | None = None,
    v2: bool = True,
) -> types.ModuleType:
    """A stand-in for ``pynvml`` describing ``devices``; ``module.calls`` counts calls."""
    nvml = types.ModuleType("fake_pynvml")
    _error_classes(nvml)
    nvml.calls = {"nvmlInit": 0, "nvmlShutdown": 0}
    nvml.initialized = False
    system_fail = dict(fail or {})

    def check(call: str, device: FakeGPU | None = None) -> None:
        nvml.calls[call] = nvml.calls.get(call, 0) + 1
        if call not in ("nvmlInit", "nvmlShutdown") and not nvml.initialized:
            raise nvml.NVMLError(NVML_ERROR_UNINITIALIZED)
        code = (device.fail if device is not None else system_fail).get(call)
        if code is not None:
            raise nvml.NVMLError(code)

    def nvmlInit() -> None:
        check("nvmlInit")
        if init_error is not None:
            raise nvml.NVMLError(init_error)
        nvml.initialized = True

    def nvmlShutdown() -> None:
        check("nvmlShutdown")
        nvml.initialized = False

    def nvmlSystemGetDriverVersion():
        check("nvmlSystemGetDriverVersion")
        return driver

    def nvmlSystemGetCudaDriverVersion():
        check("nvmlSystemGetCudaDriverVersion")
        return cuda

    def nvmlSystemGetCudaDriverVersion_v2():
        check("nvmlSystemGetCudaDriverVersion_v2")
        return cuda

    def nvmlDeviceGetCount() -> int:
        check("nvmlDeviceGetCount")
        return len(devices)

    def nvmlDeviceGetHandleByIndex(index: int) -> FakeGPU:
        check("nvmlDeviceGetHandleByIndex")
        if not 0 <= index < len(devices):
            raise nvml.NVMLError(2)
        device = devices[index]
        check("nvmlDeviceGetHandleByIndex", device)
        return device

    def device_call(call: str, answer):
        def fn(handle: FakeGPU):
            assert isinstance(handle, FakeGPU), "a handle from nvmlDeviceGetHandleByIndex"
            check(call, handle)
            return answer(handle)

        fn.__name__ = call
        return fn

    nvml.nvmlInit = nvmlInit
    nvml.nvmlShutdown = nvmlShutdown
    nvml.nvmlSystemGetDriverVersion = nvmlSystemGetDriverVersion
    nvml.nvmlSystemGetCudaDriverVersion = nvmlSystemGetCudaDriverVersion
    if v2:
        nvml.nvmlSystemGetCudaDriverVersion_v2 = nvmlSystemGetCudaDriverVersion_v2
    nvml.nvmlDeviceGetCount = nvmlDeviceGetCount
    nvml.nvmlDeviceGetHandleByIndex = nvmlDeviceGetHandleByIndex
    nvml.nvmlDeviceGetName = device_call("nvmlDeviceGetName", lambda d: d.name)
    nvml.nvmlDeviceGetUUID = device_call("nvmlDeviceGetUUID", lambda d: d.uuid)
    nvml.nvmlDeviceGetMemoryInfo = device_call(
        "nvmlDeviceGetMemoryInfo",
        lambda d: types.SimpleNamespace(total=d.memory_total, free=d.memory_total // 2, used=d.memory_total // 2),
    )
    nvml.nvmlDeviceGetCudaComputeCapability = device_call("nvmlDeviceGetCudaComputeCapability", lambda d: d.capability)
    nvml.nvmlDeviceGetMigMode = device_call("nvmlDeviceGetMigMode", lambda d: list(d.mig))
    nvml.nvmlDeviceGetPciInfo = device_call(
        "nvmlDeviceGetPciInfo", lambda d: types.SimpleNamespace(busId=d.bus_id, bus=0x18, device=0, domain=0)
    )
    return nvml


def two_h100s(**kwargs: Any) -> types.ModuleType:
    return fake_nvml(
        [
            FakeGPU(name=H100, uuid=UUID0, bus_id=b"00000000:18:00.0"),
            FakeGPU(name=H100.encode(), uuid=UUID1.encode(), bus_id=b"00000000:2A:00.0", mig=[1, 1]),
        ],
        **kwargs,
    )


# --- the fake itself behaves like pynvml --------------------------------------------------------


def test_fake_error_hierarchy_mirrors_pynvml():
    nvml = fake_nvml([])
    err = nvml.NVMLError(NVML_ERROR_NOT_SUPPORTED)
    assert type(err) is nvml.NVMLError_NotSupported
    assert isinstance(err, nvml.NVMLError) and err.value == NVML_ERROR_NOT_SUPPORTED
    assert isinstance(nvml.NVMLError_LibraryNotFound(), nvml.NVMLError)
    assert nvml.NVMLError_LibraryNotFound().value == NVML_ERROR_LIBRARY_NOT_FOUND
    real = pytest.importorskip("pynvml")
    for name in ("NVMLError_NotSupported", "NVMLError_LibraryNotFound", "NVMLError_GpuIsLost", "NVMLError_Unknown"):
        assert issubclass(getattr(real, name), real.NVMLError), name
        assert getattr(real, name)().value == getattr(nvml, name)().value
        assert str(getattr(real, name)()) == str(getattr(nvml, name)())
    for call in ("nvmlInit", "nvmlShutdown", "nvmlSystemGetDriverVersion", "nvmlSystemGetCudaDriverVersion_v2",
                 "nvmlDeviceGetCount", "nvmlDeviceGetHandleByIndex", "nvmlDeviceGetName", "nvmlDeviceGetUUID",
                 "nvmlDeviceGetMemoryInfo", "nvmlDeviceGetCudaComputeCapability", "nvmlDeviceGetMigMode",
                 "nvmlDeviceGetPciInfo"):
        assert callable(getattr(real, call)) and callable(getattr(nvml, call)), call


# --- two GPUs ------------------------------------------------------------------------------------


def test_two_gpus_all_fields(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    nvml = two_h100s()
    section, errors = gpu_info(nvml)
    assert errors == []
    assert section["available"] is True
    assert section["driver_version"] == "550.54.15"  # bytes from NVML, text in the manifest
    assert section["cuda_driver_version"] == "12.4"
    assert section["count"] == 2
    assert section["cuda_visible_devices"] is None
    d0, d1 = section["devices"]
    assert d0 == {
        "index": 0,
        "name": H100,
        "uuid": UUID0,
        "memory_total_bytes": H100_MEMORY,
        "compute_capability": "9.0",
        "mig_mode": {"current": "disabled", "pending": "disabled"},
        "pci_bus_id": "00000000:18:00.0",
    }
    assert d1["index"] == 1
    assert d1["name"] == H100 and isinstance(d1["name"], str)  # given as bytes
    assert d1["uuid"] == UUID1 and isinstance(d1["uuid"], str)
    assert d1["memory_total_bytes"] == H100_MEMORY
    assert d1["compute_capability"] == "9.0"
    assert d1["mig_mode"] == {"current": "enabled", "pending": "enabled"}
    assert d1["pci_bus_id"] == "00000000:2A:00.0"
    json.dumps(section)  # nothing left that JSON cannot hold (bytes, structs)


def test_mixed_devices_and_versions():
    nvml = fake_nvml(
        [
            FakeGPU(name="NVIDIA A100-SXM4-40GB", capability=(8, 0), memory_total=42_949_672_960, mig=[0, 1]),
            FakeGPU(name=b"NVIDIA GeForce RTX 4090", capability=(8, 9), memory_total=25_757_220_864, uuid=UUID1),
        ],
        driver="535.161.07",
        cuda=11080,
    )
    section, errors = gpu_info(nvml)
    assert errors == []
    assert section["driver_version"] == "535.161.07"
    assert section["cuda_driver_version"] == "11.8"
    assert [d["name"] for d in section["devices"]] == ["NVIDIA A100-SXM4-40GB", "NVIDIA GeForce RTX 4090"]
    assert [d["compute_capability"] for d in section["devices"]] == ["8.0", "8.9"]
    assert [d["memory_total_bytes"] for d in section["devices"]] == [42_949_672_960, 25_757_220_864]
    assert section["devices"][0]["mig_mode"] == {"current": "disabled", "pending": "enabled"}


@pytest.mark.parametrize(
    ("cuda", "expected"), [(12040, "12.4"), (12010, "12.1"), (11080, "11.8"), (12000, "12.0"), (10020, "10.2")]
)
def test_cuda_driver_version_integer_to_text(cuda, expected):
    section, errors = gpu_info(fake_nvml([FakeGPU()], cuda=cuda))
    assert errors == []
    assert section["cuda_driver_version"] == expected


def test_old_bindings_without_v2_use_the_plain_cuda_call():
    nvml = fake_nvml([FakeGPU()], cuda=12020, v2=False)
    section, errors = gpu_info(nvml)
    assert errors == []
    assert section["cuda_driver_version"] == "12.2"
    assert nvml.calls["nvmlSystemGetCudaDriverVersion"] == 1


def test_v2_cuda_call_preferred_when_present():
    nvml = two_h100s()
    gpu_info(nvml)
    assert nvml.calls.get("nvmlSystemGetCudaDriverVersion_v2") == 1
    assert nvml.calls.get("nvmlSystemGetCudaDriverVersion", 0) == 0


# --- not supported vs failed ---------------------------------------------------------------------


def test_mig_not_supported_is_recorded_without_an_error():
    nvml = fake_nvml([FakeGPU(name=b"NVIDIA GeForce RTX 3090", fail={"nvmlDeviceGetMigMode": NVML_ERROR_NOT_SUPPORTED})])
    section, errors = gpu_info(nvml)
    assert errors == []
    assert section["devices"][0]["mig_mode"] == NOT_SUPPORTED == "not supported"
    assert section["devices"][0]["name"] == "NVIDIA GeForce RTX 3090"


@pytest.mark.parametrize(
    ("call", "key"),
    [
        ("nvmlDeviceGetMemoryInfo", "memory_total_bytes"),
        ("nvmlDeviceGetCudaComputeCapability", "compute_capability"),
        ("nvmlDeviceGetPciInfo", "pci_bus_id"),
        ("nvmlDeviceGetUUID", "uuid"),
    ],
)
def test_other_fields_not_supported(call, key):
    section, errors = gpu_info(fake_nvml([FakeGPU(fail={call: NVML_ERROR_NOT_SUPPORTED})]))
    assert errors == []
    assert section["devices"][0][key] == "not supported"


@pytest.mark.parametrize(
    ("call", "key", "field_name", "code", "message"),
    [
        ("nvmlDeviceGetUUID", "uuid", "devices[1].uuid", NVML_ERROR_GPU_IS_LOST, "GpuIsLost: GPU is lost"),
        ("nvmlDeviceGetMigMode", "mig_mode", "devices[1].mig_mode", NVML_ERROR_NO_PERMISSION,
         "NoPermission: Insufficient Permissions"),
        ("nvmlDeviceGetMemoryInfo", "memory_total_bytes", "devices[1].memory", NVML_ERROR_UNKNOWN,
         "Unknown: Unknown Error"),
        ("nvmlDeviceGetCudaComputeCapability", "compute_capability", "devices[1].compute_capability",
         NVML_ERROR_UNKNOWN, "Unknown Error"),
        ("nvmlDeviceGetPciInfo", "pci_bus_id", "devices[1].pci_bus_id", NVML_ERROR_GPU_IS_LOST, "GPU is lost"),
        ("nvmlDeviceGetName", "name", "devices[1].name", NVML_ERROR_UNKNOWN, "Unknown Error"),
    ],
)
def test_device_field_failure_is_an_error_entry_and_the_rest_is_kept(call, key, field_name, code, message):
    nvml = fake_nvml([FakeGPU(), FakeGPU(uuid=UUID1, fail={call: code})])
    section, errors = gpu_info(nvml)
    assert len(errors) == 1
    (error,) = errors
    assert error["probe"] == "gpu"
    assert error["field"] == field_name
    assert message in error["error"]
    assert error["error"].startswith("NVMLError_")
    failed = section["devices"][1]
    assert failed[key] is None
    # every other field of the failing device, and the healthy device, are intact
    assert section["count"] == 2
    assert section["devices"][0]["uuid"] == UUID0
    assert section["devices"][0]["mig_mode"] == {"current": "disabled", "pending": "disabled"}
    expected = {"name": H100, "uuid": UUID1, "memory_total_bytes": H100_MEMORY, "compute_capability": "9.0",
                "mig_mode": {"current": "disabled", "pending": "disabled"}, "pci_bus_id": "00000000:18:00.0"}
    for other, value in expected.items():
        if other != key:
            assert failed[other] == value, other
    assert section["driver_version"] == "550.54.15"


def test_driver_version_failure_is_an_error_entry():
    nvml = two_h100s(fail={"nvmlSystemGetDriverVersion": NVML_ERROR_UNKNOWN})
    section, errors = gpu_info(nvml)
    assert errors == [{"probe": "gpu", "field": "driver_version", "error": "NVMLError_Unknown: Unknown Error"}]
    assert section["driver_version"] is None
    assert section["cuda_driver_version"] == "12.4"
    assert section["count"] == 2


def test_device_count_failure_gives_no_devices_and_an_error():
    nvml = two_h100s(fail={"nvmlDeviceGetCount": NVML_ERROR_UNKNOWN})
    section, errors = gpu_info(nvml)
    assert [e["field"] for e in errors] == ["device_count"]
    assert section["available"] is True
    assert section["count"] == 0 and section["devices"] == []
    assert nvml.calls["nvmlShutdown"] == 1


def test_handle_failure_keeps_the_index_and_other_devices():
    nvml = fake_nvml([FakeGPU(), FakeGPU(uuid=UUID1, fail={"nvmlDeviceGetHandleByIndex": NVML_ERROR_GPU_IS_LOST})])
    section, errors = gpu_info(nvml)
    assert [e["field"] for e in errors] == ["devices[1]"]
    assert "GPU is lost" in errors[0]["error"]
    assert section["count"] == 2
    assert section["devices"][1] == {"index": 1}
    assert section["devices"][0]["uuid"] == UUID0
    assert nvml.calls["nvmlShutdown"] == 1


def test_not_supported_is_judged_by_the_given_modules_class():
    """An error class from another NVML module is not this module's NotSupported."""
    nvml = fake_nvml([FakeGPU()])
    other = fake_nvml([])

    def mig(handle):
        raise other.NVMLError_NotSupported()

    nvml.nvmlDeviceGetMigMode = mig
    section, errors = gpu_info(nvml)
    # ``other``'s NotSupported is not ``nvml``'s, so it is an error, not "not supported"
    assert [e["field"] for e in errors] == ["devices[0].mig_mode"]
    assert section["devices"][0]["mig_mode"] is None


# --- no driver, no devices -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "fragment"),
    [(NVML_ERROR_LIBRARY_NOT_FOUND, "NVML Shared Library Not Found"), (NVML_ERROR_DRIVER_NOT_LOADED, "Driver Not Loaded")],
)
def test_init_failure_means_no_driver(code, fragment, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    nvml = fake_nvml([FakeGPU()], init_error=code)
    section, errors = gpu_info(nvml)
    assert errors == []  # no driver is a fact about the machine, not a failed probe
    assert section["available"] is False
    assert section["reason"].startswith("no NVIDIA driver")
    assert fragment in section["reason"]
    assert section["cuda_visible_devices"] == "0"
    assert "devices" not in section
    assert nvml.calls["nvmlInit"] == 1
    assert nvml.calls["nvmlShutdown"] == 0  # nothing to shut down after a failed init
    assert nvml.calls.get("nvmlDeviceGetCount", 0) == 0


def test_library_not_found_summary_and_schema():
    section, _ = gpu_info(fake_nvml([], init_error=NVML_ERROR_LIBRARY_NOT_FOUND))
    manifest = Manifest.from_document({"gpu": section})
    assert manifest.summary_tags()[TAG_GPU].startswith("none (no NVIDIA driver")
    _validate_gpu_section(section)


def test_zero_devices(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    nvml = fake_nvml([], driver="550.54.15")
    section, errors = gpu_info(nvml)
    assert errors == []
    assert section["available"] is True
    assert section["count"] == 0
    assert section["devices"] == []
    assert section["driver_version"] == "550.54.15"
    assert nvml.calls.get("nvmlDeviceGetHandleByIndex", 0) == 0
    assert nvml.calls["nvmlShutdown"] == 1
    tag = Manifest.from_document({"gpu": section}).summary_tags()[TAG_GPU]
    assert tag == "none (driver 550.54.15, no devices)"
    _validate_gpu_section(section)


# --- init/shutdown pairing -----------------------------------------------------------------------


def test_shutdown_called_exactly_once_after_successful_init():
    nvml = two_h100s()
    gpu_info(nvml)
    assert nvml.calls["nvmlInit"] == 1
    assert nvml.calls["nvmlShutdown"] == 1
    assert nvml.initialized is False


def test_shutdown_called_once_when_device_queries_raise():
    everything = {call: NVML_ERROR_UNKNOWN for call in (
        "nvmlDeviceGetName", "nvmlDeviceGetUUID", "nvmlDeviceGetMemoryInfo",
        "nvmlDeviceGetCudaComputeCapability", "nvmlDeviceGetMigMode", "nvmlDeviceGetPciInfo")}
    nvml = fake_nvml([FakeGPU(fail=everything), FakeGPU(fail=everything)])
    section, errors = gpu_info(nvml)
    assert len(errors) == 12
    assert section["count"] == 2
    assert nvml.calls["nvmlShutdown"] == 1


class _Escaping(BaseException):
    """Not an ``Exception``: nothing in gpu_info may swallow it."""


def test_shutdown_called_even_when_an_error_escapes():
    nvml = two_h100s()

    def boom(handle):
        raise _Escaping("interrupted")

    nvml.nvmlDeviceGetUUID = boom
    with pytest.raises(_Escaping):
        gpu_info(nvml)
    assert nvml.calls["nvmlInit"] == 1
    assert nvml.calls["nvmlShutdown"] == 1


def test_failing_shutdown_does_not_lose_the_section():
    nvml = two_h100s()

    def shutdown():
        nvml.calls["nvmlShutdown"] += 1
        raise nvml.NVMLError(NVML_ERROR_UNKNOWN)

    nvml.nvmlShutdown = shutdown
    section, errors = gpu_info(nvml)
    assert section["count"] == 2
    assert errors == []
    assert nvml.calls["nvmlShutdown"] == 1


# --- CUDA_VISIBLE_DEVICES ------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["0", "1,0", "GPU-5a7a2c1e", "", "-1"])
def test_cuda_visible_devices_recorded(value, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", value)
    section, _ = gpu_info(two_h100s())
    assert section["cuda_visible_devices"] == value
    # NVML ignores CUDA_VISIBLE_DEVICES: every device is still listed
    assert section["count"] == 2


def test_cuda_visible_devices_unset(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    section, _ = gpu_info(two_h100s())
    assert section["cuda_visible_devices"] is None


# --- the real bindings on a machine without a driver ---------------------------------------------


def _driver_present() -> bool:
    try:
        ctypes.CDLL("libnvidia-ml.so.1")
    except OSError:
        return False
    return True


@pytest.mark.skipif(_driver_present(), reason="this machine has an NVIDIA driver (libnvidia-ml.so.1)")
def test_real_pynvml_without_a_driver():
    pytest.importorskip("pynvml")
    section, errors = gpu_info()
    assert errors == []
    assert section["available"] is False
    assert section["reason"].startswith("no NVIDIA driver")
    assert "LibraryNotFound" in section["reason"]
    _validate_gpu_section(section)


def test_bindings_not_installed(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml -> ImportError
    section, errors = gpu_info()
    assert errors == []
    assert section["available"] is False
    assert "nvidia-ml-py" in section["reason"]
    _validate_gpu_section(section)


# --- into a manifest -----------------------------------------------------------------------------


def _validate_gpu_section(section: dict[str, Any]) -> None:
    """Validate ``section`` as the ``gpu`` property of the shipped schema."""
    import jsonschema

    from mlflow_provenance.environment.manifest import schema

    full = schema()
    sub = dict(full["properties"]["gpu"])
    sub["$defs"] = full.get("$defs", {})
    jsonschema.Draft202012Validator(sub).validate(section)


def test_gpu_section_shapes_validate_against_schema():
    nvml = fake_nvml([
        FakeGPU(fail={"nvmlDeviceGetMigMode": NVML_ERROR_NOT_SUPPORTED, "nvmlDeviceGetUUID": NVML_ERROR_UNKNOWN}),
        FakeGPU(fail={"nvmlDeviceGetMemoryInfo": NVML_ERROR_NOT_SUPPORTED}),
        FakeGPU(fail={"nvmlDeviceGetHandleByIndex": NVML_ERROR_GPU_IS_LOST}),
    ])
    section, errors = gpu_info(nvml)
    assert len(errors) == 2
    _validate_gpu_section(section)


def test_schema_rejects_a_malformed_gpu_section():
    """The helper above can fail: a device without its index is refused."""
    import jsonschema

    section, _ = gpu_info(two_h100s())
    del section["devices"][0]["index"]
    with pytest.raises(jsonschema.ValidationError):
        _validate_gpu_section(section)


def test_full_capture_with_fake_nvml_summary_and_schema(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    nvml = two_h100s()
    collector = Collector(nvml=nvml, argv=["-c"], environ={"PATH": "/usr/bin"}, deadline_s=120.0)
    manifest = collector.capture()
    doc = manifest.document
    gpu_doc = doc["gpu"]
    assert gpu_doc["available"] is True
    assert gpu_doc["count"] == 2
    assert gpu_doc["cuda_visible_devices"] == "0,1"
    assert [d["uuid"] for d in gpu_doc["devices"]] == [UUID0, UUID1]
    assert not [e for e in manifest.errors if e.get("probe") == "gpu"]
    tags = manifest.summary_tags()
    assert tags[TAG_GPU] == "2 × NVIDIA H100 80GB HBM3 (driver 550.54.15, CUDA 12.4)"
    validate(doc)  # the whole document, gpu section included
    _validate_gpu_section(gpu_doc)
    # the manifest's canonical bytes carry the GPU facts
    content = manifest.content.decode()
    assert UUID1 in content and "00000000:2A:00.0" in content
    assert nvml.calls["nvmlShutdown"] == nvml.calls["nvmlInit"] == 1


def test_capture_with_a_failing_gpu_field_is_partial_and_valid():
    nvml = two_h100s(fail={"nvmlSystemGetDriverVersion": NVML_ERROR_UNKNOWN})
    manifest = Collector(nvml=nvml, argv=["-c"], environ={}, deadline_s=120.0).capture()
    assert {"probe": "gpu", "field": "driver_version", "error": "NVMLError_Unknown: Unknown Error"} in manifest.errors
    assert manifest.status == "partial"
    assert manifest.summary_tags()[TAG_GPU] == "2 × NVIDIA H100 80GB HBM3 (driver None, CUDA 12.4)"
    validate(manifest.document)


def test_summary_counts_distinct_models():
    nvml = fake_nvml([FakeGPU(name="NVIDIA A100-SXM4-80GB"), FakeGPU(name=H100), FakeGPU(name=H100.encode())])
    section, _ = gpu_info(nvml)
    tag = Manifest.from_document({"gpu": section}).summary_tags()[TAG_GPU]
    assert tag == "1 × NVIDIA A100-SXM4-80GB, 2 × NVIDIA H100 80GB HBM3 (driver 550.54.15, CUDA 12.4)"


def test_module_uses_pynvml_by_default(monkeypatch):
    """With no module given, ``pynvml`` from ``sys.modules`` is the one used."""
    nvml = two_h100s()
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    section, _ = gpu.gpu_info()
    assert section["count"] == 2
    assert nvml.calls["nvmlInit"] == 1
