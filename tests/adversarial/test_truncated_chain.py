"""Attack: the newest events are cut off the ledger, the writes they recorded undone, the log head fixed.

The tables and what is left of the ledger agree, every hash and link holds: the signed
checkpoint over the longer log must give the truncation away — by itself, with no witness.
"""

from __future__ import annotations

import shutil

from .attacker import read_events, undo_writes, write_history
from .findings import assert_caught, assert_clean, finding

#: Events removed from the tail: delete_run, the second model version, the stage transition
#: (with its promotion decision) and the gate tag it set.
CUT = 4


def _truncate(target):
    con = target.connect()
    with con:
        events = read_events(con)
        undo_writes(con, events[-CUT:])
        write_history(con, events[:-CUT])
    con.close()
    return len(events) - CUT


def test_truncated_chain_is_caught_by_the_checkpoint(db, verify, provenance_home):
    assert_clean(verify, db.uri)
    shutil.rmtree(provenance_home / "witness")  # a first-time auditor: nothing witnessed
    kept = _truncate(db)
    assert db.scalar("SELECT lifecycle_stage FROM runs WHERE run_uuid = ?", db.w.deleted_run_id) == "active"
    report = assert_caught(verify, db.uri)
    kinds = {f["kind"] for f in report["findings"]}
    assert not kinds & {"log-head-mismatch", "chain-broken", "row-inserted", "value-changed"}, report["findings"]
    finding(report, "log-truncated", entity="ledger", event=kept + 1)


def test_truncated_chain_is_caught_by_the_witness_too(db, verify):
    assert_clean(verify, db.uri)
    kept = _truncate(db)
    report = assert_caught(verify, db.uri)
    finding(report, "log-truncated", entity="ledger", event=kept + 1)
    finding(report, "log-rolled-back", entity="ledger", event=kept + 1)
