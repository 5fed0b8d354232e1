"""The ``container`` probe: local evidence, and the Docker Engine API over a real HTTP exchange.

The Docker API side is exercised with the real ``docker`` SDK talking HTTP/1.1 to a fake
Docker Engine served by the test on a unix socket (:class:`FakeEngine`). The fake records
every request it sees, so the tests can prove the SDK really asked for the container and
the image — and that it was *not* contacted where the probe must not ask.

Every section the probe returns is also checked to survive a JSON round trip and to
validate against the ``container`` part of the shipped manifest schema.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import socketserver
import tempfile
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, Iterator, Mapping

import jsonschema
import pytest

from mlflow_provenance.environment import container
from mlflow_provenance.environment.container import container_info
from mlflow_provenance.environment.manifest import schema as manifest_schema

# --- test data ---------------------------------------------------------------------------------

API_VERSION = "1.44"

#: The container the process runs in, its image, and an unrelated overlay layer id (a decoy:
#: 64 hex digits that appear in every Docker mountinfo but are not the container id).
CID = "4f3c2b1a0e9d8c7b6a5f4e3d2c1b0a99887766554433221100ffeeddccbbaa01"
IMAGE_HEX = "a1b2c3d4e5f60718293a4b5c6d7e8f90112233445566778899aabbccddeeff00"
IMAGE_ID = "sha256:" + IMAGE_HEX
DIGEST = "ghcr.io/acme/trainer@sha256:" + "d" * 64
LAYER = "9e8d7c6b5a49382716059f8e7d6c5b4a39281706f5e4d3c2b1a0918273645500"
#: Another container on the same engine (or another pod's sandbox on the same node).
OTHER_CID = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
OTHER_IMAGE_ID = "sha256:" + "e" * 64

CONTAINER_LABELS = {"com.acme.team": "vision", "com.docker.compose.service": "trainer"}
IMAGE_LABELS = {"org.opencontainers.image.revision": "5e1f0c2", "org.opencontainers.image.source": "https://github.com/acme/trainer"}

DOCKER_MOUNTINFO = f"""\
1265 1243 0:120 / / rw,relatime master:1 - overlay overlay rw,lowerdir=/var/lib/docker/overlay2/l/Q2X4:/var/lib/docker/overlay2/l/7HJK,upperdir=/var/lib/docker/overlay2/{LAYER}/diff,workdir=/var/lib/docker/overlay2/{LAYER}/work
1266 1265 0:123 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw
1267 1265 0:124 / /dev rw,nosuid - tmpfs tmpfs rw,size=65536k,mode=755
1270 1265 0:27 / /sys/fs/cgroup ro,nosuid,nodev,noexec,relatime - cgroup2 cgroup rw,nsdelegate,memory_recursiveprot
1275 1265 259:2 /var/lib/docker/containers/{CID}/resolv.conf /etc/resolv.conf rw,relatime - ext4 /dev/nvme0n1p2 rw
1276 1265 259:2 /var/lib/docker/containers/{CID}/hostname /etc/hostname rw,relatime - ext4 /dev/nvme0n1p2 rw
1277 1265 259:2 /var/lib/docker/containers/{CID}/hosts /etc/hosts rw,relatime - ext4 /dev/nvme0n1p2 rw
"""

#: A mountinfo with no container id in it (only the overlay layer decoy).
PLAIN_MOUNTINFO = f"""\
1265 1243 0:120 / / rw,relatime master:1 - overlay overlay rw,lowerdir=/var/lib/docker/overlay2/l/Q2X4,upperdir=/var/lib/docker/overlay2/{LAYER}/diff,workdir=/var/lib/docker/overlay2/{LAYER}/work
1266 1265 0:123 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw
1275 1265 259:2 /etc/resolv.conf /etc/resolv.conf rw,relatime - ext4 /dev/nvme0n1p2 rw
"""

#: A bare-metal host (no container): its own mounts only.
HOST_MOUNTINFO = """\
22 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw
23 22 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
24 22 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:2 - sysfs sysfs rw
25 24 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
26 22 0:5 / /dev rw,nosuid,relatime shared:7 - devtmpfs udev rw,size=32768k,nr_inodes=8192,mode=755
"""
HOST_CGROUP = "0::/user.slice/user-1000.slice/session-3.scope\n"


# --- a fake Docker Engine API on a unix socket ------------------------------------------------


class _EngineServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    engine: "FakeEngine"

    def handle_error(self, request: Any, client_address: Any) -> None:  # noqa: D102
        pass  # a client that timed out and hung up is expected in one test


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _EngineServer

    def handle(self) -> None:
        self.server.engine.connections += 1
        super().handle()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    def _reply(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Api-Version", API_VERSION)
        self.send_header("Server", "Docker/26.1.0 (linux)")
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
        self.server.engine.requests.append(("GET", path))
        status, body = self.server.engine.answer(path)
        self._reply(status, body)

    def _refuse(self) -> None:
        self.server.engine.requests.append((self.command, self.path))
        self._reply(405, {"message": "the fake engine only answers GET"})

    do_POST = do_PUT = do_DELETE = do_HEAD = _refuse


class FakeEngine:
    """Answers what ``docker.DockerClient`` + ``inspect_container``/``inspect_image`` request."""

    _CONTAINER = re.compile(r"^/v\d+\.\d+/containers/([^/]+)/json$")
    _IMAGE = re.compile(r"^/v\d+\.\d+/images/(.+)/json$")

    def __init__(self, socket_path: str) -> None:
        self.socket_path = socket_path
        self.endpoint = "unix://" + socket_path
        self.containers: dict[str, dict[str, Any]] = {}
        self.images: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str]] = []
        self.connections = 0
        self.hang_on_containers = False
        self.release = threading.Event()
        self._server = _EngineServer(socket_path, _Handler)
        self._server.engine = self
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def add_container(self, attrs: dict[str, Any]) -> None:
        self.containers[attrs["Id"]] = attrs

    def add_image(self, attrs: dict[str, Any]) -> None:
        self.images[attrs["Id"]] = attrs

    def paths(self) -> list[str]:
        return [path for _, path in self.requests]

    def answer(self, path: str) -> tuple[int, Any]:
        if re.fullmatch(r"(/v\d+\.\d+)?/version", path):
            return 200, {
                "Version": "26.1.0",
                "ApiVersion": API_VERSION,
                "MinAPIVersion": "1.24",
                "Os": "linux",
                "Arch": "amd64",
                "KernelVersion": "6.5.0-1015-aws",
                "GitCommit": "ac2de55",
                "GoVersion": "go1.21.9",
            }
        match = self._CONTAINER.match(path)
        if match:
            if self.hang_on_containers:
                self.release.wait(15)
            ref = match.group(1)
            found = self._find_container(ref)
            if found is None:
                return 404, {"message": f"No such container: {ref}"}
            return 200, found
        match = self._IMAGE.match(path)
        if match:
            ref = match.group(1)
            found = self.images.get(ref) or self.images.get("sha256:" + ref)
            if found is None:
                return 404, {"message": f"No such image: {ref}"}
            return 200, found
        return 404, {"message": "page not found"}

    def _find_container(self, ref: str) -> dict[str, Any] | None:
        """Like the engine: a full id, a name, or an unambiguous id prefix."""
        if ref in self.containers:
            return self.containers[ref]
        named = [c for c in self.containers.values() if c.get("Name") == "/" + ref]
        prefixed = [c for cid, c in self.containers.items() if cid.startswith(ref)]
        hits = named or prefixed
        return hits[0] if len(hits) == 1 else None


def _container_attrs(cid: str = CID, image_id: str = IMAGE_ID, name: str = "/trainer") -> dict[str, Any]:
    return {
        "Id": cid,
        "Created": "2024-05-01T12:00:00.123456789Z",
        "Path": "python",
        "Args": ["train.py"],
        "State": {"Status": "running", "Running": True, "Pid": 4242},
        "Image": image_id,
        "Name": name,
        "Config": {
            "Hostname": cid[:12],
            "Image": "ghcr.io/acme/trainer:1.4",
            "Labels": dict(CONTAINER_LABELS),
            "Env": ["PATH=/usr/local/bin:/usr/bin"],
        },
    }


def _image_attrs(image_id: str = IMAGE_ID) -> dict[str, Any]:
    return {
        "Id": image_id,
        "RepoTags": ["ghcr.io/acme/trainer:1.4"],
        "RepoDigests": [DIGEST],
        "Created": "2024-04-30T08:00:00Z",
        "Config": {"Labels": dict(IMAGE_LABELS), "Cmd": ["python"]},
    }


@pytest.fixture
def short_dir() -> Iterator[str]:
    """A directory with a short path: unix socket paths are limited to ~107 bytes."""
    path = tempfile.mkdtemp(prefix="fde-", dir="/tmp")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def engine(short_dir: str) -> Iterator[FakeEngine]:
    """A fake Docker Engine that knows the container ``CID`` and its image."""
    fake = FakeEngine(os.path.join(short_dir, "docker.sock"))
    fake.add_container(_container_attrs())
    fake.add_image(_image_attrs())
    fake.start()
    yield fake
    fake.stop()


# --- helpers -----------------------------------------------------------------------------------


def make_root(base: Path, files: Mapping[str, str]) -> Path:
    """A fake filesystem root holding ``files`` (paths relative to ``/``)."""
    root = base / "root"
    root.mkdir(exist_ok=True)
    for relative, content in files.items():
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
    return root


def probe(root: Path, environ: Mapping[str, str]) -> dict[str, Any]:
    """``container_info`` plus the checks every section must pass."""
    section = container_info(root, dict(environ))
    assert json.loads(json.dumps(section)) == section, "the section must be plain JSON"
    shipped = manifest_schema()
    sub_schema = {"$defs": shipped["$defs"], **shipped["properties"]["container"]}
    jsonschema.Draft202012Validator(sub_schema).validate(section)
    return section


def _container_path(ref: str) -> str:
    return f"/v{API_VERSION}/containers/{ref}/json"


def _image_path(ref: str) -> str:
    return f"/v{API_VERSION}/images/{ref}/json"


# --- 1. Docker, cgroup v2, API up -------------------------------------------------------------


def test_docker_container_described_by_engine_over_real_http(tmp_path: Path, engine: FakeEngine) -> None:
    root = make_root(tmp_path, {".dockerenv": "", "proc/self/mountinfo": DOCKER_MOUNTINFO, "proc/self/cgroup": "0::/\n"})

    section = probe(root, {"DOCKER_HOST": engine.endpoint, "HOSTNAME": CID[:12]})

    assert section["in_container"] is True
    assert section["markers"] == ["/.dockerenv"]
    assert section["id"] == CID  # not the overlay layer id that also sits in mountinfo
    assert section["id_source"] == "/proc/self/mountinfo"
    assert "kubernetes" not in section
    api = section["api"]
    assert api["used"] is True, api
    assert api["endpoint"] == engine.endpoint
    assert api["container"] == {
        "id": CID,
        "name": "trainer",
        "created": "2024-05-01T12:00:00.123456789Z",
        "labels": CONTAINER_LABELS,
    }
    assert api["image"] == {
        "id": IMAGE_ID,
        "reference": "ghcr.io/acme/trainer:1.4",
        "repo_digests": [DIGEST],
        "repo_tags": ["ghcr.io/acme/trainer:1.4"],
        "labels": IMAGE_LABELS,
    }
    # A real exchange: version negotiation, then the container by id, then its image by id.
    paths = engine.paths()
    assert paths[0] == "/version"
    assert _container_path(CID) in paths
    assert _image_path(IMAGE_ID) in paths
    assert paths.index(_container_path(CID)) < paths.index(_image_path(IMAGE_ID))


def test_engine_fields_missing_or_null_become_empty_not_errors(tmp_path: Path, engine: FakeEngine) -> None:
    """An engine that returns null labels, no name and an image without digests (local build)."""
    bare_image = "sha256:" + "b" * 64
    engine.add_container({"Id": OTHER_CID, "Image": bare_image, "Name": "", "Config": {"Image": "trainer:dev", "Labels": None}})
    engine.add_image({"Id": bare_image, "RepoTags": None, "RepoDigests": [], "Config": {"Labels": None}})
    mountinfo = DOCKER_MOUNTINFO.replace(CID, OTHER_CID)
    root = make_root(tmp_path, {".dockerenv": "", "proc/self/mountinfo": mountinfo})

    api = probe(root, {"DOCKER_HOST": engine.endpoint})["api"]

    assert api["used"] is True, api
    assert api["container"]["id"] == OTHER_CID
    assert api["container"]["name"] is None
    assert api["container"]["labels"] == {}
    assert api["image"] == {"id": bare_image, "reference": "trainer:dev", "repo_digests": [], "repo_tags": [], "labels": {}}
    assert _image_path(bare_image) in engine.paths()


def test_docker_host_wins_over_mounted_socket(tmp_path: Path, engine: FakeEngine) -> None:
    root = make_root(tmp_path, {".dockerenv": "", "proc/self/mountinfo": DOCKER_MOUNTINFO, "var/run/docker.sock": ""})

    api = probe(root, {"DOCKER_HOST": engine.endpoint})["api"]

    assert api["used"] is True, api
    assert api["endpoint"] == engine.endpoint
    assert _container_path(CID) in engine.paths()


# --- 2. ids from /proc/self/cgroup -----------------------------------------------------------


@pytest.mark.parametrize(
    "cgroup",
    [
        pytest.param(
            "12:memory:/docker/{id}\n11:cpu,cpuacct:/docker/{id}\n1:name=systemd:/docker/{id}\n0::/system.slice/containerd.service\n",
            id="cgroup-v1-docker",
        ),
        pytest.param("0::/system.slice/docker-{id}.scope\n", id="systemd-docker-scope"),
        pytest.param(
            "11:memory:/kubepods/burstable/pod5f8e4c1a-2b3d-4e5f-8a9b-0c1d2e3f4a5b/{id}\n"
            "1:name=systemd:/kubepods/burstable/pod5f8e4c1a-2b3d-4e5f-8a9b-0c1d2e3f4a5b/{id}\n",
            id="kubepods-cgroup-v1",
        ),
        pytest.param(
            "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod5f8e4c1a_2b3d.slice/cri-containerd-{id}.scope\n",
            id="kubepods-systemd-containerd",
        ),
        pytest.param("3:cpuset:/ecs/0d8c1a2b3c4d4e5f8a9b0c1d2e3f4a5b/{id}\n", id="ecs"),
    ],
)
def test_container_id_from_cgroup(tmp_path: Path, cgroup: str) -> None:
    root = make_root(tmp_path, {"proc/self/mountinfo": PLAIN_MOUNTINFO, "proc/self/cgroup": cgroup.format(id=CID)})

    section = probe(root, {})

    assert section["in_container"] is True  # the id alone is evidence
    assert section["markers"] == []
    assert section["id"] == CID
    assert section["id_source"] == "/proc/self/cgroup"
    assert section["api"]["used"] is False
    assert "no Docker API" in section["api"]["reason"]


def test_cgroup_v1_id_is_the_one_the_engine_is_asked_for(tmp_path: Path, engine: FakeEngine) -> None:
    root = make_root(tmp_path, {".dockerenv": "", "proc/self/cgroup": f"12:memory:/docker/{CID}\n"})

    section = probe(root, {"DOCKER_HOST": engine.endpoint})

    assert section["id_source"] == "/proc/self/cgroup"
    assert section["api"]["used"] is True, section["api"]
    assert section["api"]["image"]["repo_digests"] == [DIGEST]
    assert _container_path(CID) in engine.paths()


def test_overlay_layer_ids_are_not_container_ids(tmp_path: Path) -> None:
    root = make_root(tmp_path, {".dockerenv": "", "proc/self/mountinfo": PLAIN_MOUNTINFO, "proc/self/cgroup": "0::/\n"})

    section = probe(root, {})

    assert section["in_container"] is True
    assert "id" not in section and "id_source" not in section
    assert section["api"]["used"] is False
    assert "container id not found" in section["api"]["reason"]


# --- 3. short id from HOSTNAME ---------------------------------------------------------------


def test_short_id_from_hostname_is_sent_to_engine(tmp_path: Path, engine: FakeEngine) -> None:
    root = make_root(tmp_path, {".dockerenv": "", "proc/self/mountinfo": PLAIN_MOUNTINFO, "proc/self/cgroup": "0::/\n"})

    section = probe(root, {"DOCKER_HOST": engine.endpoint, "HOSTNAME": CID[:12]})

    assert _container_path(CID[:12]) in engine.paths()
    api = section["api"]
    assert api["used"] is True, api
    assert api["container"]["id"] == CID  # the engine resolved the short id
    assert api["image"]["id"] == IMAGE_ID
    assert api["image"]["labels"] == IMAGE_LABELS


@pytest.mark.parametrize("hostname", ["trainer-7f9c", CID[:12].upper(), CID[:13], CID[:11], ""])
def test_hostname_that_is_not_a_short_id_is_not_used(tmp_path: Path, engine: FakeEngine, hostname: str) -> None:
    root = make_root(tmp_path, {".dockerenv": "", "proc/self/cgroup": "0::/\n"})

    section = probe(root, {"DOCKER_HOST": engine.endpoint, "HOSTNAME": hostname})

    assert section["api"] == {
        "used": False,
        "reason": "container id not found in /proc/self/mountinfo, /proc/self/cgroup or HOSTNAME",
    }
    assert engine.connections == 0


# --- 4. API unreachable ----------------------------------------------------------------------


def _assert_unreachable(section: dict[str, Any], endpoint: str) -> None:
    api = section["api"]
    assert api["used"] is False
    assert api["endpoint"] == endpoint
    assert "not reachable" in api["reason"]
    assert section["id"] == CID  # local evidence is kept


def test_api_socket_missing(tmp_path: Path, short_dir: str) -> None:
    root = make_root(tmp_path, {".dockerenv": "", "proc/self/mountinfo": DOCKER_MOUNTINFO})
    endpoint = "unix://" + os.path.join(short_dir, "nobody.sock")

    started = time.monotonic()
    section = probe(root, {"DOCKER_HOST": endpoint})

    _assert_unreachable(section, endpoint)
    assert time.monotonic() - started < 30


def test_api_socket_stale(tmp_path: Path, short_dir: str) -> None:
    """A socket file that nobody listens on any more (connection refused)."""
    path = os.path.join(short_dir, "stale.sock")
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(path)
    stale.close()
    assert os.path.exists(path)
    root = make_root(tmp_path, {".dockerenv": "", "proc/self/mountinfo": DOCKER_MOUNTINFO})

    section = probe(root, {"DOCKER_HOST": "unix://" + path})

    _assert_unreachable(section, "unix://" + path)


def test_api_tcp_port_closed(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    endpoint = f"tcp://127.0.0.1:{port}"
    root = make_root(tmp_path, {".dockerenv": "", "proc/self/mountinfo": DOCKER_MOUNTINFO})

    section = probe(root, {"DOCKER_HOST": endpoint})

    _assert_unreachable(section, endpoint)


def test_engine_that_stops_answering_times_out(tmp_path: Path, engine: FakeEngine) -> None:
    """It answers /version, then hangs on the container: the SDK's timeout ends the wait."""
    engine.hang_on_containers = True
    root = make_root(tmp_path, {".dockerenv": "", "proc/self/mountinfo": DOCKER_MOUNTINFO})

    started = time.monotonic()
    section = probe(root, {"DOCKER_HOST": engine.endpoint})
    elapsed = time.monotonic() - started

    _assert_unreachable(section, engine.endpoint)
    assert _container_path(CID) in engine.paths()
    assert elapsed >= container.DOCKER_TIMEOUT_S * 0.9  # it did wait for the engine ...
    assert elapsed < 12  # ... but not for the engine's 15 s hang


# --- 5. container or image unknown to the engine ---------------------------------------------


def test_container_unknown_to_engine(tmp_path: Path, engine: FakeEngine) -> None:
    mountinfo = DOCKER_MOUNTINFO.replace(CID, OTHER_CID)
    root = make_root(tmp_path, {".dockerenv": "", "proc/self/mountinfo": mountinfo})

    section = probe(root, {"DOCKER_HOST": engine.endpoint})

    assert section["id"] == OTHER_CID
    api = section["api"]
    assert api["used"] is False
    assert api["endpoint"] == engine.endpoint
    assert OTHER_CID in api["reason"]
    assert "could not describe container" in api["reason"]
    assert _container_path(OTHER_CID) in engine.paths()
    assert not any("/images/" in p for p in engine.paths())


def test_image_unknown_to_engine(tmp_path: Path, engine: FakeEngine) -> None:
    engine.add_container(_container_attrs(cid=OTHER_CID, image_id=OTHER_IMAGE_ID, name="/orphan"))
    root = make_root(tmp_path, {".dockerenv": "", "proc/self/mountinfo": DOCKER_MOUNTINFO.replace(CID, OTHER_CID)})

    api = probe(root, {"DOCKER_HOST": engine.endpoint})["api"]

    # What the engine said about the container is kept; the image's absence is named.
    assert api["used"] is True
    assert api["container"]["id"] == OTHER_CID
    assert api["image"]["id"] == OTHER_IMAGE_ID and api["image"]["repo_digests"] == []
    assert OTHER_IMAGE_ID in api["image"]["error"]
    assert _image_path(OTHER_IMAGE_ID) in engine.paths()


# --- 6. no Docker API ------------------------------------------------------------------------


def test_no_docker_api(tmp_path: Path) -> None:
    root = make_root(tmp_path, {".dockerenv": "", "proc/self/mountinfo": DOCKER_MOUNTINFO})

    section = probe(root, {"HOSTNAME": CID[:12], "DOCKER_HOST": ""})

    assert section["id"] == CID
    api = section["api"]
    assert api["used"] is False
    assert "endpoint" not in api
    assert "no Docker API" in api["reason"]


def test_mounted_socket_is_the_endpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With no DOCKER_HOST, a mounted /var/run/docker.sock is used, with the probe's timeout.

    The client is replaced here only to keep the test off whatever engine this machine runs.
    """
    import docker
    from docker.errors import DockerException

    seen: list[dict[str, Any]] = []

    def client(**kwargs: Any) -> Any:
        seen.append(kwargs)
        raise DockerException("refused by the test")

    monkeypatch.setattr(docker, "DockerClient", client)
    root = make_root(tmp_path, {".dockerenv": "", "proc/self/mountinfo": DOCKER_MOUNTINFO, "var/run/docker.sock": ""})

    api = probe(root, {})["api"]

    endpoint = f"unix://{root}/var/run/docker.sock"  # under the probed root ("/" in production)
    assert seen == [{"base_url": endpoint, "timeout": container.DOCKER_TIMEOUT_S}]
    assert api == {
        "used": False,
        "endpoint": endpoint,
        "reason": "Docker API not reachable: refused by the test",
    }


# --- 7. not in a container -------------------------------------------------------------------


@pytest.mark.parametrize("files", [{}, {"proc/self/mountinfo": HOST_MOUNTINFO, "proc/self/cgroup": HOST_CGROUP}], ids=["empty-root", "host"])
def test_not_in_container_never_contacts_engine(tmp_path: Path, engine: FakeEngine, files: dict[str, str]) -> None:
    root = make_root(tmp_path, files)

    section = probe(root, {"DOCKER_HOST": engine.endpoint, "HOSTNAME": CID[:12]})

    assert section == {
        "in_container": False,
        "markers": [],
        "api": {"used": False, "reason": "not running in a container"},
    }
    assert engine.connections == 0
    assert engine.requests == []


def test_not_in_container_empty_environ(tmp_path: Path) -> None:
    section = probe(make_root(tmp_path, {}), {})

    assert section["in_container"] is False
    assert section["api"] == {"used": False, "reason": "not running in a container"}


def _host_with_shm_mount(kind: str) -> str:
    if kind == "docker":
        line = f"612 22 0:58 / /var/lib/docker/containers/{OTHER_CID}/mounts/shm rw,nosuid,nodev,noexec,relatime shared:310 - tmpfs shm rw,size=65536k\n"
    elif kind == "containerd":
        line = f"612 22 0:58 / /run/containerd/io.containerd.grpc.v1.cri/sandboxes/{OTHER_CID}/shm rw,nosuid,nodev,noexec,relatime shared:310 - tmpfs shm rw,size=65536k\n"
    else:  # podman
        line = f"612 22 0:58 / /var/lib/containers/storage/overlay-containers/{OTHER_CID}/userdata/shm rw,nosuid,nodev,noexec,relatime shared:310 - tmpfs shm rw,size=64000k\n"
    return HOST_MOUNTINFO + line


@pytest.mark.parametrize("kind", ["docker", "containerd", "podman"])
def test_host_running_other_containers_is_not_a_container(tmp_path: Path, engine: FakeEngine, kind: str) -> None:
    engine.add_container(_container_attrs(cid=OTHER_CID, image_id=IMAGE_ID, name="/someone-else"))
    root = make_root(tmp_path, {"proc/self/mountinfo": _host_with_shm_mount(kind), "proc/self/cgroup": HOST_CGROUP})

    section = probe(root, {"DOCKER_HOST": engine.endpoint})

    assert section["in_container"] is False
    assert "id" not in section
    assert engine.requests == []


# --- 8. Kubernetes ---------------------------------------------------------------------------


def test_kubernetes_pod_namespace_node(tmp_path: Path) -> None:
    root = make_root(
        tmp_path,
        {
            "proc/self/cgroup": f"11:memory:/kubepods/burstable/pod5f8e4c1a-2b3d-4e5f-8a9b-0c1d2e3f4a5b/{CID}\n",
            "var/run/secrets/kubernetes.io/serviceaccount/namespace": "ml-team\n",
        },
    )
    env = {
        "KUBERNETES_SERVICE_HOST": "10.96.0.1",
        "HOSTNAME": "trainer-5d9f7c-x2kq4",
        "NODE_NAME": "gpu-node-3",
        "POD_NAMESPACE": "not-this-one",  # the service account file wins
    }

    section = probe(root, env)

    assert section["in_container"] is True
    assert section["id"] == CID
    assert section["kubernetes"] == {
        "pod": "trainer-5d9f7c-x2kq4",
        "namespace": "ml-team",
        "node": "gpu-node-3",
        "service_host": "10.96.0.1",
    }


def test_kubernetes_downward_api_variables(tmp_path: Path) -> None:
    """POD_NAME wins over HOSTNAME; without a service account, POD_NAMESPACE is used."""
    root = make_root(tmp_path, {"proc/self/cgroup": "0::/\n"})
    env = {
        "KUBERNETES_SERVICE_HOST": "10.96.0.1",
        "HOSTNAME": "trainer-5d9f7c-x2kq4",
        "POD_NAME": "trainer-0",
        "POD_NAMESPACE": "batch",
    }

    section = probe(root, env)

    assert section["in_container"] is True  # Kubernetes alone is evidence
    assert section["markers"] == []
    assert section["kubernetes"] == {"pod": "trainer-0", "namespace": "batch", "node": None, "service_host": "10.96.0.1"}
    # A pod's hostname is its name, not a container id: nothing to ask an engine about.
    assert section["api"]["used"] is False
    assert "container id not found" in section["api"]["reason"]


def test_no_kubernetes_section_outside_kubernetes(tmp_path: Path) -> None:
    root = make_root(tmp_path, {".dockerenv": "", "var/run/secrets/kubernetes.io/serviceaccount/namespace": "ml-team\n"})

    section = probe(root, {"POD_NAME": "trainer-0", "HOSTNAME": "box"})

    assert "kubernetes" not in section


def test_kubernetes_containerd_id_is_the_container_not_the_sandbox(tmp_path: Path) -> None:
    sandbox = OTHER_CID
    cri = "/var/lib/containerd/io.containerd.grpc.v1.cri/sandboxes"
    mountinfo = PLAIN_MOUNTINFO + (
        f"2001 1265 259:2 {cri}/{sandbox}/hostname /etc/hostname rw,relatime - ext4 /dev/nvme0n1p2 rw\n"
        f"2002 1265 259:2 {cri}/{sandbox}/resolv.conf /etc/resolv.conf rw,relatime - ext4 /dev/nvme0n1p2 rw\n"
        f"2003 1267 0:60 / /dev/shm rw,nosuid,nodev,noexec,relatime - tmpfs shm rw,size=65536k\n"
    )
    cgroup = f"11:memory:/kubepods/burstable/pod5f8e4c1a-2b3d-4e5f-8a9b-0c1d2e3f4a5b/{CID}\n"
    root = make_root(tmp_path, {"proc/self/mountinfo": mountinfo, "proc/self/cgroup": cgroup})

    section = probe(root, {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "HOSTNAME": "trainer-0"})

    assert section["id"] == CID


# --- 9. Podman -------------------------------------------------------------------------------


def test_podman_marker_and_id(tmp_path: Path, engine: FakeEngine) -> None:
    """Podman: /run/.containerenv, container=podman, and its Docker-compatible API."""
    storage = "/var/lib/containers/storage/overlay-containers"
    mountinfo = PLAIN_MOUNTINFO + (
        f"1280 1265 259:2 {storage}/{CID}/userdata/hostname /etc/hostname rw,relatime - ext4 /dev/nvme0n1p2 rw\n"
        f"1281 1265 259:2 {storage}/{CID}/userdata/hosts /etc/hosts rw,relatime - ext4 /dev/nvme0n1p2 rw\n"
    )
    root = make_root(
        tmp_path,
        {"run/.containerenv": 'engine="podman-4.9.3"\nname="trainer"\n', "proc/self/mountinfo": mountinfo, "proc/self/cgroup": "0::/\n"},
    )

    section = probe(root, {"container": "podman", "DOCKER_HOST": engine.endpoint})

    assert section["in_container"] is True
    assert section["markers"] == ["/run/.containerenv", "container env var"]
    assert section["id"] == CID
    assert section["id_source"] == "/proc/self/mountinfo"
    assert section["api"]["used"] is True, section["api"]
    assert section["api"]["image"]["repo_digests"] == [DIGEST]
    assert _container_path(CID) in engine.paths()


@pytest.mark.parametrize(
    ("files", "environ", "markers"),
    [
        ({"run/.containerenv": ""}, {}, ["/run/.containerenv"]),
        ({}, {"container": "oci"}, ["container env var"]),
        ({}, {"container": ""}, []),
        ({".dockerenv": "", "run/.containerenv": ""}, {}, ["/.dockerenv", "/run/.containerenv"]),
    ],
)
def test_markers(tmp_path: Path, files: dict[str, str], environ: dict[str, str], markers: list[str]) -> None:
    section = probe(make_root(tmp_path, files), environ)

    assert section["markers"] == markers
    assert section["in_container"] is bool(markers)
