"""Hand-written read queries that run on every supported database.

The ledger's readers (gate, lineage, exports, dashboard) use a few plain SQL statements
over MLflow's tables. They are written with ``?`` placeholders and the bare column name
``key``; :func:`portable` adapts them to the connection: ``%s`` placeholders where the
driver wants them (psycopg, pymysql), and ```key``` on MySQL, where KEY is reserved.
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa

_KEY = re.compile(r"\bkey\b")


def portable(conn: sa.engine.Connection, text: str) -> str:
    """``text`` in the connection's placeholder style and identifier quoting."""
    if conn.dialect.name == "mysql":
        text = _KEY.sub("`key`", text)
    return text if conn.dialect.paramstyle == "qmark" else text.replace("?", "%s")


def query(conn: sa.engine.Connection, text: str, *params: Any) -> Any:
    """Run a read query written with ``?`` placeholders; returns the result."""
    return conn.exec_driver_sql(portable(conn, text), params)
