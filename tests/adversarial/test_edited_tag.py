"""Attack: a run's tag value is rewritten (the owning team changed)."""

from __future__ import annotations

from .findings import assert_caught, assert_clean, finding, run_entity


def test_edited_tag_is_caught(db, verify):
    w = db.w
    assert_clean(verify, db.uri)
    event = db.last_writer("tags", run_uuid=w.run_id, key="team")
    db.tamper(("UPDATE tags SET value = 'someone-else' WHERE run_uuid = ? AND key = 'team'", (w.run_id,)))
    report = assert_caught(verify, db.uri)
    finding(report, "value-changed", entity=run_entity(w.run_id), field="tags.value[team]", event=event)
