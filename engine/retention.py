"""Retention: closed and withdrawn cases are anonymised once the retention period after their
closure has passed (Settings.retention_years, CASEREVIEW_RETENTION_YEARS, 6 by default).

Each case is anonymised in its own short transaction with its own audit event, so a long run
never holds locks for long and a failure leaves every earlier case done. A dry run works out
the same changes and writes nothing.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from . import anonymise, audit
from .db import is_postgres
from .errors import InvalidData
from .models import AuditEvent, Case
from .workdays import months_before


def closed_before(now: datetime, years: int) -> datetime:
    """Cases closed at or before this instant are past the retention period."""
    if years < 1:
        raise InvalidData([{"field": "CASEREVIEW_RETENTION_YEARS", "message": "must be a whole number of years, 1 or more"}],
                          "The retention period is not valid")
    return datetime.combine(months_before(now.date(), 12 * years), now.timetz())


def due_for_anonymisation(db: Session, cutoff: datetime) -> list[int]:
    """Ids of closed or withdrawn cases closed by `cutoff` and not anonymised yet, oldest first."""
    already = exists().where(AuditEvent.case_id == Case.id, AuditEvent.event.in_(anonymise.ANONYMISED_EVENTS))
    return list(db.scalars(select(Case.id).where(Case.status.in_(anonymise.CLOSED_STATUSES),
                                                 Case.closed_at <= cutoff, ~already)
                           .order_by(Case.closed_at, Case.id)))


def run(service, *, dry_run: bool = False, actor: str = "system") -> dict:
    """Anonymise every case past the retention period (or, with `dry_run`, list what would change)."""
    now = service.now()
    years = service.settings.retention_years
    cutoff = closed_before(now, years)
    with service.sessions() as db:
        candidates = due_for_anonymisation(db, cutoff)
    done: list[dict] = []
    for case_id in candidates:
        if dry_run:
            with service.sessions() as db:
                change = anonymise.plan(db, db.get(Case, case_id), now)
                db.rollback()
        else:
            with service.transaction() as db:
                change = anonymise_case(db, lock_case(db, case_id), now, actor=actor, event="case_anonymised",
                                        detail={"reason": "retention", "retention_years": years})
        if change.fields:
            done.append(change.as_dict())
    result = {"dry_run": dry_run, "retention_years": years, "closed_before": cutoff.isoformat(), "cases": done}
    if not dry_run:
        with service.transaction() as db:
            audit.record(db, at=now, actor=actor, event="retention_run",
                         detail={"retention_years": years, "closed_before": cutoff.isoformat(),
                                 "cases": [item["reference"] for item in done]})
    return result


def anonymise_case(db: Session, case: Case, now: datetime, *, actor: str, event: str,
                   detail: dict) -> anonymise.Anonymisation:
    """Anonymise one (locked) case and audit it; the audit row names the fields, never their values."""
    change = anonymise.plan(db, case, now)
    change.apply(db)
    audit.record(db, at=now, actor=actor, event=event, case_id=case.id, stage_before=case.stage,
                 stage_after=case.stage, detail={**detail, "fields": change.fields})
    return change


def lock_case(db: Session, case_id: int) -> Case:
    query = select(Case).where(Case.id == case_id).execution_options(populate_existing=True)
    if is_postgres(db):
        query = query.with_for_update()
    return db.scalars(query).one()
