"""The coordinator's operational figures for a period: applications by month and route, threshold
decisions, working days against the local targets, actions by agency, escalations.

Every number comes from the rows the engine writes (engine/reports/facts.py); each query groups as
much as it can in the database, so the work here grows with the period's distinct dates, not with
its cases.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from ..models import Action, AuditEvent, Case, HumanTask, OutboxMessage
from .facts import ESCALATION_REQUESTED, PublishedFacts, published_facts, task_in
from .measures import Spread, working_days_for
from .periods import Period
from .sql import utc_day
from .statutory import first_panel_outcomes

ROUTES = ("victim", "third_party")
ACTION_OUTCOMES = ("completed_on_time", "completed_late", "overdue", "not_yet_due", "stopped")


@dataclass(frozen=True)
class MonthCounts:
    month: date  # the first day of the month
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True)
class Timing:
    key: str
    label: str
    target: int | None  # working days (None: the latest version sets none)
    spread: Spread
    within_target: int


@dataclass(frozen=True)
class AgencyActions:
    agency: str
    counts: dict[str, int]  # ACTION_OUTCOMES

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True)
class Escalations:
    requested: int
    upheld: int
    not_upheld: int
    waiting_now: int


@dataclass
class Dashboard:
    period: Period
    today: date
    applications: list[MonthCounts] = field(default_factory=list)
    decisions: list[MonthCounts] = field(default_factory=list)
    timings: list[Timing] = field(default_factory=list)
    actions: list[AgencyActions] = field(default_factory=list)
    escalations: Escalations | None = None


def build_dashboard(db: Session, period: Period, today: date) -> Dashboard:
    facts = published_facts(db)
    return Dashboard(period=period, today=today, applications=applications_by_month(db, period),
                     decisions=decisions_by_month(db, period), timings=timings(db, period, facts),
                     actions=actions_by_agency(db, period, today), escalations=escalations(db, period, facts))


def _by_month(period: Period, rows, keys: tuple[str, ...]) -> list[MonthCounts]:
    """rows of (day, key, count) -> one MonthCounts per month of the period, zeros included."""
    totals: dict[date, Counter] = {month: Counter() for month in period.months()}
    for day, key, count in rows:
        totals[day.replace(day=1)][key] += count
    return [MonthCounts(month, {key: counts[key] for key in keys}) for month, counts in totals.items()]


def applications_by_month(db: Session, period: Period) -> list[MonthCounts]:
    rows = db.execute(select(Case.received_on, Case.route, func.count())
                      .where(Case.received_on >= period.start, Case.received_on <= period.end)
                      .group_by(Case.received_on, Case.route)).all()
    return _by_month(period, rows, ROUTES)


def decisions_by_month(db: Session, period: Period) -> list[MonthCounts]:
    met = Case.threshold["met"].as_boolean()
    rows = db.execute(select(Case.decided_on, met, func.count())
                      .where(Case.decided_on >= period.start, Case.decided_on <= period.end)
                      .group_by(Case.decided_on, met)).all()
    return _by_month(period, [(day, "met" if is_met else "not_met", n) for day, is_met, n in rows], ("met", "not_met"))


def _timing(key: str, label: str, target: int | None, pairs: list[tuple[date, date]], weights: list[int]) -> Timing:
    days = working_days_for(pairs)
    values = [d for d, weight in zip(days, weights) for _ in range(weight)]
    return Timing(key, label, target, Spread.of(values),
                  sum(1 for d in values if d <= target) if target is not None else 0)


def timings(db: Session, period: Period, facts: PublishedFacts) -> list[Timing]:
    """Working days from receipt to the threshold decision (decisions made in the period), from the
    decision to the panel and from the panel to the outcome letter (first panel outcomes recorded
    in the period), against the targets the latest version's due dates set."""
    decided = db.execute(select(Case.received_on, Case.decided_on, func.count())
                         .where(Case.decided_on >= period.start, Case.decided_on <= period.end)
                         .group_by(Case.received_on, Case.decided_on)).all()
    reviews = first_panel_outcomes(period, facts).subquery()
    # The outcome letter is written by the command that records the outcome, so a case's first
    # outcome letter is its first panel's.
    letter_at = (select(func.min(OutboxMessage.created_at))
                 .where(OutboxMessage.case_id == reviews.c.case_id, OutboxMessage.template.in_(facts.letters("outcome_letter_sent")))
                 .correlate(reviews).scalar_subquery())
    each = (select(Case.decided_on.label("decided"), utc_day(reviews.c.counted).label("panel"),
                   utc_day(letter_at).label("letter"))
            .join(reviews, reviews.c.case_id == Case.id).subquery())
    to_panel: Counter = Counter()
    to_letter: Counter = Counter()
    for decided_on, panel, letter, count in db.execute(select(each.c.decided, each.c.panel, each.c.letter,
                                                              func.count())
                                                       .group_by(each.c.decided, each.c.panel, each.c.letter)):
        if decided_on:
            to_panel[(decided_on, panel)] += count
        if letter:
            to_letter[(panel, letter)] += count
    return [
        _timing("decision", "Receipt to threshold decision", facts.target("threshold_decided"),
                [(r.received_on, r.decided_on) for r in decided], [r[2] for r in decided]),
        _timing("panel", "Threshold decision to panel", facts.target("panel_arranged"), list(to_panel), list(to_panel.values())),
        _timing("outcome_letter", "Panel to outcome letter", facts.target("outcome_letter_sent"),
                list(to_letter), list(to_letter.values())),
    ]


def actions_by_agency(db: Session, period: Period, today: date) -> list[AgencyActions]:
    """Actions due in the period, by owning agency: completed by the due date or after it; not
    completed and overdue or not yet due (on open cases); stopped (the case closed or was
    withdrawn before the action was completed)."""
    completed = Action.status == "completed"
    outcome = case((and_(completed, utc_day(Action.updated_at) <= Action.due), "completed_on_time"),
                   (completed, "completed_late"),
                   (Case.status != "open", "stopped"),
                   (Action.due < today, "overdue"),
                   else_="not_yet_due").label("outcome")
    each = (select(Action.agency, outcome).join(Case, Case.id == Action.case_id)
            .where(Action.due >= period.start, Action.due <= period.end).subquery())
    counts: dict[str, Counter] = defaultdict(Counter)
    for agency, kind, count in db.execute(select(each.c.agency, each.c.outcome, func.count())
                                          .group_by(each.c.agency, each.c.outcome)):
        counts[agency][kind] += count
    return [AgencyActions(agency, {key: counts[agency][key] for key in ACTION_OUTCOMES}) for agency in sorted(counts)]


def escalations(db: Session, period: Period, facts: PublishedFacts) -> Escalations:
    """Escalations asked for in the period; decisions made in it (not upheld when the decision's
    command wrote the 'not upheld' letter, upheld otherwise); decisions waiting now."""
    start, end = period.utc_bounds()
    decide_tasks = facts.task_ids("escalation_decided")
    not_upheld_letters = set(facts.letters("escalation_not_upheld_letter_sent"))
    requested = db.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.event == ESCALATION_REQUESTED, AuditEvent.at >= start, AuditEvent.at < end))
    details = db.scalars(select(AuditEvent.detail).where(task_in(decide_tasks),
                                                         AuditEvent.at >= start, AuditEvent.at < end)).all()
    not_upheld = sum(1 for detail in details if any(
        effect.get("event") == "letter" and effect.get("template") in not_upheld_letters
        for effect in (detail or {}).get("effects", [])))
    waiting = db.scalar(select(func.count()).select_from(HumanTask).where(  # role first: its index answers
        HumanTask.role.in_(facts.lanes("escalation_decided")), HumanTask.name.in_(decide_tasks)))
    return Escalations(requested=requested or 0, upheld=len(details) - not_upheld, not_upheld=not_upheld,
                       waiting_now=waiting or 0)
