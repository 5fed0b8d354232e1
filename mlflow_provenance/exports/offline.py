"""Checking a bundle offline, with nothing but the file (and, to pin the signer, trusted keys).

No database and no MLflow: this module imports only the core format modules (Merkle proofs,
checkpoints, keys) and :mod:`.bundle`'s constants. Checks:

1. checkpoint — the C2SP signed note verifies with a trusted key, and the bundle's unsigned
   copies of its origin, size and root agree with it (``checkpoint-signature``,
   ``checkpoint-malformed``, ``checkpoint-altered``);
2. events — each hash is SHA-256 of its body and the body's ``seq`` is the entry's
   (``event-altered``, ``event-malformed``, ``format``);
3. inclusion — each covered event's body is leaf ``seq - 1`` of the signed tree, RFC 9162
   §2.1.3.2 (``inclusion-proof``);
4. chains — each event links to the previous included event of its entity; the subject's
   chains (:func:`~.bundle.subject_entities`) are complete from their first event, others are
   checked where both ends are present (``chain-broken``);
5. documents — every blob hashes to its digest and every record's ``blob`` resolves
   (``blob-altered``, ``blob-missing``, ``blob-unreferenced``);
6. decisions — each promotion decision's signature verifies with a trusted key
   (``decision-signature``);
7. facts — the model and run facts agree with what covered events recorded: the version's
   run and source, each param (written once: some covered row holds them); the version's
   stage and the run's status and end time (the newest covered row holds them, as every
   change to them signs a checkpoint) (``fact-mismatch``). Other facts — metrics, tags,
   aliases, lineage — are shown as exported and not checked.

Trust. With ``trusted_keys`` (the log's verifier keys, obtained out of band) only those keys
count, for the checkpoint and for decisions: a bundle re-signed by anyone else fails. Without
them the verifier trusts the keys the bundle lists, which proves the bundle is internally
consistent but not who made it — a forger who rebuilds and re-signs everything with a key of
their own passes. The report says which trust was used.

Errors: findings are collected, not raised. :class:`ConfigurationError` is raised only when
the check cannot run (an unreadable file, not a bundle, unusable ``trusted_keys``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mlflow_provenance import merkle
from mlflow_provenance.checkpoint import Checkpoint, open_checkpoint, parse_checkpoint
from mlflow_provenance.errors import ConfigurationError, FormatError, MerkleProofError, SignatureError
from mlflow_provenance.findings import Finding
from mlflow_provenance.exports.bundle import (
    BUNDLE_FORMAT,
    DECISION_SIGNING_PREFIX,
    describe_subject,
    subject_entities,
)
from mlflow_provenance.keys import Keyring, KeyringEntry, PublicKey

__all__ = ["BundleFinding", "BundleReport", "load_bundle", "verify_bundle"]

#: Top-level members every bundle has, and the JSON types they must be.
_SHAPE: dict[str, tuple[type, ...]] = {
    "origin": (str,), "checkpoint": (dict,), "keys": (list,), "model": (dict, type(None)),
    "run": (dict, type(None)), "events": (list,), "unsealed": (list,), "blobs": (dict,),
}
_DECISION = "promotion-decision"


#: Bundle findings are :class:`~mlflow_provenance.findings.Finding`, as ``verify``'s are.
BundleFinding = Finding


@dataclass
class BundleReport:
    """The outcome of :func:`verify_bundle`; ``ok`` when there are no findings."""

    path: str
    subject: str = ""
    origin: str = ""
    checkpoint: dict[str, Any] | None = None  # {"size", "root"} as the note signs them
    signed_by: list[str] = field(default_factory=list)  # key labels NAME+HASH that verified
    trust: str = "bundle"  # "caller": trusted_keys given; "bundle": the bundle's own keys
    events: int = 0
    unsealed: int = 0
    blobs: int = 0
    decisions: int = 0
    facts: int = 0
    findings: list[BundleFinding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    def add(self, kind: str, message: str, **where: Any) -> None:
        self.findings.append(BundleFinding(kind, message, **where))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ok"] = self.ok
        return data

    def summary(self) -> str:
        status = "OK" if self.ok else f"FAILED: {len(self.findings)} finding(s)"
        if self.checkpoint:
            cut = f"cut from checkpoint size {self.checkpoint['size']}, root {self.checkpoint['root']}"
        else:
            cut = "no readable checkpoint"
        signers = ", ".join(self.signed_by) or "no trusted key"
        trust = ("keys given by the caller" if self.trust == "caller"
                 else "keys listed in the bundle itself; pass trusted keys to pin the signer")
        lines = [
            f"{status} — bundle {self.path}: {self.subject or 'no subject'}, log {self.origin}",
            f"  {cut}; signed by {signers} (trusting {trust})",
            f"  {self.events} events under the checkpoint, {self.unsealed} newer not covered by it; "
            f"{self.blobs} documents, {self.decisions} promotion decisions, {self.facts} model/run facts checked",
        ]
        lines += [f"  - {finding}" for finding in self.findings]
        return "\n".join(lines)


@dataclass(frozen=True)
class _Event:
    """An event entry whose shape checked out; ``doc`` is its parsed body."""

    seq: int
    body: bytes
    digest: str  # SHA-256 of body, recomputed
    doc: dict[str, Any]
    sealed: bool
    proof: tuple[str, ...] = ()

    @property
    def entity(self) -> tuple[str, str]:
        entity = self.doc["entity"]
        return (entity["type"], entity["id"])

    @property
    def label(self) -> str:
        return " ".join(self.entity)

    @property
    def prev(self) -> Any:
        return self.doc.get("prev")

    def records(self) -> list[dict[str, Any]]:
        payload = self.doc.get("payload")
        records = payload.get("records") if isinstance(payload, dict) else None
        return [r for r in records if isinstance(r, dict)] if isinstance(records, list) else []

    def changes(self) -> list[Any]:
        payload = self.doc.get("payload")
        changes = payload.get("changes") if isinstance(payload, dict) else None
        return changes if isinstance(changes, list) else []


# --- entry point ---------------------------------------------------------------------------


def verify_bundle(path: str | os.PathLike[str], trusted_keys: Sequence[str] | None = None) -> BundleReport:
    """Check the bundle at ``path`` with nothing else; return a report of findings.

    ``trusted_keys`` are C2SP verifier keys (``NAME+KEYHASH+BASE64``). When given, only they
    may sign the checkpoint and promotion decisions; when None, the bundle's own ``keys``
    are trusted (see the module docstring for what that does and does not prove).

    Raises:
        ConfigurationError: the file is missing, unreadable or not a bundle (FormatError),
            or ``trusted_keys`` is empty, a string, or holds a malformed key.
    """
    keys = _caller_keys(trusted_keys)
    document = load_bundle(path)
    report = BundleReport(path=str(path), subject=describe_subject(document["model"], document["run"]),
                          origin=document["origin"], trust="caller" if keys is not None else "bundle")
    if keys is None:
        keys = _bundle_keys(document["keys"], report)
    checkpoint = _check_checkpoint(document, keys, report)
    events = _check_events(document, checkpoint, report)
    _check_chains(events, subject_entities(document["model"], document["run"]), report)
    sealed = [e for e in events if e.sealed]
    contents = _check_blobs(document["blobs"], sealed, report)
    _check_decisions(sealed, contents, keys, report)
    _check_facts(document["model"], document["run"], events, report)
    return report


def load_bundle(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and shape-check a bundle file (the values inside are not verified).

    Raises:
        ConfigurationError: the file is missing or unreadable.
        FormatError: not UTF-8 JSON (or JSON with duplicate keys or NaN), not a
            ``mlflow-provenance/bundle/v1`` document, or a top-level member missing or of
            the wrong type.
    """
    target = Path(path)
    try:
        text = target.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigurationError(f"bundle {target} does not exist; check the path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"cannot read bundle {target}: {exc}") from None
    try:
        document = json.loads(text, object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        raise FormatError(f"bundle {target} is not valid JSON ({exc}); was it truncated?") from None
    if not isinstance(document, dict) or document.get("format") != BUNDLE_FORMAT:
        found = document.get("format") if isinstance(document, dict) else type(document).__name__
        raise FormatError(f"{target} is not a {BUNDLE_FORMAT} bundle (format: {found!r})")
    for name, types in _SHAPE.items():
        if not isinstance(document.get(name), types):
            raise FormatError(f"bundle {target}: member {name!r} is missing or not a JSON {types[0].__name__}")
    if not isinstance(document["checkpoint"].get("note"), str):
        raise FormatError(f"bundle {target}: the checkpoint has no signed note")
    if document["model"] is None and document["run"] is None:
        raise FormatError(f"bundle {target} names neither a model version nor a run")
    return document


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen = [k for k, _ in pairs]
        raise ValueError(f"duplicate key {next(k for k in seen if seen.count(k) > 1)!r}")
    return result


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


# --- keys and the checkpoint ---------------------------------------------------------------


def _caller_keys(trusted_keys: Sequence[str] | None) -> list[PublicKey] | None:
    if trusted_keys is None:
        return None
    if isinstance(trusted_keys, (str, bytes)):
        raise ConfigurationError("trusted_keys must be a list of verifier keys, not a single string")
    keys = []
    for n, text in enumerate(trusted_keys, 1):
        try:
            keys.append(PublicKey.from_vkey(text))
        except FormatError as exc:
            raise ConfigurationError(f"trusted key #{n}: {exc}") from None
    if not keys:
        raise ConfigurationError("trusted_keys is empty, and an empty keyring trusts nothing; pass the log's "
                                 "verifier key (printed by `mlflow-provenance keygen`)")
    return keys


def _bundle_keys(entries: list[Any], report: BundleReport) -> list[PublicKey]:
    keys = []
    for n, text in enumerate(entries, 1):
        try:
            keys.append(PublicKey.from_vkey(text))
        except FormatError as exc:
            report.add("format", f"bundle key #{n} is not a verifier key: {exc}", field="keys")
    return keys


def _keyring(keys: Iterable[PublicKey]) -> Keyring:
    unique = {key.key_id: key for key in keys}
    return Keyring(KeyringEntry(key) for key in unique.values())


def _check_checkpoint(document: dict[str, Any], keys: list[PublicKey], report: BundleReport) -> Checkpoint | None:
    """The checkpoint the note signs (even when its signature fails, so the rest still gets checked)."""
    note = document["checkpoint"]["note"]
    try:
        checkpoint, signatures = parse_checkpoint(note)
    except FormatError as exc:
        report.add("checkpoint-malformed", f"the checkpoint note is malformed: {exc}", entity="ledger")
        return None
    report.checkpoint = {"size": checkpoint.size, "root": checkpoint.root.hex()}
    if not keys:
        report.add("checkpoint-signature", "no usable key to verify the checkpoint with", entity="ledger")
    else:
        keyring = _keyring(keys)
        try:
            open_checkpoint(note, keyring)
        except SignatureError as exc:
            report.add("checkpoint-signature", str(exc), entity="ledger")
        else:
            report.signed_by = sorted({s.key_label for s in signatures if keyring.find(s.name, s.key_hash)})
    _check_unsigned_copies(document, checkpoint, report)
    return checkpoint


def _check_unsigned_copies(document: dict[str, Any], checkpoint: Checkpoint, report: BundleReport) -> None:
    """The bundle repeats the note's origin, size and root for readers; they must agree."""
    copies = {"origin": (document["origin"], checkpoint.origin),
              "checkpoint.size": (document["checkpoint"].get("size"), checkpoint.size),
              "checkpoint.root": (document["checkpoint"].get("root"), checkpoint.root.hex())}
    for name, (stated, signed) in copies.items():
        if stated != signed:
            report.add("checkpoint-altered", f"the bundle states {name} {stated!r}, the signed note {signed!r}",
                       entity="ledger", field=name)


# --- events, proofs and chains -------------------------------------------------------------


def _check_events(document: dict[str, Any], checkpoint: Checkpoint | None, report: BundleReport) -> list[_Event]:
    """Parse every event entry; check hashes, seqs and inclusion proofs. Returns them by seq."""
    events: dict[int, _Event] = {}
    for section, sealed in (("events", True), ("unsealed", False)):
        for index, entry in enumerate(document[section]):
            event = _parse_event(entry, f"{section}[{index}]", sealed, report)
            if event is None:
                continue
            if event.seq in events:
                report.add("format", f"event #{event.seq} appears twice in the bundle", event=event.seq)
                continue
            events[event.seq] = event
            _check_placement(event, checkpoint, report)
            if sealed and checkpoint is not None:
                _check_inclusion(event, checkpoint, report)
    report.events = sum(e.sealed for e in events.values())
    report.unsealed = len(events) - report.events
    return [events[seq] for seq in sorted(events)]


def _parse_event(entry: Any, where: str, sealed: bool, report: BundleReport) -> _Event | None:
    problem = _entry_problem(entry, sealed)
    if problem:
        report.add("format", f"{where} {problem}", field=where)
        return None
    seq, body = entry["seq"], entry["body"].encode("utf-8")
    digest = hashlib.sha256(body).hexdigest()
    if digest != entry["hash"]:
        report.add("event-altered", f"the stated hash {entry['hash']} is not the SHA-256 of the body ({digest})",
                   event=seq)
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        doc = None
    if not _is_event_body(doc):
        report.add("event-malformed", f"{where}: the body is not a ledger event", event=seq)
        return None
    if doc["seq"] != seq:
        report.add("event-altered", f"the body says it is event #{doc['seq']}", event=seq,
                   entity=" ".join((doc["entity"]["type"], doc["entity"]["id"])), field="seq")
    return _Event(seq, body, digest, doc, sealed, tuple(entry["proof"]) if sealed else ())


def _entry_problem(entry: Any, sealed: bool) -> str | None:
    if not (isinstance(entry, dict) and type(entry.get("seq")) is int and isinstance(entry.get("hash"), str)
            and isinstance(entry.get("body"), str)):
        return "is not an event entry {seq, hash, body}"
    proof = entry.get("proof")
    if sealed and not (isinstance(proof, list) and all(isinstance(h, str) for h in proof)):
        return "has no inclusion proof (a list of hex hashes)"
    try:
        entry["body"].encode("utf-8")
    except UnicodeEncodeError:
        return "has a body that is not valid Unicode text"
    return None


def _is_event_body(doc: Any) -> bool:
    if not isinstance(doc, dict) or type(doc.get("seq")) is not int:
        return False
    entity = doc.get("entity")
    return (isinstance(entity, dict) and isinstance(entity.get("type"), str) and isinstance(entity.get("id"), str)
            and (doc.get("prev") is None or isinstance(doc.get("prev"), str)))


def _check_placement(event: _Event, checkpoint: Checkpoint | None, report: BundleReport) -> None:
    """An event listed as unsealed must lie beyond the checkpoint (else its proof was dropped)."""
    if not event.sealed and checkpoint is not None and event.seq <= checkpoint.size:
        report.add("inclusion-proof", f"listed as newer than the checkpoint (size {checkpoint.size}) without a "
                   "proof, though the checkpoint covers it", event=event.seq, entity=event.label)


def _check_inclusion(event: _Event, checkpoint: Checkpoint, report: BundleReport) -> None:
    """RFC 9162 §2.1.3.2: the body is leaf ``seq - 1`` of the tree the checkpoint signs."""
    try:
        proof = [bytes.fromhex(h) for h in event.proof]
        merkle.verify_inclusion(merkle.leaf_hash(event.body), event.seq - 1, checkpoint.size, proof, checkpoint.root)
    except ValueError:
        report.add("inclusion-proof", "the inclusion proof holds a value that is not hex", event=event.seq,
                   entity=event.label)
    except MerkleProofError as exc:
        report.add("inclusion-proof", f"the body is not in the signed tree: {exc}", event=event.seq,
                   entity=event.label)


def _check_chains(events: list[_Event], complete: set[tuple[str, str]], report: BundleReport) -> None:
    """Each event's ``prev`` is the hash of the previous included event of its entity.

    For the subject's entities (``complete``) the bundle holds every event, so the first
    must start the chain (``prev`` null) and each next one must link to the one before. For
    other entities an event may follow a gap, but if its ``prev`` names an included event,
    that must be its entity's previous included one (no fork, no reordering).
    """
    by_hash = {e.digest: e for e in events}
    last: dict[tuple[str, str], _Event] = {}
    for event in events:
        before = last.get(event.entity)
        last[event.entity] = event
        expected = before.digest if before else None
        if event.prev == expected:
            continue
        if event.entity in complete:
            _chain_broken(event, before, report)
        elif event.prev in by_hash or (event.prev is None and before is not None):
            _chain_broken(event, before, report)


def _chain_broken(event: _Event, before: _Event | None, report: BundleReport) -> None:
    if before is None:
        message = (f"the first event of its entity in the bundle links to {event.prev}, which is not an "
                   "earlier event of this entity here (a subject's chain must start at its first event)")
    else:
        message = f"the event does not link to the previous event #{before.seq} of its entity"
    report.add("chain-broken", message, event=event.seq, entity=event.label, field="prev")


# --- documents and decisions ---------------------------------------------------------------


def _check_blobs(blobs: dict[str, Any], sealed: list[_Event], report: BundleReport) -> dict[str, bytes]:
    """Check every document against its digest; return the decoded contents by digest."""
    referenced = {r["blob"]: (e, r) for e in sealed for r in e.records() if isinstance(r.get("blob"), str)}
    contents: dict[str, bytes] = {}
    for digest, blob in blobs.items():
        content = _decode_blob(digest, blob, report)
        if content is None:
            continue
        contents[digest] = content
        actual = "sha256:" + hashlib.sha256(content).hexdigest()
        if actual != digest:
            report.add("blob-altered", f"document {digest} does not have that digest (it hashes to {actual})",
                       field=f"blobs.{digest}")
        if digest not in referenced:
            report.add("blob-unreferenced", f"document {digest} is named by no event the checkpoint covers",
                       field=f"blobs.{digest}")
        else:
            _check_media_type(digest, blob, *referenced[digest], report)
    for digest, (event, _) in referenced.items():
        if digest not in blobs:
            report.add("blob-missing", f"document {digest} named by the event is not in the bundle",
                       event=event.seq, entity=event.label)
    report.blobs = len(contents)
    return contents


def _decode_blob(digest: str, blob: Any, report: BundleReport) -> bytes | None:
    if not isinstance(blob, dict) or not isinstance(blob.get("content"), str):
        report.add("format", f"document {digest} has no base64 content", field=f"blobs.{digest}")
        return None
    try:
        return base64.b64decode(blob["content"], validate=True)
    except (binascii.Error, ValueError):
        report.add("blob-altered", f"document {digest}: the content is not valid base64", field=f"blobs.{digest}")
        return None


def _check_media_type(digest: str, blob: dict[str, Any], event: _Event, record: dict[str, Any],
                      report: BundleReport) -> None:
    expected = record.get("media_type")
    if expected is not None and blob.get("media_type") != expected:
        report.add("blob-altered", f"document {digest} is labelled {blob.get('media_type')!r}, the event "
                   f"recorded {expected!r}", event=event.seq, entity=event.label, field="media_type")


def _check_decisions(sealed: list[_Event], contents: dict[str, bytes], keys: list[PublicKey],
                     report: BundleReport) -> None:
    """Each promotion decision is signed (``KEY_ID:base64``) by a trusted key over its document."""
    by_id = {key.key_id: key for key in keys}
    for event in sealed:
        for record in event.records():
            if record.get("kind") != _DECISION:
                continue
            report.decisions += 1
            digest = record.get("blob")
            if not isinstance(digest, str):
                report.add("decision-signature", "the promotion decision names no signed document",
                           event=event.seq, entity=event.label, field="blob")
            elif digest in contents:  # else blob-missing is already reported
                _check_decision(record, contents[digest], by_id, event, report)


def _check_decision(record: dict[str, Any], content: bytes, keys: dict[str, PublicKey], event: _Event,
                    report: BundleReport) -> None:
    where = {"event": event.seq, "entity": event.label, "field": "signature"}
    key_id, _, text = str(record.get("signature", "")).partition(":")
    key = keys.get(key_id)
    if key is None:
        report.add("decision-signature", f"the promotion decision is signed by key id {key_id or '(none)'}, "
                   "which is not a trusted key", **where)
        return
    try:
        key.verify(base64.b64decode(text, validate=True), DECISION_SIGNING_PREFIX + content)
    except (binascii.Error, ValueError, SignatureError):
        report.add("decision-signature", f"the promotion decision's signature does not verify with key "
                   f"{key.name}+{key.note_key_hash.hex()}; the decision or its signature was altered", **where)


# --- facts ---------------------------------------------------------------------------------


class _Rows:
    """The rows events wrote (the new side of each captured change), by table, in seq order."""

    def __init__(self, events: Iterable[_Event], report: BundleReport) -> None:
        self._rows: dict[bool, dict[str, list[dict[str, Any]]]] = {True: defaultdict(list), False: defaultdict(list)}
        for event in events:
            for change in event.changes():
                row = _new_row(change)
                if row is _MALFORMED:
                    report.add("event-malformed", "a captured change is not [table, op, old, new]",
                               event=event.seq, entity=event.label)
                elif row is not None:
                    self._rows[event.sealed][change[0]].append(row)

    def values(self, table: str, columns: tuple[str, ...], match: dict[str, Any], *, sealed: bool) -> list[tuple]:
        """``columns`` of the rows of ``table`` whose values equal ``match``'s (compared as text)."""
        rows = self._rows[sealed].get(table, ())
        return [tuple(row.get(c) for c in columns) for row in rows
                if all(str(row.get(k)) == str(v) for k, v in match.items())]


_MALFORMED: Any = object()


def _new_row(change: Any) -> dict[str, Any] | None:
    """The new row of a ``[table, op, old, new]`` change (JSON text or object), None for a delete."""
    if not (isinstance(change, list) and len(change) == 4 and isinstance(change[0], str)):
        return _MALFORMED
    new = change[3]
    if new is None:
        return None
    if isinstance(new, str):
        try:
            new = json.loads(new)
        except (ValueError, RecursionError):
            return _MALFORMED
    return new if isinstance(new, dict) else _MALFORMED


@dataclass(frozen=True)
class _Fact:
    """A value the bundle states, and where covered events must have recorded it.

    ``latest``: the newest covered row must hold it (for values that change, and whose
    changes always sign a checkpoint: a run's end, a version's stage); otherwise any covered
    row may (for values written once: params, a version's run and source).
    """

    name: str
    entity: str
    table: str
    columns: tuple[str, ...]
    stated: tuple[Any, ...]
    match: dict[str, Any]
    latest: bool = False


def _check_facts(model: dict[str, Any] | None, run: dict[str, Any] | None, events: list[_Event],
                 report: BundleReport) -> None:
    """The bundle's model and run facts must be what events under the checkpoint recorded."""
    rows = _Rows(events, report)
    facts = [*(_model_facts(model) if model is not None else ()), *(_run_facts(run, report) if run is not None else ())]
    report.facts = len(facts)
    for fact in facts:
        _check_fact(fact, rows, report)
    if model is not None and run is not None and model.get("run_id") != run.get("run_id"):
        report.add("fact-mismatch", f"the model version names run {model.get('run_id')}, the bundle's run is "
                   f"{run.get('run_id')}", field="run_id")


def _model_facts(model: dict[str, Any]) -> list[_Fact]:
    entity = f"model_version {model.get('name')}/{model.get('version')}"
    match = {"name": model.get("name"), "version": model.get("version")}
    facts = [_Fact(c, entity, "model_versions", (c,), (model.get(c),), match) for c in ("run_id", "source")]
    facts.append(_Fact("stage", entity, "model_versions", ("current_stage",), (model.get("stage"),), match, True))
    return facts


def _run_facts(run: dict[str, Any], report: BundleReport) -> list[_Fact]:
    entity, run_id = f"run {run.get('run_id')}", run.get("run_id")
    params = run.get("params")
    if not isinstance(params, dict):
        report.add("format", "the run's params are not a mapping", entity=entity, field="params")
        params = {}
    facts = [_Fact(f"params.{key}", entity, "params", ("value",), (value,), {"run_uuid": run_id, "key": key})
             for key, value in params.items()]
    facts.append(_Fact("status, end_time", entity, "runs", ("status", "end_time"),
                       (run.get("status"), run.get("end_time")), {"run_uuid": run_id}, True))
    return facts


def _check_fact(fact: _Fact, rows: _Rows, report: BundleReport) -> None:
    def holding(sealed: bool) -> list[tuple]:
        found = rows.values(fact.table, fact.columns, fact.match, sealed=sealed)
        return found[-1:] if fact.latest else found

    recorded = holding(True)
    if fact.stated in recorded:
        return
    if fact.stated in holding(False):
        detail = "only an event newer than the checkpoint recorded it; export again after the next checkpoint"
    elif recorded:
        detail = f"events under the checkpoint recorded {' or '.join(_shown(v) for v in dict.fromkeys(recorded))}"
    else:
        detail = "no event under the checkpoint recorded it"
    report.add("fact-mismatch", f"the bundle states {fact.name} = {_shown(fact.stated)}, but {detail}",
               entity=fact.entity, field=fact.name)


def _shown(values: tuple[Any, ...]) -> str:
    return repr(values[0]) if len(values) == 1 else repr(values)
