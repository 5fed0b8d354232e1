"""A finding: one integrity problem a check reports (``verify`` of a database, ``verify-bundle``
of an export). Kept apart so that the offline bundle verifier needs neither SQLAlchemy nor MLflow."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Finding:
    """One integrity problem: what kind, which entity and field, which event."""

    kind: str
    message: str
    entity: str | None = None
    field: str | None = None
    event: int | None = None

    def __str__(self) -> str:
        where = ", ".join(
            part
            for part in (
                self.entity,
                f"field {self.field}" if self.field else None,
                f"event #{self.event}" if self.event is not None else None,
            )
            if part
        )
        return f"[{self.kind}] {self.message}" + (f" ({where})" if where else "")
