"""Sample applications and ways to walk a case through the lifecycle: used by the demo data,
the tests and the benchmark, so all three drive cases exactly as users do (through commands)."""
from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy import select

from .accounts import require_user
from .errors import CaseReviewError
from .models import Case, HumanTask
from .service import APPLICANT, VICTIM, Actor, CaseReview


def application(received_on: date, *, third_party: bool = False, hate: bool = False, incidents: int = 3,
                name: str = "Alex Morgan", postcode: str = "AB1 2CD", reported_to: str = "police",
                preferred_contact: str | None = None, communication_needs: list[str] | None = None,
                interpreter_language: str | None = None,
                other_communication_needs: str | None = None,
                victim_contact: dict[str, str] | None = None) -> dict[str, Any]:
    """An application whose incidents meet the ASB rule (3 occasions, the last reported a week ago)
    unless `incidents` < 3; `hate` marks the last one as hate-motivated. The contact preference
    and communication needs are left out unless given (`communication_needs` lists
    interpreter, large_print, easy_read, bsl, other; the first and last need their detail).
    A third party's victim gets their own email and phone unless `victim_contact` says otherwise
    (e.g. {"phone": ..., "address": ...} for a victim without email)."""
    items = []
    for number in range(incidents):
        occurred = received_on - timedelta(days=7 + 20 * (incidents - 1 - number))
        items.append({
            "occurred_on": occurred.isoformat(),
            "reported_on": (occurred + timedelta(days=1)).isoformat(),
            "reported_to": reported_to if number % 2 == 0 else "council",
            "reference": f"REF-{number + 1:03d}",
            "description": f"Loud music and shouting late at night (incident {number + 1}).",
            "hate": hate and number == incidents - 1,
        })
    applicant = {
        "name": "Sam Carer" if third_party else name,
        "email": "applicant@example.org",
        "phone": "01632 960000",
        "address": "1 High Street, Exampleton",
        "postcode": postcode,
        "relationship_to_victim": "carer" if third_party else "self",
        "consent_confirmed": True,
    }
    for key, value in (("preferred_contact", preferred_contact), ("communication_needs", communication_needs),
                       ("interpreter_language", interpreter_language),
                       ("other_communication_needs", other_communication_needs)):
        if value is not None:
            applicant[key] = value
    victim = {}
    if third_party:
        victim = dict(victim_contact) if victim_contact is not None else {
            "email": "victim@example.org", "phone": "01632 960111"}
    return {
        "applicant": applicant,
        "victim": {"type": "individual", "name": name, "postcode": postcode, **victim},
        "incidents": items,
        "impact": "I cannot sleep and I am afraid to leave my home.",
        "received_on": received_on.isoformat(),
    }


class Walker:
    """Completes a case's tasks by name, as the right person for each."""

    def __init__(self, service: CaseReview, reference: str):
        self.service = service
        self.reference = reference

    def actor_for(self, task: HumanTask) -> Actor:
        if task.role == "applicant":
            return APPLICANT
        if task.role == "victim":
            return VICTIM  # as by the consent link in the victim's letter
        email = f"{task.agency}@demo.test" if task.role == "partner" else f"{task.role}@demo.test"
        with self.service.sessions() as db:
            user = require_user(db, email)
            db.expunge(user)
        return Actor(user.email, user)

    def ready(self, name: str | None = None) -> list[HumanTask]:
        with self.service.sessions() as db:
            query = (select(HumanTask).join(Case, Case.id == HumanTask.case_id)
                     .where(Case.reference == self.reference).order_by(HumanTask.created_at, HumanTask.id))
            if name:
                query = query.where(HumanTask.name == name)
            tasks = list(db.scalars(query))
            for task in tasks:
                db.expunge(task)
            return tasks

    def complete(self, name: str, data: dict, *, all_of_them: bool = True) -> int:
        tasks = self.ready(name)
        if not tasks:
            names = ", ".join(sorted({t.name for t in self.ready()})) or "none"
            raise CaseReviewError(f"{self.reference}: no ready task {name!r} (ready: {names})")
        for task in tasks if all_of_them else tasks[:1]:
            self.service.complete(task.id, self.actor_for(task), data)
        return len(tasks)

    # The lifecycle's steps with plausible answers.
    def provide_histories(self) -> None:
        self.complete("provide_incident_history", {"incidents": [], "actions_taken": "Warning letter sent."})

    def verify(self, incidents: list[dict]) -> None:
        self.complete("verify_incidents", {"verified_incidents": incidents, "verification_notes": "Checked."})

    def confirm(self, override_reason: str | None = None) -> None:
        data = {"decision": "override", "override_reason": override_reason} if override_reason else {"decision": "confirm"}
        self.complete("confirm_threshold", data)

    def schedule_panel(self, panel_date: date, agencies=("police", "council")) -> None:
        self.complete("schedule_panel", {"panel_date": panel_date.isoformat(), "chair_name": "Pat Chair",
                                         "chair_email": "chair@demo.test", "panel_agencies": list(agencies)})

    def panel_inputs(self) -> None:
        self.complete("case_summary", {"summary": "Three reports, two visits.", "incidents_held": 3,
                                       "actions_taken": "Visits and a warning letter."})
        self.complete("impact_statement", {"statement": "I want it to stop.", "wishes_to_attend": True})

    def outcome(self, actions: list[dict], follow_up_working_days: int = 30) -> None:
        self.complete("panel_outcome", {"attendees": ["Police", "Council", "Pat Chair"],
                                        "findings": "Reports were handled separately.",
                                        "recommendations": ["Joint visit", "Noise monitoring"],
                                        "actions": actions, "follow_up_working_days": follow_up_working_days})
