"""Attack: a ledger event's body is edited — the recorded metric rewritten to match a doctored table.

Three attackers, each more careful: one edits the body only; one also recomputes the
event's stored hash; one rewrites every later hash, chain link and the log head as well,
so that only the signed checkpoints (and the auditor's witness) disagree.
"""

from __future__ import annotations

import hashlib
import json

import pytest

from mlflow_provenance.canonical import canonical_json

from .attacker import replace_row, rewrite_history
from .findings import assert_caught, assert_clean, finding, run_entity

STEP = 5


def _doctor(target):
    """Edit test_accuracy at STEP in the table; return the event that recorded it and its doctored body."""
    w = target.w
    seq = target.last_writer("metrics", run_uuid=w.run_id, key="test_accuracy", step=STEP)
    target.tamper(("UPDATE metrics SET value = 0.999 WHERE run_uuid = ? AND key = 'test_accuracy' AND step = ?",
                   (w.run_id, STEP)))
    (body,) = target.query("SELECT body FROM prov_events WHERE seq = ?", seq)[0]
    doc = json.loads(body)
    row = target.row_text("metrics", "run_uuid = ? AND key = 'test_accuracy' AND step = ?", w.run_id, STEP)
    replace_row(doc, "metrics", {"key": "test_accuracy", "step": STEP}, row)
    return seq, canonical_json(doc).decode("utf-8")


def _next_in_chain(target, seq):
    run = target.w.run_id
    return min(d["seq"] for d in target.events() if d["seq"] > seq and d["entity"]["id"] == run)


def test_edited_event_body_is_caught(db, verify):
    assert_clean(verify, db.uri)
    seq, body = _doctor(db)
    db.tamper(("UPDATE prov_events SET body = ? WHERE seq = ?", (body, seq)))
    report = assert_caught(verify, db.uri)
    finding(report, "event-altered", entity=run_entity(db.w.run_id), event=seq)


def test_edited_event_with_recomputed_hash_is_caught(db, verify):
    assert_clean(verify, db.uri)
    seq, body = _doctor(db)
    digest = hashlib.sha256(body.encode()).hexdigest()
    db.tamper(("UPDATE prov_events SET body = ?, hash = ? WHERE seq = ?", (body, digest, seq)))
    report = assert_caught(verify, db.uri)
    assert not [f for f in report["findings"] if f["kind"] == "event-altered"], report["findings"]
    finding(report, "chain-broken", entity=run_entity(db.w.run_id), event=_next_in_chain(db, seq))
    finding(report, "log-altered", entity="ledger")


def test_edited_event_with_rewritten_history_is_caught(db, verify):
    """Every hash, link and the log head recomputed: only the signatures stand in the way."""
    w = db.w
    assert_clean(verify, db.uri)
    seq, body = _doctor(db)
    con = db.connect()
    with con:
        rewrite_history(con, lambda events: [json.loads(body) if e["seq"] == seq else e for e in events])
    con.close()
    first_signed = min(size for (size,) in db.query("SELECT size FROM prov_checkpoints WHERE size >= ?", seq))
    report = assert_caught(verify, db.uri)
    kinds = {f["kind"] for f in report["findings"]}
    assert not kinds & {"event-altered", "chain-broken", "log-head-mismatch", "value-changed"}, report["findings"]
    finding(report, "log-altered", entity="ledger", event=first_signed)
    finding(report, "log-forked", entity="ledger", event=len(db.events()))


@pytest.mark.postgres
def test_edited_event_body_is_caught_on_postgres(pg_db, verify):
    assert_clean(verify, pg_db.uri)
    seq, body = _doctor(pg_db)
    pg_db.tamper(("UPDATE prov_events SET body = ? WHERE seq = ?", (body, seq)))
    report = assert_caught(verify, pg_db.uri)
    finding(report, "event-altered", entity=run_entity(pg_db.w.run_id), event=seq)
