"""Where keys, keyrings and witness state come from (DESIGN.md §7 environment variables).

``MLFLOW_PROVENANCE_KEY``      private Ed25519 key file (PKCS#8 PEM, mode 0600)
``MLFLOW_PROVENANCE_KEYRING``  YAML/JSON keyring of trusted public keys with validity windows
``MLFLOW_PROVENANCE_POLICY``   promotion policy YAML
``MLFLOW_PROVENANCE_HOME``     per-user state (default ``~/.mlflow-provenance``): the key created
                               in embedded mode and the witness of the last checkpoint seen
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from mlflow_provenance.errors import ConfigurationError
from mlflow_provenance.keys import (
    Keyring,
    SigningKey,
    generate_signing_key,
    load_keyring,
    load_signing_key,
    write_signing_key,
)

if TYPE_CHECKING:
    import sqlalchemy as sa

ENV_KEY = "MLFLOW_PROVENANCE_KEY"
ENV_KEYRING = "MLFLOW_PROVENANCE_KEYRING"
ENV_POLICY = "MLFLOW_PROVENANCE_POLICY"
ENV_HOME = "MLFLOW_PROVENANCE_HOME"
ENV_MODE = "MLFLOW_PROVENANCE_MODE"

_SERVER_ENV_MARKER = "_MLFLOW_SERVER_FILE_STORE"


def provenance_home() -> Path:
    """The per-user state directory."""
    return Path(os.environ.get(ENV_HOME) or Path.home() / ".mlflow-provenance")


def default_key_path() -> Path:
    return provenance_home() / "signing_key.pem"


def is_server_process() -> bool:
    """True inside ``mlflow server`` (its CLI process or its workers), or when forced."""
    mode = os.environ.get(ENV_MODE, "").lower()
    if mode in ("server", "embedded"):
        return mode == "server"
    if _SERVER_ENV_MARKER in os.environ:
        return True
    argv = sys.argv
    return len(argv) > 1 and os.path.basename(argv[0]) == "mlflow" and argv[1] == "server"


def resolve_signing_key(*, server: bool) -> SigningKey:
    """The key that signs checkpoints.

    Embedded mode creates one on first use (mode 0600) and says where, once. Server mode
    never does: the operator must provide it.

    Raises:
        ConfigurationError: the configured key is missing, corrupt or readable by others;
            or no key is configured in server mode.
    """
    configured = os.environ.get(ENV_KEY)
    if configured:
        return load_signing_key(Path(configured))
    if server:
        raise ConfigurationError(
            f"mlflow server with a provenance store needs a signing key, and {ENV_KEY} is not "
            f"set. Create one with `mlflow-provenance keygen --out /path/to/provenance.key`, "
            f"then start the server with {ENV_KEY}=/path/to/provenance.key. Refusing to start."
        )
    path = default_key_path()
    if path.exists():
        return load_signing_key(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = generate_signing_key()
    try:
        write_signing_key(key, path)
    except ConfigurationError:
        # Another process created it between our check and our write: use theirs.
        return load_signing_key(path)
    print(
        f"mlflow-provenance: created a signing key at {path} (key id {key.public_key.key_id}). "
        f"Set {ENV_KEY} to use another.",
        file=sys.stderr,
    )
    return key


def existing_signing_key() -> SigningKey:
    """The configured signing key, or the embedded-mode key if one exists; never creates one.

    Raises:
        ConfigurationError: no key configured or found, or the key file is unusable.
    """
    configured = os.environ.get(ENV_KEY)
    if configured:
        return load_signing_key(Path(configured))
    if default_key_path().exists():
        return load_signing_key(default_key_path())
    raise ConfigurationError(
        f"No signing key: set {ENV_KEY} to the ledger's private key file (signed exports are "
        f"signed with the key that signs the ledger's checkpoints)."
    )


def trusted_keyring() -> Keyring:
    """Public keys a verifier trusts: the keyring file, plus the configured signing key's.

    Raises:
        ConfigurationError: a configured keyring or key is missing or malformed, or there
            is no trusted key at all.
    """
    keyring_path = os.environ.get(ENV_KEYRING)
    keyring = load_keyring(Path(keyring_path)) if keyring_path else None
    key_path = os.environ.get(ENV_KEY)
    own: SigningKey | None = None
    if key_path:
        own = load_signing_key(Path(key_path))
    elif default_key_path().exists():
        own = load_signing_key(default_key_path())
    if keyring is None and own is None:
        raise ConfigurationError(
            f"No trusted public key: set {ENV_KEYRING} to a keyring file, or {ENV_KEY} to the "
            f"signing key file, so that checkpoint signatures can be checked."
        )
    if keyring is None:
        return Keyring.from_signing_key(own)
    if own is not None and keyring.entry_for_key_id(own.public_key.key_id) is None:
        keyring.add(own.public_key)
    return keyring


def database_identity(url: "sa.engine.URL") -> str:
    """Which database a ledger lives in, independent of the ledger itself.

    The witness is keyed by this, not by the ledger's origin: a ledger wiped and started
    anew in the same database gets a new origin, and must not escape the old witness.
    SQLite paths are made absolute; passwords are never part of it.
    """
    if url.get_backend_name() == "sqlite":
        return "sqlite:" + os.path.abspath(url.database or "")
    return f"{url.get_backend_name()}://{url.host or ''}:{url.port or ''}/{url.database or ''}"


def witness_path(database: str) -> Path:
    """File holding the newest checkpoint this user has seen for ``database``."""
    name = hashlib.sha256(database.encode()).hexdigest()[:24]
    return provenance_home() / "witness" / f"{name}.json"


def read_witness(database: str) -> dict | None:
    """The witnessed checkpoint of ``database`` (``origin``, ``size``, ``root``, ``note``), or None.

    Raises:
        ConfigurationError: the witness file exists but cannot be read.
    """
    path = witness_path(database)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ConfigurationError(
            f"The witness file {path} is unreadable ({exc}); remove it to start witnessing anew."
        ) from None


_witness_lock = threading.Lock()


def write_witness(database: str, origin: str, size: int, root_hex: str, note: str) -> None:
    """Remember a checkpoint of ``database``, keeping the larger tree of the same ledger.

    A checkpoint of another origin (a new ledger in this database) is not recorded: the
    witness must keep showing the ledger it saw, so that ``verify`` reports the replacement.
    """
    path = witness_path(database)
    with _witness_lock:
        try:
            current = read_witness(database)
        except ConfigurationError:
            current = None
        if current and (current.get("origin") != origin or int(current.get("size", 0)) >= size):
            return
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        with os.fdopen(fd, "w") as handle:
            json.dump({"database": database, "origin": origin, "size": size, "root": root_hex, "note": note}, handle)
        os.replace(tmp, path)
