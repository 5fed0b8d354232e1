"""Attack: the alias ``candidate`` is moved from version 1 to version 2 behind the registry's back."""

from __future__ import annotations

from .findings import assert_caught, assert_clean, finding


def test_moved_alias_is_caught(db, verify):
    w = db.w
    assert_clean(verify, db.uri)
    event = db.last_writer("registered_model_aliases", alias="candidate")
    db.tamper(("UPDATE registered_model_aliases SET version = ? WHERE name = ? AND alias = 'candidate'",
               (int(w.second_version), w.model_name)))
    report = assert_caught(verify, db.uri)
    changed = [
        f for f in report["findings"]
        if f["kind"] == "value-changed" and f["entity"] == f"registered_model {w.model_name}"
        and (f["field"] or "").startswith("registered_model_aliases.version") and f["event"] == event
    ]
    assert changed, report["findings"]


def test_moved_alias_report_names_the_alias(db, verify):
    """A model may carry several aliases; the report must say which one moved."""
    w = db.w
    assert_clean(verify, db.uri)
    db.tamper(("UPDATE registered_model_aliases SET version = ? WHERE name = ? AND alias = 'candidate'",
               (int(w.second_version), w.model_name)))
    report = assert_caught(verify, db.uri)
    finding(report, "value-changed", entity=f"registered_model {w.model_name}",
            field="registered_model_aliases.version[candidate]")
