"""The audit trail: one append-only row per command, naming who, what, when and the stage change."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from .models import AuditEvent


def record(db: Session, *, at: datetime, actor: str, event: str, case_id: int | None = None,
           stage_before: str | None = None, stage_after: str | None = None, detail: dict | None = None) -> None:
    db.add(AuditEvent(at=at, actor=actor, event=event, case_id=case_id, stage_before=stage_before,
                      stage_after=stage_after, detail=detail or {}))
