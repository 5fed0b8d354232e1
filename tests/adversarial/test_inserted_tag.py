"""Attack: a tag is inserted into a finished run (e.g. a fake approval)."""

from __future__ import annotations

import pytest

from .findings import assert_caught, assert_clean, finding, run_entity


def _insert_approval(target):
    target.tamper(("INSERT INTO tags (key, value, run_uuid) VALUES ('approved_by', 'security-review', ?)",
                   (target.w.run_id,)))


def _assert_named(target, report):
    found = finding(report, "row-inserted", entity=run_entity(target.w.run_id), field="tags", event=None)
    assert "approved_by" in found["message"]


def test_inserted_tag_is_caught(db, verify):
    assert_clean(verify, db.uri)
    _insert_approval(db)
    _assert_named(db, assert_caught(verify, db.uri))


@pytest.mark.postgres
def test_inserted_tag_is_caught_on_postgres(pg_db, verify):
    assert_clean(verify, pg_db.uri)
    _insert_approval(pg_db)
    _assert_named(pg_db, assert_caught(verify, pg_db.uri))
