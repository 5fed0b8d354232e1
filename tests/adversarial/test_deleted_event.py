"""Attack: a ledger event is deleted (the record of a write erased)."""

from __future__ import annotations

from .attacker import read_events, undo_writes, write_history
from .findings import assert_caught, assert_clean, finding

DELETED = 12


def test_deleted_event_is_caught(db, verify):
    assert_clean(verify, db.uri)
    db.tamper(("DELETE FROM prov_events WHERE seq = ?", (DELETED,)))
    report = assert_caught(verify, db.uri)
    gap = finding(report, "events-missing", entity=f"run {db.w.run_id}", event=DELETED)
    assert f"#{DELETED} " in gap["message"]


def test_deleted_event_is_reported_once(db, verify):
    """One event is gone: the report must not claim that every later event is missing too."""
    assert_clean(verify, db.uri)
    db.tamper(("DELETE FROM prov_events WHERE seq = ?", (DELETED,)))
    report = assert_caught(verify, db.uri)
    gaps = [f for f in report["findings"] if f["kind"] == "events-missing"]
    assert len(gaps) == 1, "\n".join(f["message"] for f in gaps)


def test_deleted_event_with_rewritten_history_is_caught(db, verify):
    """The event and the write it recorded undone; numbers, hashes, links and head made consistent."""
    w = db.w
    assert_clean(verify, db.uri)
    con = db.connect()
    with con:
        events = read_events(con)
        victim = next(e for e in events if e["op"] == "log_metric" and e["entity"]["id"] == w.baseline_run_id)
        undo_writes(con, [victim])
        write_history(con, [e for e in events if e is not victim])
    con.close()
    assert db.scalar("SELECT COUNT(*) FROM metrics WHERE run_uuid = ?", w.baseline_run_id) == 0
    first_signed = min(size for (size,) in db.query("SELECT size FROM prov_checkpoints WHERE size >= ?", victim["seq"]))
    report = assert_caught(verify, db.uri)
    kinds = {f["kind"] for f in report["findings"]}
    assert not kinds & {"events-missing", "chain-broken", "row-deleted", "row-inserted"}, report["findings"]
    finding(report, "log-altered", entity="ledger", event=first_signed)
