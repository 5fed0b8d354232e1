"""Attack: wipe the whole ledger, edit MLflow's tables, and let the store start a new one.

The next MLflow client recreates the ledger and its genesis event adopts the edited rows,
signed with the real key. Only the witness, kept per database, remembers the old ledger.
"""

from __future__ import annotations

from .findings import assert_caught, assert_clean, finding


def test_wiped_and_restarted_ledger_is_caught_by_the_witness(db, verify):
    assert_clean(verify, db.uri)
    con = db.connect()
    with con:
        triggers = [name for (name,) in con.execute(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'prov_cap%'")]
        for name in triggers:
            con.execute(f'DROP TRIGGER "{name}"')
        for (table,) in con.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'prov_%'").fetchall():
            con.execute(f'DROP TABLE "{table}"')
        con.execute("UPDATE metrics SET value = 0.999 WHERE key = 'test_accuracy'")
    con.close()

    from mlflow_provenance.adapters.tracking_store import ProvenanceTrackingStore

    ProvenanceTrackingStore(db.uri)  # any MLflow client: a new ledger, genesis adopts the edit
    report = assert_caught(verify, db.uri)
    finding(report, "log-replaced", entity="ledger")
