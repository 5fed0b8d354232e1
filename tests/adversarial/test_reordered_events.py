"""Attack: two ledger events change places (history told in another order)."""

from __future__ import annotations

from .attacker import read_events, write_history
from .findings import assert_caught, assert_clean

FIRST, SECOND = 12, 13  # two metric batches of the training run


def test_swapped_sequence_numbers_are_caught(db, verify):
    assert_clean(verify, db.uri)
    db.tamper(
        ("UPDATE prov_events SET seq = -1 WHERE seq = ?", (FIRST,)),
        ("UPDATE prov_events SET seq = ? WHERE seq = ?", (FIRST, SECOND)),
        ("UPDATE prov_events SET seq = ? WHERE seq = -1", (SECOND,)),
    )
    report = assert_caught(verify, db.uri)
    for seq in (FIRST, SECOND):
        named = [f for f in report["findings"]
                 if f["event"] == seq and f["kind"] in ("events-reordered", "event-altered")]
        assert named, f"no finding names event #{seq}: {report['findings']}"


def test_reordered_events_with_rewritten_history_are_caught(db, verify):
    """Two events of different chains swapped, then renumbered, re-hashed and re-linked."""
    assert_clean(verify, db.uri)
    checkpoint_sizes = sorted(size for (size,) in db.query("SELECT size FROM prov_checkpoints"))
    boundary = checkpoint_sizes[2]  # swap the event a checkpoint ends on with the one after it
    con = db.connect()
    with con:
        events = read_events(con)
        a, b = events[boundary - 1], events[boundary]
        assert a["entity"] != b["entity"]
        events[boundary - 1], events[boundary] = b, a
        write_history(con, events)
    con.close()
    report = assert_caught(verify, db.uri)
    kinds = {f["kind"] for f in report["findings"]}
    assert not kinds & {"event-altered", "chain-broken", "log-head-mismatch"}, report["findings"]
    altered = [f for f in report["findings"] if f["kind"] == "log-altered" and f["event"] == boundary]
    assert altered, report["findings"]
