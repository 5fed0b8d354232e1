"""Attack: the log is rolled back to an earlier checkpoint — later events and checkpoints deleted.

What remains is a genuine, correctly signed prefix of the log, and the tables are reverted
to match it. Only the witness (the newest checkpoint this auditor has seen, kept in
``MLFLOW_PROVENANCE_HOME``) knows the log was once longer.
"""

from __future__ import annotations

from .attacker import read_events, undo_writes, write_history
from .findings import assert_caught, assert_clean, finding


def _roll_back(target, *, new_origin: str | None = None, drop_all_checkpoints: bool = False):
    sizes = sorted(size for (size,) in target.query("SELECT size FROM prov_checkpoints"))
    keep = sizes[-3]  # back to the third-newest checkpoint
    con = target.connect()
    with con:
        events = read_events(con)
        undo_writes(con, events[keep:])
        write_history(con, events[:keep])
        if drop_all_checkpoints:
            con.execute("DELETE FROM prov_checkpoints")
        else:
            con.execute("DELETE FROM prov_checkpoints WHERE size > ?", (keep,))
        if new_origin:
            con.execute("UPDATE prov_meta SET value = ? WHERE key = 'origin'", (new_origin,))
    con.close()
    return keep


def test_rolled_back_checkpoint_is_caught_by_the_witness(db, verify):
    assert_clean(verify, db.uri)
    keep = _roll_back(db)
    report = assert_caught(verify, db.uri)
    kinds = {f["kind"] for f in report["findings"]}
    assert not kinds & {"log-truncated", "log-head-mismatch", "row-inserted", "value-changed"}, report["findings"]
    finding(report, "log-rolled-back", entity="ledger", event=keep + 1)


def test_rolled_back_log_under_a_new_origin_is_caught(db, verify):
    """The attacker also renames the log and drops every checkpoint, so the witness is not looked up.

    Without a single signed checkpoint nothing in the database is vouched for by the key,
    so verify must not call the ledger intact.
    """
    assert_clean(verify, db.uri)
    _roll_back(db, new_origin="mlflow-provenance/00000000-0000-4000-8000-000000000000", drop_all_checkpoints=True)
    assert db.scalar("SELECT COUNT(*) FROM prov_checkpoints") == 0
    assert_caught(verify, db.uri)


def test_deleted_newest_checkpoint_leaves_its_event_unsigned(db, verify, provenance_home):
    """The run-end event is sealed by its own checkpoint; without it, the event has no signature."""
    import shutil

    assert_clean(verify, db.uri)
    newest = db.scalar("SELECT MAX(id) FROM prov_checkpoints")
    size = db.scalar("SELECT size FROM prov_checkpoints WHERE id = ?", newest)
    db.tamper(("DELETE FROM prov_checkpoints WHERE id = ?", (newest,)))
    shutil.rmtree(provenance_home / "witness")  # a first-time auditor
    report = assert_caught(verify, db.uri)
    assert any(f["kind"] == "event-signature" and f["event"] == size for f in report["findings"])
