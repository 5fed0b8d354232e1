"""The operating system and the machine — the manifest's ``os`` and ``hardware`` sections.

Linux facts come from ``/proc`` and ``/sys``; ``root`` lets tests point the probes at a
fake tree. On other systems the portable :mod:`platform` answers are kept and the
Linux-only fields are left out.
"""

from __future__ import annotations

import os
import platform
import socket
from pathlib import Path
from typing import Any

#: DMI vendor/product strings that name a hypervisor (``/sys/class/dmi/id``).
_VM_MARKERS = (
    "kvm", "qemu", "vmware", "virtualbox", "xen", "hyper-v", "microsoft corporation",
    "amazon ec2", "google compute engine", "openstack", "bochs", "parallels",
)


def os_info(root: Path = Path("/")) -> dict[str, Any]:
    """Name, release, kernel, libc, architecture, hostname, distribution, VM hints."""
    libc, libc_version = platform.libc_ver()
    info: dict[str, Any] = {
        "name": platform.system(),
        "release": platform.release(),
        "kernel": platform.version(),
        "architecture": platform.machine(),
        "libc": {"name": libc or None, "version": libc_version or None},
        "hostname": socket.gethostname(),
    }
    distribution = _os_release(root)
    if distribution:
        info["distribution"] = distribution
    info["virtualization"] = _virtualization(root)
    return info


def hardware_info(root: Path = Path("/")) -> dict[str, Any]:
    """CPU model and cores (logical, physical, usable), memory (machine and cgroup limit)."""
    cpu: dict[str, Any] = {"logical_cores": os.cpu_count()}
    if hasattr(os, "sched_getaffinity"):
        cpu["usable_cores"] = len(os.sched_getaffinity(0))
    cpuinfo = _read(root / "proc/cpuinfo")
    if cpuinfo:
        models, cores = set(), set()
        physical = core = None
        for line in cpuinfo.splitlines():
            key, _, value = line.partition(":")
            key, value = key.strip(), value.strip()
            if key in ("model name", "Processor", "cpu model") and value:
                models.add(value)
            elif key == "physical id":
                physical = value
            elif key == "core id":
                core = value
                cores.add((physical, core))
        if models:
            cpu["model"] = sorted(models)[0] if len(models) == 1 else sorted(models)
        if cores:
            cpu["physical_cores"] = len(cores)
    else:
        cpu["model"] = platform.processor() or None
    memory: dict[str, Any] = {}
    meminfo = _read(root / "proc/meminfo")
    for line in (meminfo or "").splitlines():
        if line.startswith("MemTotal:"):
            memory["total_bytes"] = int(line.split()[1]) * 1024
    if "total_bytes" not in memory and hasattr(os, "sysconf"):
        try:
            memory["total_bytes"] = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError):
            pass
    limit = _cgroup_memory_limit(root)
    if limit is not None:
        memory["cgroup_limit_bytes"] = limit
    return {"cpu": cpu, "memory": memory}


def _os_release(root: Path) -> dict[str, str]:
    text = _read(root / "etc/os-release") or _read(root / "usr/lib/os-release")
    result = {}
    for line in (text or "").splitlines():
        key, sep, value = line.partition("=")
        if sep and key in ("ID", "VERSION_ID", "PRETTY_NAME"):
            result[key.lower()] = value.strip().strip('"')
    return result


def _virtualization(root: Path) -> dict[str, Any]:
    hints: dict[str, Any] = {}
    dmi = root / "sys/class/dmi/id"
    vendor = (_read(dmi / "sys_vendor") or "").strip()
    product = (_read(dmi / "product_name") or "").strip()
    if vendor or product:
        hints["dmi"] = {"vendor": vendor, "product": product}
    text = f"{vendor} {product}".lower()
    hypervisor = next((marker for marker in _VM_MARKERS if marker in text), None)
    cpuinfo = _read(root / "proc/cpuinfo") or ""
    flagged = any(
        line.startswith("flags") and " hypervisor" in line for line in cpuinfo.splitlines()
    )
    hints["virtual_machine"] = bool(hypervisor or flagged)
    if hypervisor:
        hints["hypervisor"] = hypervisor
    return hints


def _cgroup_memory_limit(root: Path) -> int | None:
    for path in ("sys/fs/cgroup/memory.max", "sys/fs/cgroup/memory/memory.limit_in_bytes"):
        text = (_read(root / path) or "").strip()
        if text.isdigit() and int(text) < 1 << 60:
            return int(text)
    return None


def _read(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return None
