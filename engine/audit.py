"""The audit trail: one append-only row per command, naming who, what, when and the stage change.

Rows form a hash chain. Each row stores its position (`seq`), the hash of the row before it
(`prev_hash`) and its own `hash`: sha256 over a canonical JSON of its content and `prev_hash`.
Changing, deleting or reordering a row after the fact breaks the chain at that row, which
`verify_chain` (and `casereview audit verify`) reports.

`record` only queues the event in the caller's transaction; the rows are chained and inserted
just before that transaction commits. Appends are serialised there so the chain never forks: on
PostgreSQL a transaction-level advisory lock, held for the insert and the commit only; SQLite
already serialises writers (BEGIN IMMEDIATE). The unique index on `seq` refuses a fork even if
something bypassed the lock.

Audit rows are kept for ever and never changed (a trigger refuses UPDATE and DELETE), so they
must not hold an applicant's personal data: record what happened, not what people wrote.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Iterable

from sqlalchemy import event as sqlalchemy_event
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from .models import AuditEvent, Case

GENESIS = "0" * 64
# Any constant works; it only has to be the same for every writer of the database.
CHAIN_LOCK_KEY = 0x61756469745F6576  # "audit_ev"

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}([T ][0-9:.+\-Z]+)?$")
_PENDING = "casereview_audit_pending"  # Session.info key: this transaction's events, not yet chained


def record(db: Session, *, at: datetime, actor: str, event: str, case_id: int | None = None,
           stage_before: str | None = None, stage_after: str | None = None, detail: dict | None = None) -> None:
    """Add an event to the caller's transaction. It joins the chain when the transaction commits
    (`_chain_pending`), so the chain is locked only for the insert and the commit, wherever in a
    command this is called."""
    fields = dict(at=_utc(at), actor=actor, event=event, case_id=case_id, stage_before=stage_before,
                  stage_after=stage_after, detail=_as_json(detail or {}))
    # Tagged with the (sub)transaction it belongs to: a rolled-back savepoint takes its events along.
    db.info.setdefault(_PENDING, []).append((db.get_nested_transaction() or db.get_transaction(), fields))


@sqlalchemy_event.listens_for(Session, "before_commit")
def _chain_pending(db: Session) -> None:
    """Append this transaction's events to the chain, last thing before COMMIT. Holding the chain
    lock, a transaction only inserts audit rows: every row lock they need (KEY SHARE on their
    cases, for the foreign key) is taken first, so no lock cycle can form with a command that
    holds a case FOR UPDATE and waits for the chain."""
    if db.get_nested_transaction() is not None:  # a savepoint released: wait for the real commit
        return
    pending = [fields for _transaction, fields in db.info.pop(_PENDING, None) or []]
    if not pending:
        return
    db.flush()
    _lock_chain(db, sorted({fields["case_id"] for fields in pending if fields["case_id"] is not None}))
    seq, prev_hash = _chain_head(db)
    for fields in pending:
        seq += 1
        row = AuditEvent(seq=seq, prev_hash=prev_hash, **fields)
        row.hash = prev_hash = event_hash(_content_of(row), prev_hash)
        db.add(row)
    db.flush()


@sqlalchemy_event.listens_for(Session, "after_soft_rollback")
def _forget_rolled_back(db: Session, rolled_back) -> None:
    """Drop the events of the transaction rolled back (a savepoint or the whole transaction)."""
    pending = db.info.get(_PENDING)
    if pending:
        db.info[_PENDING] = [(tx, fields) for tx, fields in pending if not _within(tx, rolled_back)]


def _within(transaction, ancestor) -> bool:
    if transaction is None:  # queued before the session began: belongs to the outermost transaction
        return ancestor.parent is None
    while transaction is not None:
        if transaction is ancestor:
            return True
        transaction = transaction.parent
    return False


def summarise(payload: dict) -> dict:
    """What may go into `detail` from user-supplied data: dates, numbers and flags kept; any
    other text (reasons, names, notes: even one word may be a name) replaced by the list of
    keys that were withheld."""
    kept, withheld = {}, []
    for key, value in payload.items():
        if value is None or isinstance(value, (bool, int, float)) or (isinstance(value, str) and _ISO_DATE.match(value)):
            kept[key] = value
        else:
            withheld.append(key)
    return {**kept, **({"withheld": sorted(withheld)} if withheld else {})}


# ----- the chain -------------------------------------------------------------------------
def canonical(content: dict[str, Any], prev_hash: str) -> bytes:
    """The exact bytes a row's hash covers: its content and the previous row's hash."""
    return json.dumps({**content, "prev_hash": prev_hash}, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode("utf-8")


def event_hash(content: dict[str, Any], prev_hash: str) -> str:
    return hashlib.sha256(canonical(content, prev_hash)).hexdigest()


def content_of(*, at: datetime, actor: str, event: str, case_id: int | None, stage_before: str | None,
               stage_after: str | None, detail: Any) -> dict[str, Any]:
    """A row's hashed content. `seq` is left out on purpose: order is fixed by `prev_hash`, so a
    moved row shows up as out of order rather than as changed."""
    return {"at": _utc(at).isoformat(timespec="microseconds"), "actor": actor, "event": event,
            "case_id": case_id, "stage_before": stage_before, "stage_after": stage_after,
            "detail": detail if detail is not None else {}}


def _content_of(row) -> dict[str, Any]:
    return content_of(at=row.at, actor=row.actor, event=row.event, case_id=row.case_id,
                      stage_before=row.stage_before, stage_after=row.stage_after, detail=row.detail)


def _lock_chain(db: Session, case_ids: list[int]) -> None:
    """The foreign keys' KEY SHARE locks first (a command holding a case FOR UPDATE blocks them),
    then the chain: otherwise a case view holding the chain lock, waiting for that command, and
    the command waiting for the chain lock would deadlock. SQLite has one writer at a time."""
    if db.get_bind().dialect.name != "postgresql":
        return
    if case_ids:
        db.execute(select(Case.id).where(Case.id.in_(case_ids)).order_by(Case.id)
                   .with_for_update(read=True, key_share=True))
    db.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": CHAIN_LOCK_KEY})


def _chain_head(db: Session) -> tuple[int, str]:
    head = db.execute(select(AuditEvent.seq, AuditEvent.hash).where(AuditEvent.seq.is_not(None))
                      .order_by(AuditEvent.seq.desc()).limit(1)).first()
    return (head.seq, head.hash) if head else (0, GENESIS)


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=timezone.utc) if at.tzinfo is None else at.astimezone(timezone.utc)


def _as_json(detail: dict) -> dict:
    """The detail exactly as the JSON column will give it back, so the hash can be checked later."""
    return json.loads(json.dumps(detail, default=str))


# ----- verification ----------------------------------------------------------------------
@dataclass
class ChainReport:
    events: int = 0
    head: dict | None = None
    problems: list[dict] = field(default_factory=list)
    more_problems: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict:
        result: dict[str, Any] = {"ok": self.ok, "events": self.events}
        if self.head:
            result["head"] = self.head
        if self.problems:
            result["problems"] = self.problems
            result["more_problems"] = self.more_problems
        return result


def verify_chain(db: Session, max_problems: int = 20) -> ChainReport:
    """Walk the chain in order and report the first broken rows and why: content changed since
    it was written, rows missing (deleted), rows out of order, rows written outside the chain.
    Deleting the newest rows cannot be seen from the chain alone: compare `head` with a copy
    kept elsewhere."""
    report = ChainReport()

    def problem(item: dict) -> bool:
        if len(report.problems) >= max_problems:
            report.more_problems = True
            return False
        report.problems.append(item)
        return True

    columns = (AuditEvent.id, AuditEvent.seq, AuditEvent.at, AuditEvent.actor, AuditEvent.event,
               AuditEvent.case_id, AuditEvent.stage_before, AuditEvent.stage_after, AuditEvent.detail,
               AuditEvent.prev_hash, AuditEvent.hash)
    rows = db.execute(select(*columns).where(AuditEvent.seq.is_not(None)).order_by(AuditEvent.seq)
                      .execution_options(yield_per=2000))
    expected_seq, prev_hash, last = 1, GENESIS, None
    for row in rows:
        report.events += 1
        if row.seq != expected_seq:
            missing = (f"seq {expected_seq}" if row.seq == expected_seq + 1
                       else f"seq {expected_seq} to {row.seq - 1}")
            problem({"seq": row.seq, "id": row.id, "problem": "deleted",
                     "why": f"the row(s) before it are missing: {missing}"})
        elif row.prev_hash != prev_hash:
            _explain_broken_link(db, row, problem)
        if event_hash(_content_of(row), row.prev_hash) != row.hash:
            problem({"seq": row.seq, "id": row.id, "problem": "changed",
                     "why": "its content no longer matches the hash written with it"})
        expected_seq, prev_hash, last = row.seq + 1, row.hash, row
    if last is not None:
        report.head = {"seq": last.seq, "hash": last.hash}
    for row_id in _unchained(db):
        report.events += 1
        problem({"seq": None, "id": row_id, "problem": "unchained",
                 "why": "the row was written outside the audit chain"})
    return report


def _explain_broken_link(db: Session, row, problem) -> None:
    owner = db.scalar(select(AuditEvent.seq).where(AuditEvent.hash == row.prev_hash))
    if owner is not None:
        problem({"seq": row.seq, "id": row.id, "problem": "reordered",
                 "why": f"it was written after seq {owner} but now sits after seq {row.seq - 1}"})
    else:
        problem({"seq": row.seq, "id": row.id, "problem": "changed",
                 "why": f"the row before it (seq {row.seq - 1}) is not the row it was chained to: "
                        "that row's hash was changed or the row replaced"})


def _unchained(db: Session) -> Iterable[int]:
    return db.scalars(select(AuditEvent.id).where(AuditEvent.seq.is_(None)).order_by(AuditEvent.id).limit(1000))


# ----- reading the trail (the administrators' viewer) ------------------------------------
@dataclass(frozen=True)
class TrailFilter:
    reference: str = ""
    actor: str = ""
    event: str = ""
    since: date | None = None  # UTC days, both ends included
    until: date | None = None


def trail_query(where: TrailFilter):
    """Events matching the filter, newest first, with their case's reference."""
    query = (select(AuditEvent, Case.reference).outerjoin(Case, Case.id == AuditEvent.case_id)
             .order_by(AuditEvent.id.desc()))
    if where.reference:
        query = query.where(Case.reference == where.reference.strip().upper())
    if where.actor:
        query = query.where(func.lower(AuditEvent.actor).contains(where.actor.strip().lower(), autoescape=True))
    if where.event:
        query = query.where(AuditEvent.event == where.event)
    if where.since:
        query = query.where(AuditEvent.at >= datetime.combine(where.since, time.min, timezone.utc))
    if where.until:
        query = query.where(AuditEvent.at < datetime.combine(where.until + timedelta(days=1), time.min, timezone.utc))
    return query


MAX_TRAIL_PAGE = 1_000_000  # 50 million events: beyond it, filters find an event faster than paging


def trail_page(db: Session, where: TrailFilter, page: int = 1, per_page: int = 50) -> dict:
    """One page of events; `more` says whether a next page exists (no count over the whole trail)."""
    page = min(max(1, page), MAX_TRAIL_PAGE)  # an offset the database can take
    rows = db.execute(trail_query(where).offset((page - 1) * per_page).limit(per_page + 1)).all()
    return {"items": [trail_item(event, reference) for event, reference in rows[:per_page]],
            "page": page, "more": len(rows) > per_page}


def trail_item(event: AuditEvent, reference: str | None) -> dict:
    return {"seq": event.seq, "at": event.at, "actor": event.actor, "event": event.event, "case": reference,
            "stage_before": event.stage_before, "stage_after": event.stage_after, "detail": event.detail or {}}


def event_names(db: Session) -> list[str]:
    return list(db.scalars(select(AuditEvent.event).distinct().order_by(AuditEvent.event)))
