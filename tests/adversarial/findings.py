"""Reading verify's JSON report: silence on clean databases, named findings on attacks."""

from __future__ import annotations

from typing import Any, Callable

import pytest

Verify = Callable[..., "tuple[int, dict[str, Any]]"]
_ANY = object()


def describe(report: dict[str, Any]) -> str:
    return "\n".join(
        f"  [{f['kind']}] entity={f['entity']!r} field={f['field']!r} event={f['event']!r}: {f['message']}"
        for f in report.get("findings", [])
    ) or "  (no findings)"


def assert_clean(verify: Verify, uri: str, *extra: str) -> dict[str, Any]:
    """``verify`` exits 0 with no finding on the untouched database."""
    code, report = verify(uri, *extra)
    assert code == 0 and report["ok"] and report["findings"] == [], (
        f"verify is not silent on an untouched database (exit {code}):\n{describe(report)}"
    )
    return report


def assert_caught(verify: Verify, uri: str, *extra: str) -> dict[str, Any]:
    """``verify`` exits 1 (integrity failure) with at least one finding; returns the report."""
    code, report = verify(uri, *extra)
    assert code == 1, f"verify missed the attack (exit {code}):\n{describe(report)}"
    assert report["ok"] is False and report["findings"], describe(report)
    return report


def finding(report: dict[str, Any], kind: str, *, entity: Any = _ANY, field: Any = _ANY,
            event: Any = _ANY) -> dict[str, Any]:
    """The first finding of ``kind`` that names ``entity``, ``field`` and ``event`` (those given)."""
    for f in report["findings"]:
        if f["kind"] != kind:
            continue
        if entity is not _ANY and f["entity"] != entity:
            continue
        if field is not _ANY and f["field"] != field:
            continue
        if event is not _ANY and f["event"] != event:
            continue
        return f
    wanted = ", ".join(
        f"{n}={v!r}" for n, v in (("entity", entity), ("field", field), ("event", event)) if v is not _ANY
    )
    pytest.fail(f"no [{kind}] finding with {wanted or 'any location'}; the report has:\n{describe(report)}")


def no_finding_about(report: dict[str, Any], entity: str) -> None:
    """No finding names ``entity``."""
    about = [f for f in report["findings"] if f["entity"] == entity]
    assert not about, f"findings name {entity}, which was not attacked:\n{describe({'findings': about})}"


def run_entity(run_id: str) -> str:
    return f"run {run_id}"
