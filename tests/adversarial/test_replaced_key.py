"""Attack: the signing key is replaced — every checkpoint re-signed with a key the attacker generated.

The auditor verifies with the deployment's real key (``MLFLOW_PROVENANCE_KEY``); no
checkpoint carries a signature by it any more.
"""

from __future__ import annotations

from mlflow_provenance.keys import load_signing_key

from tests.conftest import run_cli

from .attacker import replace_row, resign_checkpoints, rewrite_history
from .findings import assert_caught, assert_clean, finding


def _attacker_key(tmp_path):
    path = tmp_path / "attacker.key"
    code, _ = run_cli("keygen", "--out", str(path))
    assert code == 0
    return load_signing_key(path)


def test_replaced_key_is_caught(db, verify, tmp_path):
    assert_clean(verify, db.uri)
    count = db.scalar("SELECT COUNT(*) FROM prov_checkpoints")
    con = db.connect()
    with con:
        resign_checkpoints(con, _attacker_key(tmp_path))
    con.close()
    report = assert_caught(verify, db.uri)
    bad = [f for f in report["findings"] if f["kind"] == "checkpoint-signature" and f["entity"] == "ledger"]
    assert len(bad) == count, report["findings"]


def test_replaced_key_over_rewritten_history_is_caught(db, verify, tmp_path):
    """The attacker re-tags the run in table and ledger alike, and re-signs the consistent result."""
    w = db.w
    assert_clean(verify, db.uri)
    seq = db.last_writer("tags", run_uuid=w.run_id, key="team")
    db.tamper(("UPDATE tags SET value = 'someone-else' WHERE run_uuid = ? AND key = 'team'", (w.run_id,)))
    row = db.row_text("tags", "run_uuid = ? AND key = 'team'", w.run_id)

    def doctor(events):
        replace_row(events[seq - 1], "tags", {"key": "team"}, row)
        return events

    con = db.connect()
    with con:
        rewrite_history(con, doctor, sign_with=_attacker_key(tmp_path))
    con.close()
    report = assert_caught(verify, db.uri)
    finding(report, "checkpoint-signature", entity="ledger")
    assert not [f for f in report["findings"] if f["kind"] == "value-changed"], report["findings"]
    finding(report, "log-forked", entity="ledger")
