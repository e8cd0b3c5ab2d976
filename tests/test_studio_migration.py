"""Running cases and new versions: cases finish on the version they started on unless moved; a
moved case follows the new diagram, timers and forms to closure; a case waiting at a step the
new version removed is refused, and nothing about it changes."""
from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from engine.errors import InvalidData
from engine.models import AuditEvent, Case, HumanTask, OutboxMessage, ProcessVersion, Timer
from engine.scenarios import Walker, application
from engine.studio import migrate_cases, migration_plan
from engine.versions import publish, shipped_files
from engine.workdays import add_working_days

from .conftest import START

TODAY = START.date()


@pytest.fixture(scope="module")
def version_two():
    """Shipped + a step inserted after verification (writes to the coordinator), the follow-up
    timer 5 working days later, and a required question on the follow-up form."""
    files = shipped_files()
    text = files["processes/case_review.bpmn"]
    old_flow = ('<bpmn:sequenceFlow id="flow_verify_incidents_to_prepare_threshold" sourceRef="verify_incidents" '
                'targetRef="prepare_threshold" />')
    assert old_flow in text
    text = text.replace(old_flow, old_flow.replace('targetRef="prepare_threshold"', 'targetRef="note_verified"')
                        + '<bpmn:scriptTask id="note_verified" name="Tell the coordinator" scriptFormat="python">'
                          '<bpmn:script>send_letter("history_overdue", to="coordinator")</bpmn:script></bpmn:scriptTask>'
                          '<bpmn:sequenceFlow id="flow_note_verified" sourceRef="note_verified" '
                          'targetRef="prepare_threshold" />')
    text = text.replace("working_days_from_now(follow_up_working_days)",
                        "working_days_from_now(follow_up_working_days + 5)")
    form = json.loads(files["forms/follow_up.json"])
    form["properties"]["feels_safe"] = {"title": "Does the victim feel safe now?", "type": "boolean"}
    form["required"].append("feels_safe")
    return {**files, "processes/case_review.bpmn": text, "forms/follow_up.json": json.dumps(form)}


@pytest.fixture(scope="module")
def without_verification():
    """Shipped, with the coordinator's verification step removed (histories go straight on)."""
    files = shipped_files()
    text = files["processes/case_review.bpmn"]
    start = text.index('<bpmn:userTask id="verify_incidents"')
    end = text.index("</bpmn:userTask>", start) + len("</bpmn:userTask>")
    text = text[:start] + text[end:]
    text = text.replace('<bpmn:sequenceFlow id="flow_provide_incident_history_to_verify_incidents" '
                        'sourceRef="provide_incident_history" targetRef="verify_incidents" />',
                        '<bpmn:sequenceFlow id="flow_provide_incident_history_to_verify_incidents" '
                        'sourceRef="provide_incident_history" targetRef="prepare_threshold" />')
    text = text.replace('<bpmn:sequenceFlow id="flow_verify_incidents_to_prepare_threshold" '
                        'sourceRef="verify_incidents" targetRef="prepare_threshold" />', "")
    text = text.replace("<bpmn:flowNodeRef>verify_incidents</bpmn:flowNodeRef>", "")
    text = text.replace("threshold_incidents = verified_incidents", "threshold_incidents = incidents")
    return {**files, "processes/case_review.bpmn": text}


def publish_version(service, files, note="next") -> int:
    with service.transaction() as db:
        version, _created = publish(db, files, note=note, by="owner@demo.test", now=service.now())
        return version.number


def start_case(service):
    app = application(TODAY)
    reference = service.apply(app)["reference"]
    return reference, app, Walker(service, reference)


def case_version(service, reference) -> int:
    with service.sessions() as db:
        return db.scalar(select(ProcessVersion.number).join(Case, Case.process_version_id == ProcessVersion.id)
                         .where(Case.reference == reference))


def status(service, reference) -> str:
    with service.sessions() as db:
        return db.scalar(select(Case.status).where(Case.reference == reference))


def letters(service, reference) -> list[tuple[str, str]]:
    with service.sessions() as db:
        case_id = db.scalar(select(Case.id).where(Case.reference == reference))
        return [(m.template, m.recipient_role) for m in db.scalars(
            select(OutboxMessage).where(OutboxMessage.case_id == case_id).order_by(OutboxMessage.id))]


def follow_up_due(service, reference) -> datetime:
    with service.sessions() as db:
        case_id = db.scalar(select(Case.id).where(Case.reference == reference))
        return db.scalar(select(Timer.due_at).where(Timer.case_id == case_id, Timer.name == "follow_up_due"))


def through_panel(walker, app, follow_up_working_days=10):
    walker.verify(app["incidents"])
    walker.confirm()
    walker.schedule_panel(TODAY + timedelta(days=21))
    walker.panel_inputs()
    walker.outcome([], follow_up_working_days=follow_up_working_days)


def advance_to(service, clock, instant: datetime) -> None:
    clock.set(instant + timedelta(minutes=1))
    service.fire_due_timers()


def test_cases_keep_their_version_and_finish_on_it(service, clock, version_two):
    reference, app, walker = start_case(service)
    walker.provide_histories()
    assert publish_version(service, version_two) == 2
    newer = service.apply(application(TODAY))["reference"]
    assert (case_version(service, reference), case_version(service, newer)) == (1, 2)

    through_panel(walker, app)
    due = follow_up_due(service, reference)
    assert due.date() == add_working_days(TODAY, 10)  # version 1's timer
    advance_to(service, clock, due)
    assert [t.name for t in walker.ready()] == ["follow_up"]
    walker.complete("follow_up", {"outcome": "close", "victim_feedback": "Much better."})  # version 1's form
    assert status(service, reference) == "closed" and case_version(service, reference) == 1
    assert ("history_overdue", "coordinator") not in letters(service, reference)


def test_a_moved_case_follows_the_new_version_to_closure(service, clock, version_two):
    reference, app, walker = start_case(service)
    walker.provide_histories()
    publish_version(service, version_two)
    with service.sessions() as db:
        plan = migration_plan(db, 1, 2)
    assert plan == [{"reference": reference, "movable": True, "reasons": [], "waiting_at": ["verify_incidents"]}]
    [ready_before] = walker.ready()

    result = migrate_cases(service, [reference], 2, by="owner@demo.test")
    assert result == {"version": 2, "moved": [reference], "refused": []}
    assert case_version(service, reference) == 2
    [ready_after] = walker.ready()
    assert (ready_after.id, ready_after.name, ready_after.due) == (ready_before.id, "verify_incidents", ready_before.due)
    with service.sessions() as db:
        audit = db.scalars(select(AuditEvent).where(AuditEvent.event == "case_migrated")).one()
        assert (audit.actor, audit.detail["from_version"], audit.detail["to_version"]) == ("owner@demo.test", 1, 2)

    through_panel(walker, app)
    assert ("history_overdue", "coordinator") in letters(service, reference)  # the step version 2 inserted ran
    due = follow_up_due(service, reference)
    assert due.date() == add_working_days(TODAY, 15)  # version 2's timer: 5 working days later
    advance_to(service, clock, due - timedelta(days=1))
    assert walker.ready() == []
    advance_to(service, clock, due)
    assert [t.name for t in walker.ready()] == ["follow_up"]
    with pytest.raises(InvalidData) as refused:  # version 2's form asks the new question
        walker.complete("follow_up", {"outcome": "close", "victim_feedback": "Much better."})
    assert "feels_safe" in str(refused.value)
    walker.complete("follow_up", {"outcome": "close", "victim_feedback": "Much better.", "feels_safe": True})
    assert status(service, reference) == "closed"
    assert letters(service, reference)[-1] == ("closure", "applicant")


def test_a_case_waiting_at_a_removed_step_is_refused(service, without_verification):
    waiting, _app, walker = start_case(service)
    walker.provide_histories()  # now waiting at verify_incidents
    earlier, _app2, _walker2 = start_case(service)  # still waiting for the agencies' histories
    assert publish_version(service, without_verification) == 2
    with service.sessions() as db:
        plan = {item["reference"]: item for item in migration_plan(db, 1, 2)}
    assert not plan[waiting]["movable"]
    assert plan[waiting]["reasons"] == ["verify_incidents (ready) is not in version 2"]
    assert plan[earlier]["movable"]
    with service.sessions() as db:
        tasks_before = sorted((t.id, t.name) for t in db.scalars(select(HumanTask)))

    result = migrate_cases(service, [waiting, earlier, "ASB-1999-00001"], 2, by="owner@demo.test")
    assert result["moved"] == [earlier]
    assert result["refused"] == [
        {"reference": waiting, "reasons": ["verify_incidents (ready) is not in version 2"]},
        {"reference": "ASB-1999-00001", "reasons": ["there is no case ASB-1999-00001"]},
    ]
    assert (case_version(service, waiting), case_version(service, earlier)) == (1, 2)
    with service.sessions() as db:
        assert sorted((t.id, t.name) for t in db.scalars(select(HumanTask))) == tasks_before
        moved = db.scalars(select(AuditEvent.detail).where(AuditEvent.event == "case_migrated")).all()
    assert len(moved) == 1

    # The moved case skips verification on its new version; the refused one still needs it.
    Walker(service, earlier).provide_histories()
    assert [t.name for t in Walker(service, earlier).ready()] == ["confirm_threshold"]
    assert [t.name for t in walker.ready()] == ["verify_incidents"]
