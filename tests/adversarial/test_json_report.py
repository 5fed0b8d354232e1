"""``verify --json``: the documented keys, on a clean database and on an attacked one."""

from __future__ import annotations

from .findings import assert_caught, assert_clean

FINDING_KEYS = {"kind", "message", "entity", "field", "event"}


def test_clean_report_has_the_documented_keys(db, verify):
    report = assert_clean(verify, db.uri)
    assert {"ok", "events", "checkpoints", "runs", "findings"} <= set(report)
    assert report["ok"] is True and report["findings"] == []
    assert report["events"] == db.scalar("SELECT COUNT(*) FROM prov_events")
    assert report["checkpoints"] == db.scalar("SELECT COUNT(*) FROM prov_checkpoints")
    assert report["runs"] == db.scalar("SELECT COUNT(*) FROM runs") == 3


def test_findings_have_the_documented_keys(db, verify):
    assert_clean(verify, db.uri)
    db.tamper(("UPDATE params SET value = '0.5' WHERE run_uuid = ? AND key = 'alpha'", (db.w.run_id,)),
              ("DELETE FROM prov_events WHERE seq = 5", ()))
    report = assert_caught(verify, db.uri)
    assert report["ok"] is False
    for f in report["findings"]:
        assert FINDING_KEYS <= set(f), f
        assert isinstance(f["kind"], str) and f["kind"] and isinstance(f["message"], str) and f["message"]
        assert f["event"] is None or isinstance(f["event"], int)
        assert f["entity"] is None or isinstance(f["entity"], str)
        assert f["field"] is None or isinstance(f["field"], str)
