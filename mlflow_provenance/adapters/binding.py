"""Attaching the ledger to an MLflow SQL store.

Both stores (tracking and registry) share one :class:`~mlflow_provenance.recorder.Recorder`
per database engine. :func:`bind_sessions` makes every session the store opens report to
it; :func:`record_write_methods` wraps each public write method so that the ledger
event carries the method's name (capture itself does not depend on the wrapping: a
write through an unwrapped path is still captured by the triggers, under a generic name).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import threading
import weakref
from typing import Any, Callable, Iterator

import sqlalchemy as sa

from mlflow_provenance import config, ledger_schema
from mlflow_provenance.checkpoint import parse_checkpoint
from mlflow_provenance.keys import SigningKey
from mlflow_provenance.ledger import LedgerWriter, append_genesis
from mlflow_provenance.recorder import Recorder, operation

_logger = logging.getLogger(__name__)

#: Name prefixes of store methods that only read.
READ_PREFIXES = (
    "get_",
    "search_",
    "list_",
    "count_",
    "find_",
    "batch_get_",
    "query_",
    "calculate_",
    "resolve_",
    "supports_",
)
#: Public methods that look like reads by name but write.
WRITES_DESPITE_NAME = frozenset({"get_or_create_user_queue"})
#: Public methods that neither read nor write the database (pure helpers MLflow calls
#: once per metric: wrapping them would only add cost).
NOT_DATABASE_METHODS = frozenset({"sanitize_metric_value"})

#: Engines of the provenance stores, shared by tracking and registry store of one database
#: and never by a plain MLflow store in the same process.
ENGINES: dict[str, sa.engine.Engine] = {}
ENGINES_LOCK = threading.Lock()

_recorders: weakref.WeakKeyDictionary[sa.engine.Engine, Recorder] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def is_write_method(name: str) -> bool:
    """Whether a public store method is treated as a write (and so recorded)."""
    if name.startswith("_") or name in NOT_DATABASE_METHODS:
        return False
    return name in WRITES_DESPITE_NAME or not name.startswith(READ_PREFIXES)


def public_write_methods(cls: type) -> list[str]:
    """Every public write method of ``cls``, found by introspection."""
    names = []
    for name, value in inspect.getmembers(cls):
        if is_write_method(name) and inspect.isfunction(inspect.getattr_static(cls, name, None)):
            names.append(name)
    return sorted(names)


def signing_key() -> SigningKey:
    """The checkpoint signing key for a store being built in this process.

    Resolved before the store touches the database, so a misconfigured key leaves the
    database untouched.

    Raises:
        ConfigurationError: see :func:`mlflow_provenance.config.resolve_signing_key`.
    """
    return config.resolve_signing_key(server=config.is_server_process())


def recorder_for(engine: sa.engine.Engine, key: SigningKey) -> Recorder:
    """The recorder of ``engine``, creating the ledger schema on first use.

    Raises:
        ConfigurationError: no usable signing key, unsupported database, newer ledger format.
    """
    with _lock:
        recorder = _recorders.get(engine)
        if recorder is not None:
            return recorder
        meta = ledger_schema.ensure_schema(engine)
        origin = meta["origin"]
        recorder = Recorder(
            engine,
            LedgerWriter(origin, key),
            actor=current_actor,
            on_checkpoint=functools.partial(_witness, config.database_identity(engine.url), origin),
        )
        with engine.begin() as conn, ledger_schema.schema_lock(conn):
            genesis = append_genesis(conn, recorder.writer, current_actor())
        if genesis is not None and genesis.checkpoint_note:
            _witness(config.database_identity(engine.url), origin, genesis.checkpoint_note)
        _recorders[engine] = recorder
        return recorder


def dispose_engines() -> None:
    """Close every provenance engine of this process (tests, and dropping a database)."""
    with ENGINES_LOCK:
        for engine in ENGINES.values():
            engine.dispose()
        ENGINES.clear()


_witnessed: dict[tuple[str, str], int] = {}


def _witness(database: str, origin: str, note: str) -> None:
    """Remember the newest checkpoint outside the database (a rollback then shows)."""
    checkpoint, _ = parse_checkpoint(note)
    if _witnessed.get((database, origin), -1) >= checkpoint.size:
        return
    config.write_witness(database, origin, checkpoint.size, checkpoint.root.hex(), note)
    _witnessed[(database, origin)] = checkpoint.size


def bind_sessions(store: Any, recorder: Recorder) -> None:
    """Make every session ``store`` opens report to ``recorder``."""
    inner = store.ManagedSessionMaker

    @contextlib.contextmanager
    def managed_session(*args: Any, **kwargs: Any) -> Iterator[Any]:
        with inner(*args, **kwargs) as session:
            recorder.attach(session)
            yield session

    store.ManagedSessionMaker = managed_session


def recorded(
    fn: Callable[..., Any], name: str, checkpoint: Callable[..., str | None] | None = None
) -> Callable[..., Any]:
    """Wrap a store method so its ledger event is named ``name``.

    ``checkpoint(*args, **kwargs)`` may return a reason to sign a checkpoint when the
    write commits (a run ending, a hard delete).
    """

    @functools.wraps(fn)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        reason = checkpoint(*args, **kwargs) if checkpoint is not None else None
        with operation(name, reason):
            return fn(self, *args, **kwargs)

    wrapper.__provenance_op__ = name  # type: ignore[attr-defined]
    return wrapper


def record_write_methods(
    cls: type, base: type, checkpoints: dict[str, Callable[..., str | None]], extra: tuple[str, ...] = ()
) -> None:
    """Wrap every public write method of ``base`` (and ``extra`` private ones) on ``cls``."""
    for name in public_write_methods(base) + list(extra):
        if name in cls.__dict__:
            continue
        setattr(cls, name, recorded(getattr(base, name), name, checkpoints.get(name)))


def current_actor() -> str:
    """Who is writing: the authenticated user on a server, else the MLflow user."""
    try:
        from flask import has_request_context, request

        if has_request_context():
            auth = request.authorization
            if auth is not None and auth.username:
                return auth.username
            return f"anonymous@{request.remote_addr or 'unknown'}"
    except ImportError:  # pragma: no cover - flask ships with mlflow
        pass
    return _local_user()


@functools.lru_cache(maxsize=1)
def _local_user() -> str:
    """The MLflow user of this process (MLflow's own rule), looked up once."""
    from mlflow.tracking.context.default_context import _get_user

    return _get_user() or "unknown"
