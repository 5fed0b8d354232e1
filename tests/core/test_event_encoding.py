"""The event encoder's fast path produces exactly RFC 8785 canonical JSON."""

from __future__ import annotations

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from mlflow_provenance.canonical import canonical_json
from mlflow_provenance.ledger import event_body

_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)
_change = st.tuples(_text, st.sampled_from(["I", "U", "D"]), st.none() | _text, st.none() | _text).map(list)


def _reference(payload: dict) -> bytes:
    return canonical_json(
        {"v": 1, "seq": 7, "entity": {"type": "run", "id": "r1"}, "op": "log_batch",
         "actor": "alice", "time": "2026-11-27T00:00:00.000000Z", "prev": None, "payload": payload}
    )


def _body(payload: dict) -> bytes:
    return event_body(seq=7, entity_type="run", entity_id="r1", op="log_batch", actor="alice",
                      time="2026-11-27T00:00:00.000000Z", prev=None, payload=payload)


@settings(max_examples=300, deadline=None)
@given(st.lists(_change, max_size=12))
def test_spliced_changes_equal_the_reference_encoder(changes):
    payload = {"kind": "mlflow.write", "changes": changes}
    assert _body(payload) == _reference(payload)


def test_non_string_changes_take_the_reference_path():
    payload = {"kind": "mlflow.write", "changes": [["t", "I", None, {"nested": 1.5}]]}
    assert _body(payload) == _reference(payload)


def test_known_answer_event_hash():
    # Pinned so that an accidental change to the event format cannot go unnoticed.
    payload = {"kind": "mlflow.write", "changes": [["params", "I", None, '{"key":"lr","value":"0.1"}']]}
    body = _body(payload)
    assert body == (
        b'{"actor":"alice","entity":{"id":"r1","type":"run"},"op":"log_batch","payload":'
        b'{"changes":[["params","I",null,"{\\"key\\":\\"lr\\",\\"value\\":\\"0.1\\"}"]],'
        b'"kind":"mlflow.write"},"prev":null,"seq":7,"time":"2026-11-27T00:00:00.000000Z","v":1}'
    )
    assert hashlib.sha256(body).hexdigest() == hashlib.sha256(_reference(payload)).hexdigest()


def test_a_checkpoint_is_signed_at_least_every_n_events(tmp_path):
    import sqlalchemy as sa

    from mlflow_provenance import ledger_schema
    from mlflow_provenance.keys import generate_signing_key
    from mlflow_provenance.ledger import LedgerWriter

    engine = sa.create_engine(f"sqlite:///{tmp_path}/ledger.db")
    meta = ledger_schema.ensure_schema(engine)
    writer = LedgerWriter(meta["origin"], generate_signing_key(), checkpoint_every=10)
    with engine.begin() as conn:
        notes = [
            writer.append(conn, entity_type="run", entity_id="r", op="log_metric", actor="a",
                          payload={"kind": "test"}).checkpoint_note
            for _ in range(25)
        ]
        sizes = [size for (size,) in conn.exec_driver_sql("SELECT size FROM prov_checkpoints ORDER BY id")]
    assert sizes == [10, 20]
    assert [i + 1 for i, note in enumerate(notes) if note] == [10, 20]
