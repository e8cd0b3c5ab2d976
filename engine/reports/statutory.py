"""The figures relevant bodies must publish at least yearly (../shared/docs/domain.md,
"Accountability and figures"): applications received, times the threshold was not met, reviews
carried out and reviews that resulted in recommendations.

Each figure counts one kind of event, in the period in which that event happened:

| figure | one per | dated by |
| --- | --- | --- |
| applications | case | `case_review.received_on` (the date of receipt) |
| threshold_not_met | "not met" decision (after any override) | `case_review.decided_on`, the day it was confirmed |
| reviews_carried_out | case whose panel outcome was recorded (a reconvened panel: the same) | the first panel outcome |
| reviews_with_recommendations | review counted above whose panel made a recommendation or agreed an action | as above |

Withdrawn cases count for what happened before the withdrawal: a withdrawn application was still
received, and a decision or panel outcome recorded before it still stands.

"Resulted in recommendations": the panel outcome listed at least one recommendation (the audit
row of a completed task records how many entries each list answer had, `detail["counts"]`, never
the answers), or agreed an action (an action is a recommendation given to an agency, kept as an
`action` row).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Select, exists, func, not_, or_, select
from sqlalchemy.orm import Session, aliased

from ..models import Action, AuditEvent, Case
from .facts import PublishedFacts, published_facts, task_in
from .sql import answer_count
from .periods import Period


@dataclass(frozen=True)
class Figure:
    key: str
    label: str
    definition: str


FIGURES = (
    Figure("applications", "Applications received",
           "Applications for an ASB case review received in the period, by date of receipt, including "
           "applications later withdrawn."),
    Figure("threshold_not_met", "Times the threshold was not met",
           "Threshold decisions made in the period that found the threshold not met (after any override "
           "by the coordinator), by the date of the decision."),
    Figure("reviews_carried_out", "Case reviews carried out",
           "Case reviews whose panel outcome was recorded in the period. A panel reconvened for the same "
           "case is not counted again."),
    Figure("reviews_with_recommendations", "Case reviews resulting in recommendations",
           "Of those case reviews, the ones where the panel agreed at least one action for an agency."),
)
FIGURE_KEYS = tuple(figure.key for figure in FIGURES)
FIGURES_BY_KEY = {figure.key: figure for figure in FIGURES}


@dataclass(frozen=True)
class StatutoryFigures:
    period: Period
    counts: dict[str, int]  # in FIGURE_KEYS order

    def as_dict(self) -> dict[str, int]:
        return {key: self.counts[key] for key in FIGURE_KEYS}


@dataclass(frozen=True)
class CountedCase:
    """One case behind a figure, and the day it was counted on."""

    reference: str
    received_on: date
    status: str
    stage: str
    counted_on: date


def first_panel_outcomes(period: Period, facts: PublishedFacts) -> Select:
    """(case_id, counted) of each case whose first panel outcome was recorded in the period: the
    completion of a user task declaring `review_carried_out`, in whichever version it ran."""
    review_tasks = facts.task_ids("review_carried_out")
    start, end = period.utc_bounds()
    earlier = aliased(AuditEvent)
    # Commands on one case are serialised by its lock, so ids follow time within a case (`id`
    # breaks a tie; `at` lets the index answer).
    earlier_outcome = exists().where(earlier.case_id == AuditEvent.case_id, earlier.at <= AuditEvent.at,
                                     earlier.id < AuditEvent.id, task_in(review_tasks, earlier))
    return (select(AuditEvent.case_id.label("case_id"), AuditEvent.at.label("counted"))
            .where(task_in(review_tasks), AuditEvent.at >= start, AuditEvent.at < end,
                   AuditEvent.case_id.is_not(None), ~earlier_outcome))


def _selections(period: Period, facts: PublishedFacts) -> dict[str, Select]:
    """For each figure, a SELECT of (case_id, counted) rows: one row per counted event."""
    reviews = first_panel_outcomes(period, facts)
    return {
        "applications": select(Case.id.label("case_id"), Case.received_on.label("counted"))
        .where(Case.received_on >= period.start, Case.received_on <= period.end),
        "threshold_not_met": select(Case.id.label("case_id"), Case.decided_on.label("counted"))
        .where(Case.decided_on >= period.start, Case.decided_on <= period.end,
               not_(Case.threshold["met"].as_boolean())),
        "reviews_carried_out": reviews,
        "reviews_with_recommendations": reviews.where(or_(
            func.coalesce(answer_count(AuditEvent.detail, "recommendations"), 0) > 0,
            exists().where(Action.case_id == AuditEvent.case_id))),
    }


def statutory_figures(db: Session, period: Period) -> StatutoryFigures:
    """The four figures for the period, in one round trip."""
    counts = [select(func.count()).select_from(selection.subquery()).scalar_subquery().label(key)
              for key, selection in _selections(period, published_facts(db)).items()]
    row = db.execute(select(*counts)).one()
    return StatutoryFigures(period, {key: int(getattr(row, key)) for key in FIGURE_KEYS})


def cases_behind(db: Session, period: Period, key: str) -> list[CountedCase]:
    """The cases a figure counts, oldest first (for staff checking the figure)."""
    if key not in FIGURES_BY_KEY:
        raise KeyError(key)
    counted = _selections(period, published_facts(db))[key].subquery()
    rows = db.execute(select(Case.reference, Case.received_on, Case.status, Case.stage, counted.c.counted)
                      .join(counted, counted.c.case_id == Case.id)
                      .order_by(counted.c.counted, Case.reference)).all()
    return [CountedCase(r.reference, r.received_on, r.status, r.stage, _day(r.counted)) for r in rows]


def _day(value: Any) -> date:
    return value.date() if isinstance(value, datetime) else value
