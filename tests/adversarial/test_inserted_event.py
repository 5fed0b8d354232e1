"""Attack: a forged event is inserted into the ledger, to legitimise a row added behind MLflow's back.

The forged event records a param ``validated=true`` on the training run; the attacker
inserts the same row into ``params``, so that the tables and the ledger agree.
"""

from __future__ import annotations

import copy
import hashlib
import json

from mlflow_provenance.canonical import canonical_json

from .attacker import read_events, write_history
from .findings import assert_caught, assert_clean, finding, run_entity

AFTER = 18  # the forged event goes right after this one (the run's last metric)


def _forge(target, events):
    template = next(e for e in events if e["op"] == "log_batch" and e["entity"]["id"] == target.w.run_id)
    forged = copy.deepcopy(template)
    row = json.dumps({"key": "validated", "value": "true", "run_uuid": target.w.run_id}, separators=(",", ":"))
    forged["op"] = "log_param"
    forged["payload"] = {"kind": "mlflow.write", "changes": [["params", "I", None, row]]}
    return forged


def test_inserted_event_with_rewritten_history_is_caught(db, verify):
    assert_clean(verify, db.uri)
    db.tamper(("INSERT INTO params (key, value, run_uuid) VALUES ('validated', 'true', ?)", (db.w.run_id,)))
    con = db.connect()
    with con:
        events = read_events(con)
        write_history(con, events[:AFTER] + [_forge(db, events)] + events[AFTER:])
    con.close()
    first_signed = min(size for (size,) in db.query("SELECT size FROM prov_checkpoints WHERE size > ?", AFTER))
    report = assert_caught(verify, db.uri)
    kinds = {f["kind"] for f in report["findings"]}
    assert not kinds & {"row-inserted", "event-altered", "chain-broken", "log-head-mismatch"}, report["findings"]
    finding(report, "log-altered", entity="ledger", event=first_signed)
    finding(report, "log-forked", entity="ledger")


def test_event_appended_behind_the_log_head_is_caught(db, verify):
    """A forged row at the end of prov_events, the log head left as it was."""
    assert_clean(verify, db.uri)
    events = db.events()
    forged = _forge(db, events)
    seq = len(events) + 1
    forged["seq"] = seq
    body = canonical_json(forged)
    copied_signature = db.scalar("SELECT signature FROM prov_events WHERE seq = 1")
    db.tamper(("INSERT INTO prov_events (seq, entity_type, entity_id, op, hash, body, signature) "
               "VALUES (?, 'run', ?, 'log_param', ?, ?, ?)",
               (seq, db.w.run_id, hashlib.sha256(body).hexdigest(), body.decode(), copied_signature)))
    report = assert_caught(verify, db.uri)
    finding(report, "log-head-mismatch", entity="ledger", event=seq)
    finding(report, "chain-broken", entity=run_entity(db.w.run_id), event=seq)
    finding(report, "event-signature", entity=run_entity(db.w.run_id), event=seq)


def test_event_appended_at_the_tail_is_caught(db, verify):
    """A forged event after the newest checkpoint, chained and counted in the log head like a real one.

    The forged event and the row it records agree, and no checkpoint covers the tail yet;
    the next legitimate checkpoint would sign it into history. Nothing an attacker without
    the key cannot produce distinguishes it from a genuine write.
    """
    assert_clean(verify, db.uri)
    db.tamper(("INSERT INTO params (key, value, run_uuid) VALUES ('validated', 'true', ?)", (db.w.run_id,)))
    con = db.connect()
    with con:
        events = read_events(con)
        write_history(con, events + [_forge(db, events)])
    con.close()
    assert_caught(verify, db.uri)
