"""Which container this process runs in — the manifest's ``container`` section.

Local evidence first (``/.dockerenv``, ``/run/.containerenv``, container ids in
``/proc/self/mountinfo`` and ``/proc/self/cgroup``, Kubernetes' pod variables and service
account). Then, when a container id is known and a Docker Engine API is reachable
(``DOCKER_HOST``, or ``/var/run/docker.sock`` mounted in), the ``docker`` SDK asks the
engine for the image id, repo digests and labels. When the API is not consulted, the
section says why. The engine is asked at most once per process (DESIGN.md §8).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Mapping

#: How long one Docker API request may take.
DOCKER_TIMEOUT_S = 2.0

_ID = r"([0-9a-f]{64})"
#: Container ids in ``/proc/self/cgroup`` paths (cgroup v1, and systemd scopes).
_CGROUP_ID = (
    re.compile(r"(?:docker|cri-containerd|crio|libpod)-" + _ID + r"\.scope"),
    re.compile(r"/(?:docker|kubepods[^:\n]*|lxc|ecs/[^/\n]+)/" + _ID),
)
#: Container ids in the source path of the files a runtime bind-mounts into its container.
#: (containerd's ``/sandboxes/<id>`` names the pod sandbox — the pause container — so it
#: is not one of them.)
_MOUNT_ID = (
    re.compile(r"/docker/containers/" + _ID + r"/"),        # Docker
    re.compile(r"/overlay-containers/" + _ID + r"/"),       # Podman
)
#: Mount points the runtime fills from a per-container directory. Only these lines are
#: read: a *host* running containers lists their mounts too, under other mount points.
_RUNTIME_MOUNT_POINTS = ("/etc/hostname", "/etc/hosts", "/etc/resolv.conf")
_SHORT_ID = re.compile(r"^[0-9a-f]{12}$")
_SERVICE_ACCOUNT = "var/run/secrets/kubernetes.io/serviceaccount/namespace"


def container_info(
    root: Path = Path("/"),
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """What the process can learn about its container, locally and from the Docker API."""
    env = os.environ if environ is None else environ
    markers = [
        name
        for name, present in (
            ("/.dockerenv", (root / ".dockerenv").exists()),
            ("/run/.containerenv", (root / "run/.containerenv").exists()),
            ("container env var", bool(env.get("container"))),
        )
        if present
    ]
    container_id, id_source = _container_id(root)
    kubernetes = _kubernetes(root, env)
    in_container = bool(markers or container_id or kubernetes)
    section: dict[str, Any] = {"in_container": in_container, "markers": markers}
    if container_id:
        section["id"] = container_id
        section["id_source"] = id_source
    if kubernetes:
        section["kubernetes"] = kubernetes
    if not in_container:
        section["api"] = {"used": False, "reason": "not running in a container"}
        return section
    ref = container_id or _hostname_id(env)
    if ref is None:
        section["api"] = {
            "used": False,
            "reason": "container id not found in /proc/self/mountinfo, /proc/self/cgroup or HOSTNAME",
        }
        return section
    section["api"] = _ask_engine(ref, root, env)
    return section


def _container_id(root: Path) -> tuple[str | None, str | None]:
    """The container's id: from its cgroup path (cgroup v1, systemd scopes), else from the
    source of its ``/etc/hostname``-style bind mounts (cgroup v2 hides the path)."""
    cgroup = _read(root / "proc/self/cgroup")
    for pattern in _CGROUP_ID:
        match = pattern.search(cgroup)
        if match:
            return match.group(1), "/proc/self/cgroup"
    for line in _read(root / "proc/self/mountinfo").splitlines():
        fields = line.split()
        # proc(5): 4th field is the root of the mount in its filesystem, 5th the mount point.
        if len(fields) < 5 or fields[4] not in _RUNTIME_MOUNT_POINTS:
            continue
        for pattern in _MOUNT_ID:
            match = pattern.search(fields[3])
            if match:
                return match.group(1), "/proc/self/mountinfo"
    return None, None


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def _hostname_id(env: Mapping[str, str]) -> str | None:
    """Docker names a container's host after its short id unless told otherwise."""
    hostname = env.get("HOSTNAME", "")
    return hostname if _SHORT_ID.match(hostname) else None


def _kubernetes(root: Path, env: Mapping[str, str]) -> dict[str, Any]:
    if "KUBERNETES_SERVICE_HOST" not in env:
        return {}
    try:
        namespace = (root / _SERVICE_ACCOUNT).read_text().strip()
    except OSError:
        namespace = env.get("POD_NAMESPACE")
    return {
        "pod": env.get("POD_NAME") or env.get("HOSTNAME"),
        "namespace": namespace,
        "node": env.get("NODE_NAME"),
        "service_host": env.get("KUBERNETES_SERVICE_HOST"),
    }


def _docker_endpoint(root: Path, env: Mapping[str, str]) -> str | None:
    if env.get("DOCKER_HOST"):
        return env["DOCKER_HOST"]
    socket = root / "var/run/docker.sock"
    if socket.exists():
        return f"unix://{socket}"
    return None


def _ask_engine(ref: str, root: Path, env: Mapping[str, str]) -> dict[str, Any]:
    endpoint = _docker_endpoint(root, env)
    if endpoint is None:
        return {"used": False, "reason": "no Docker API: DOCKER_HOST is unset and /var/run/docker.sock is absent"}
    try:
        import docker
        from docker.errors import DockerException
    except ImportError as exc:
        return {"used": False, "endpoint": endpoint, "reason": f"docker SDK not installed: {exc}"}
    try:
        if env.get("DOCKER_HOST"):  # also honours DOCKER_TLS_VERIFY / DOCKER_CERT_PATH
            client = docker.DockerClient.from_env(environment=dict(env), timeout=DOCKER_TIMEOUT_S)
        else:
            client = docker.DockerClient(base_url=endpoint, timeout=DOCKER_TIMEOUT_S)
    except DockerException as exc:
        return {"used": False, "endpoint": endpoint, "reason": f"Docker API not reachable: {exc}"}
    try:
        try:
            attrs = client.api.inspect_container(ref)
        except DockerException as exc:
            return {"used": False, "endpoint": endpoint, "reason": f"Docker API could not describe container {ref}: {exc}"}
        config = attrs.get("Config") or {}
        image_id = attrs.get("Image")
        section: dict[str, Any] = {
            "used": True,
            "endpoint": endpoint,
            "container": {
                "id": attrs.get("Id"),
                "name": (attrs.get("Name") or "").lstrip("/") or None,
                "created": attrs.get("Created"),
                "labels": config.get("Labels") or {},
            },
            "image": {"id": image_id, "reference": config.get("Image"), "repo_digests": [], "repo_tags": [], "labels": {}},
        }
        try:
            image = client.api.inspect_image(image_id) if image_id else {}
        except DockerException as exc:
            section["image"]["error"] = f"Docker API could not describe image {image_id}: {exc}"
            return section
        section["image"].update(
            repo_digests=image.get("RepoDigests") or [],
            repo_tags=image.get("RepoTags") or [],
            labels=(image.get("Config") or {}).get("Labels") or {},
        )
        return section
    except ValueError as exc:  # a body that is not JSON (requests' JSONDecodeError)
        return {"used": False, "endpoint": endpoint, "reason": f"Docker API answered with something that is not JSON: {exc}"}
    except OSError as exc:  # requests' ConnectionError/Timeout derive from OSError
        return {"used": False, "endpoint": endpoint, "reason": f"Docker API not reachable: {exc}"}
    finally:
        client.close()
