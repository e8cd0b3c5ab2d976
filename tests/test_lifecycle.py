"""Every path of the case review lifecycle, driven through the engine's commands with the
injected clock moved forward (never by sleeping). Runs on SQLite and PostgreSQL."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from engine.errors import Conflict, InvalidData, NotAllowed, TaskNotReady
from engine.models import AuditEvent, Case, HumanTask, OutboxMessage, Timer
from engine.queries import case_view, ready_tasks
from engine.scenarios import Walker, application
from engine.workdays import add_working_days

TODAY = date(2026, 3, 2)


def view(service, reference):
    with service.sessions() as db:
        return case_view(db, reference)


def letters(service, reference):
    return [item["template"] for item in view(service, reference)["letters"]]


def task_names(walker):
    return sorted(t.name for t in walker.ready())


def advance(service, clock, to: date):
    clock.set(datetime.combine(to, datetime.min.time(), timezone.utc) + timedelta(hours=9))
    return service.fire_due_timers()


def start(service, **kwargs):
    app = application(TODAY, **kwargs)
    reference = service.apply(app)["reference"]
    return reference, app, Walker(service, reference)


def to_panel(service, walker, app):
    walker.provide_histories()
    walker.verify(app["incidents"])
    walker.confirm()
    walker.schedule_panel(TODAY + timedelta(days=21))


def start_with_one_action(service):
    """A case whose panel agreed one police action due 2026-04-20 (follow-up far away)."""
    reference, app, walker = start(service)
    to_panel(service, walker, app)
    walker.panel_inputs()
    walker.outcome(ACTIONS[:1], follow_up_working_days=60)
    return reference, walker


ACTIONS = [
    {"description": "Joint visit", "agency": "police", "owner": "PC Evans", "due": "2026-04-20"},
    {"description": "Noise monitoring", "agency": "council", "owner": "EH team", "due": "2026-04-27"},
]


def test_application_is_acknowledged_and_partners_asked_for_history(service):
    reference, _app, walker = start(service)
    case = view(service, reference)
    assert case["status"] == "open" and case["stage"] == "incident_history"
    assert reference.startswith("ASB-2026-")
    assert letters(service, reference)[0] == "acknowledgement"
    histories = walker.ready("provide_incident_history")
    assert sorted(t.agency for t in histories) == ["council", "police"]
    assert all(t.role == "partner" and t.due == add_working_days(TODAY, 10) for t in histories)
    assert case["history"][0]["event"] == "application_received"


def test_threshold_met_full_review_to_closure(service, clock):
    reference, app, walker = start(service)
    walker.provide_histories()
    assert task_names(walker) == ["verify_incidents"]
    walker.verify(app["incidents"])
    case = view(service, reference)
    assert case["stage"] == "threshold_decision"
    walker.confirm()
    case = view(service, reference)
    assert case["threshold"]["met"] is True
    assert case["threshold"]["reasons"] == ["ASB_THREE_IN_SIX_MONTHS"]
    assert case["threshold"]["occasions"] == 3
    assert "threshold_met" in letters(service, reference)
    assert case["stage"] == "panel"

    walker.schedule_panel(TODAY + timedelta(days=21))
    assert task_names(walker) == ["case_summary", "case_summary", "impact_statement"]
    walker.panel_inputs()
    assert task_names(walker) == ["panel_outcome"]
    walker.outcome(ACTIONS, follow_up_working_days=30)
    case = view(service, reference)
    assert case["stage"] == "action_delivery"
    assert "outcome" in letters(service, reference)
    assert sorted((a["agency"], a["status"]) for a in case["actions"]) == [("council", "open"), ("police", "open")]
    delivered = walker.ready("deliver_action")
    assert sorted((t.agency, t.due.isoformat()) for t in delivered) == [("council", "2026-04-27"), ("police", "2026-04-20")]

    police = next(t for t in delivered if t.agency == "police")
    service.complete(police.id, walker.actor_for(police), {"status": "in_progress", "progress_note": "Visit booked."})
    police_action = next(a for a in view(service, reference)["actions"] if a["agency"] == "police")
    assert (police_action["status"], police_action["last_note"]) == ("in_progress", "Visit booked.")
    walker.complete("deliver_action", {"status": "completed", "progress_note": "Done."})
    assert {a["status"] for a in view(service, reference)["actions"]} == {"completed"}

    # The follow-up waits for the agreed period, then asks the coordinator.
    assert "follow_up" not in task_names(walker)
    advance(service, clock, add_working_days(TODAY, 31))
    assert task_names(walker) == ["follow_up"]
    walker.complete("follow_up", {"outcome": "close", "victim_feedback": "Much better now."})
    case = view(service, reference)
    assert case["status"] == "closed" and case["stage"] == "closed"
    assert letters(service, reference)[-1] == "closure"
    assert walker.ready() == []
    with service.sessions() as db:
        assert db.scalar(select(func.count()).select_from(Timer)) == 0


def test_hate_incident_alone_meets_the_threshold(service):
    reference, app, walker = start(service, incidents=1, hate=True)
    walker.provide_histories()
    walker.verify(app["incidents"])
    walker.confirm()
    threshold = view(service, reference)["threshold"]
    assert threshold["met"] is True and threshold["reasons"] == ["HATE_INCIDENT"]
    assert threshold["hate_incidents"] == 1


def test_not_met_goes_through_the_safety_net_and_closes(service):
    reference, app, walker = start(service, incidents=1)
    walker.provide_histories()
    walker.verify(app["incidents"])
    walker.confirm()
    case = view(service, reference)
    assert case["threshold"]["met"] is False and case["stage"] == "safety_net"
    assert "threshold_not_met" in letters(service, reference)
    walker.complete("safety_net", {"further_actions": [{"description": "Mediation offer", "agency": "housing",
                                                        "owner": "Tenancy officer"}],
                                   "summary": "Mediation offered."})
    case = view(service, reference)
    assert case["status"] == "closed"
    assert letters(service, reference)[-1] == "safety_net_closure"


def test_override_records_the_reason(service):
    reference, app, walker = start(service, incidents=1)
    walker.provide_histories()
    walker.verify(app["incidents"])
    with pytest.raises(InvalidData) as error:
        walker.complete("confirm_threshold", {"decision": "override"})
    assert any(e["field"] == "override_reason" for e in error.value.errors)
    walker.confirm(override_reason="The victim is highly vulnerable; repeat reports to the housing provider.")
    threshold = view(service, reference)["threshold"]
    assert threshold["met"] is True and threshold["computed_met"] is False and threshold["overridden"] is True


def test_third_party_consent_given_continues(service):
    reference, _app, walker = start(service, third_party=True)
    assert view(service, reference)["stage"] == "consent"
    assert task_names(walker) == ["victim_consent"]
    assert "consent_request" in letters(service, reference)
    walker.complete("victim_consent", {"consent": "given"})
    assert view(service, reference)["stage"] == "incident_history"


def test_third_party_without_consent_in_time_is_withdrawn(service, clock):
    reference, _app, walker = start(service, third_party=True)
    assert advance(service, clock, add_working_days(TODAY, 9)) == 0
    assert task_names(walker) == ["victim_consent"]
    assert advance(service, clock, add_working_days(TODAY, 11)) >= 1
    case = view(service, reference)
    assert case["status"] == "withdrawn"
    assert "withdrawn_no_consent" in letters(service, reference)
    assert walker.ready() == []


def test_withdrawal_mid_way_stops_everything(service):
    reference, _app, walker = start(service)
    assert walker.ready()
    service.withdraw(reference, reason="Moved house")
    case = view(service, reference)
    assert case["status"] == "withdrawn" and case["stage"] == "withdrawn"
    assert "withdrawal" in letters(service, reference)
    assert walker.ready() == []
    with service.sessions() as db:
        assert db.scalar(select(func.count()).select_from(Timer)) == 0
    with pytest.raises(Conflict):
        service.withdraw(reference)


@pytest.mark.parametrize("decision", ["upheld", "not_upheld"])
def test_escalation(service, decision):
    reference, app, walker = start(service, incidents=1)
    with pytest.raises(Conflict):
        service.escalate(reference, "The threshold was wrongly refused")
    walker.provide_histories()
    walker.verify(app["incidents"])
    walker.confirm()
    service.escalate(reference, "The review missed reports made to the housing provider")
    assert "decide_escalation" in task_names(walker)
    walker.complete("decide_escalation", {"decision": decision, "reasons": "Checked the records."})
    if decision == "upheld":
        walker.complete("act_on_escalation", {"response": "The coordinator will re-run the review."})
        assert letters(service, reference)[-1] == "escalation_upheld"
    else:
        assert letters(service, reference)[-1] == "escalation_not_upheld"
    assert "safety_net" in task_names(walker)  # the case itself carries on


def test_follow_up_can_extend_and_reconvene(service, clock):
    reference, app, walker = start(service)
    to_panel(service, walker, app)
    walker.panel_inputs()
    walker.outcome(ACTIONS[:1], follow_up_working_days=10)
    advance(service, clock, add_working_days(TODAY, 11))
    walker.complete("follow_up", {"outcome": "extend", "victim_feedback": "Some change.", "extend_working_days": 5})
    assert "follow_up" not in task_names(walker)
    advance(service, clock, add_working_days(TODAY, 17))
    walker.complete("follow_up", {"outcome": "reconvene", "victim_feedback": "It has started again."})
    assert "schedule_panel" in task_names(walker)
    assert view(service, reference)["stage"] == "panel"


def test_panel_goes_ahead_when_summaries_are_missing(service, clock):
    reference, app, walker = start(service)
    to_panel(service, walker, app)
    advance(service, clock, TODAY + timedelta(days=21))
    assert task_names(walker) == ["panel_outcome"]


def test_overdue_action_is_reminded_then_escalated(service, clock):
    reference, walker = start_with_one_action(service)
    due = date(2026, 4, 20)
    advance(service, clock, add_working_days(due, -2))
    assert "action_reminder" in letters(service, reference)
    assert "chase_action" not in task_names(walker)
    advance(service, clock, add_working_days(due, 2))
    assert "chase_action" in task_names(walker)
    assert "action_overdue" in letters(service, reference)
    assert view(service, reference)["actions"][0]["status"] == "overdue"
    chase = walker.ready("chase_action")[0]
    assert chase.role == "coordinator"


def test_permissions_and_no_longer_ready(service):
    reference, _app, walker = start(service)
    police = next(t for t in walker.ready("provide_incident_history") if t.agency == "police")
    council_officer = walker.actor_for(next(t for t in walker.ready() if t.agency == "council"))
    with pytest.raises(NotAllowed):
        service.complete(police.id, council_officer, {"incidents": [], "actions_taken": "x"})
    coordinator = Walker(service, reference).actor_for(HumanTask(role="coordinator"))
    with pytest.raises(NotAllowed):
        service.complete(police.id, coordinator, {"incidents": [], "actions_taken": "x"})
    service.complete(police.id, walker.actor_for(police), {"incidents": [], "actions_taken": "x"})
    with pytest.raises(TaskNotReady):
        service.complete(police.id, walker.actor_for(police), {"incidents": [], "actions_taken": "x"})
    with service.sessions() as db:
        assert [t["agency"] for t in ready_tasks(db, actor=council_officer)] == ["council"]
        assert ready_tasks(db, actor=coordinator) == []


def test_invalid_data_changes_nothing(service):
    reference, _app, walker = start(service)
    before = view(service, reference)
    task = walker.ready("provide_incident_history")[0]
    with pytest.raises(InvalidData) as error:
        service.complete(task.id, walker.actor_for(task), {"incidents": [{"occurred_on": "2026-02-30"}]})
    assert error.value.errors
    assert view(service, reference) == before
    assert [t.id for t in walker.ready()] == [t.id for t in Walker(service, reference).ready()]


def test_failure_inside_a_command_rolls_everything_back(service, monkeypatch):
    reference, app, walker = start(service)
    walker.provide_histories()
    before = view(service, reference)
    with service.sessions() as db:
        counts = (db.scalar(select(func.count()).select_from(OutboxMessage)),
                  db.scalar(select(func.count()).select_from(AuditEvent)))
    import engine.runtime as runtime

    def broken(*_args, **_kwargs):
        raise RuntimeError("letter service exploded")

    walker.verify(app["incidents"])  # reaches confirm_threshold
    before = view(service, reference)
    with service.sessions() as db:
        counts = (db.scalar(select(func.count()).select_from(OutboxMessage)),
                  db.scalar(select(func.count()).select_from(AuditEvent)))
    monkeypatch.setattr(runtime, "render", broken)
    with pytest.raises(RuntimeError):
        walker.confirm()
    assert view(service, reference) == before
    with service.sessions() as db:
        assert (db.scalar(select(func.count()).select_from(OutboxMessage)),
                db.scalar(select(func.count()).select_from(AuditEvent))) == counts
    monkeypatch.undo()
    walker.confirm()  # and the task can still be completed afterwards
    assert view(service, reference)["stage"] == "panel"


def test_update_on_an_overdue_action_does_not_chase_again_at_once(service, clock):
    reference, walker = start_with_one_action(service)
    due = date(2026, 4, 20)
    advance(service, clock, add_working_days(due, 2))
    assert len(walker.ready("chase_action")) == 1
    walker.complete("chase_action", {"note": "Phoned the inspector."})
    overdue_letters = letters(service, reference).count("action_overdue")
    walker.complete("deliver_action", {"status": "in_progress", "progress_note": "Visit on Friday."})
    advance(service, clock, add_working_days(due, 3))
    assert letters(service, reference).count("action_overdue") == overdue_letters
    assert walker.ready("chase_action") == []
    advance(service, clock, add_working_days(due, 8))  # five working days without news
    assert letters(service, reference).count("action_overdue") == overdue_letters + 1
    assert len(walker.ready("chase_action")) == 1


def test_letters_go_by_post_to_an_applicant_who_asked_for_post(service):
    by_post = application(TODAY, preferred_contact="post")
    by_email = application(TODAY, name="Robin Shaw")
    references = [service.apply(data)["reference"] for data in (by_post, by_email)]
    with service.sessions() as db:
        recipients = [db.scalar(select(OutboxMessage.recipient).join(Case, Case.id == OutboxMessage.case_id)
                                .where(Case.reference == reference, OutboxMessage.template == "acknowledgement"))
                      for reference in references]
    assert recipients == [f"post:{by_post['applicant']['address']}", by_email["applicant"]["email"]]
