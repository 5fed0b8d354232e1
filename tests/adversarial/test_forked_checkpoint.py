"""Attack: an insider with the signing key rewrites history and signs checkpoints over it (a fork).

Every hash, link, log head and signature is valid; the tables agree with the ledger. The
witness — the checkpoint this auditor saw before — is the only thing left that remembers
the original history, and verify must report the fork against it.
"""

from __future__ import annotations

import json

from mlflow_provenance.keys import load_signing_key

from .attacker import read_events, replace_row, rewrite_history
from .findings import assert_caught, assert_clean, finding


def _fork(target, key_path, *, edit: bool = True):
    w = target.w
    key = load_signing_key(key_path)
    if edit:
        target.tamper(("UPDATE metrics SET value = 0.999 WHERE run_uuid = ? AND key = 'test_f1_macro'", (w.run_id,)),
                      ("UPDATE latest_metrics SET value = 0.999 WHERE run_uuid = ? AND key = 'test_f1_macro'", (w.run_id,)))
        metric = target.row_text("metrics", "run_uuid = ? AND key = 'test_f1_macro'", w.run_id)
        latest = target.row_text("latest_metrics", "run_uuid = ? AND key = 'test_f1_macro'", w.run_id)
    seq = target.last_writer("metrics", run_uuid=w.run_id, key="test_f1_macro")

    def doctor(events):
        if edit:
            event = events[seq - 1]
            replace_row(event, "metrics", {"key": "test_f1_macro"}, metric)
            replace_row(event, "latest_metrics", {"key": "test_f1_macro"}, latest)
        return events

    con = target.connect()
    with con:
        rewrite_history(con, doctor, sign_with=key)
    con.close()


def test_attacker_tooling_is_faithful(db, verify, legit_key):
    """Control: rewriting and re-signing with no change leaves a ledger verify accepts."""
    assert_clean(verify, db.uri)
    _fork(db, legit_key, edit=False)
    assert_clean(verify, db.uri)


def test_forked_checkpoint_is_caught_by_the_witness(db, verify, legit_key, provenance_home):
    assert_clean(verify, db.uri)
    (witness_file,) = (provenance_home / "witness").iterdir()
    witnessed = json.loads(witness_file.read_text())
    _fork(db, legit_key)
    report = assert_caught(verify, db.uri)
    kinds = {f["kind"] for f in report["findings"]}
    assert not kinds & {"checkpoint-signature", "log-altered", "value-changed", "chain-broken"}, report["findings"]
    finding(report, "log-forked", entity="ledger", event=witnessed["size"])
