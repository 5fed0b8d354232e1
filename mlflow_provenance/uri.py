"""``provenance+<inner>`` store URIs (DESIGN.md §7)."""

from __future__ import annotations

from mlflow_provenance.errors import ConfigurationError

SCHEME_PREFIX = "provenance+"

#: Inner schemes the plugin registers: every SQL backend MLflow supports, with the
#: SQLAlchemy driver suffixes MLflow accepts.
SUPPORTED_INNER_SCHEMES = (
    "sqlite",
    "postgresql",
    "postgresql+psycopg2",
    "postgresql+psycopg",
    "postgresql+pg8000",
    "mysql",
    "mysql+pymysql",
    "mysql+mysqldb",
    "mysql+mysqlconnector",
)


def inner_uri(store_uri: str) -> str:
    """The MLflow SQL store URI wrapped by a ``provenance+`` URI.

    Raises:
        ConfigurationError: the URI is not a ``provenance+`` URI, or wraps an unsupported store.
    """
    if not store_uri.startswith(SCHEME_PREFIX):
        raise ConfigurationError(
            f"{store_uri!r} is not a provenance store URI; use provenance+<database URI>, "
            f"e.g. provenance+sqlite:///mlflow.db."
        )
    inner = store_uri[len(SCHEME_PREFIX) :]
    scheme = inner.split("://", 1)[0].lower() if "://" in inner else ""
    if scheme not in SUPPORTED_INNER_SCHEMES:
        raise ConfigurationError(
            f"Unsupported inner store {scheme or inner!r} in {_redact(store_uri)!r}: "
            f"mlflow-provenance wraps MLflow's SQL stores only. Use provenance+ followed by one "
            f"of: {', '.join(SUPPORTED_INNER_SCHEMES)} (e.g. provenance+sqlite:///mlflow.db)."
        )
    return inner


def _redact(uri: str) -> str:
    """Hide a password in ``scheme://user:password@host`` forms."""
    if "://" not in uri or "@" not in uri:
        return uri
    scheme, rest = uri.split("://", 1)
    creds, host = rest.split("@", 1)
    if ":" in creds:
        creds = creds.split(":", 1)[0] + ":***"
    return f"{scheme}://{creds}@{host}"
