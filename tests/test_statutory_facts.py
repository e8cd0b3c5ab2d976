"""The statutory figures follow the facts the bundle declares (`statutoryFact`), not element ids
held in Python: a process owner renames the panel outcome task in the studio and reviews done
on either version still count; a bundle that stops declaring the fact is refused, with the
reason; versions published before facts were declared still count through the legacy names."""
from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from click.testing import CliRunner

from engine.cli import main
from engine.reports import build_dashboard, statutory_figures
from engine.reports.periods import Period
from engine.reports.statutory import cases_behind
from engine.scenarios import Walker, application
from engine.studio import BundleInvalid, publish_bundle, validate_bundle
from engine.versions import latest_version, publish, shipped_files

CASE_REVIEW = "processes/case_review.bpmn"
ESCALATION = "processes/escalation.bpmn"
RENAMED = "record_panel_findings"
REVIEW_FACT = '<spiffworkflow:property name="statutoryFact" value="review_carried_out" />'


def renamed_panel_outcome(diagram: str) -> str:
    """Every reference to the element `panel_outcome` (its id, lane membership, flows and shape)
    renamed; its properties, and its form file panel_outcome.json, kept."""
    return re.sub(r"(?<![\w.])panel_outcome(?![\w.])", RENAMED, diagram)


def review_case(service, name: str, outcome_task: str) -> str:
    """A case driven to its panel outcome, recorded through `outcome_task`; its reference."""
    start = service.now().date()
    reference = service.apply(application(start, name=name))["reference"]
    walker = Walker(service, reference)
    walker.provide_histories()
    walker.verify(application(start)["incidents"])
    walker.confirm()
    walker.schedule_panel(start + timedelta(days=10))
    walker.panel_inputs()
    walker.complete(outcome_task, {"attendees": ["Police"], "findings": "Seen.",
                                   "recommendations": ["Joint visit"], "actions": [],
                                   "follow_up_working_days": 20})
    return reference


def cli_statutory(service, monkeypatch, day) -> dict:
    monkeypatch.setenv("CASEREVIEW_DATABASE_URL", service.settings.database_url)
    monkeypatch.setenv("CASEREVIEW_OUTBOX_DIR", str(service.settings.outbox_dir))
    monkeypatch.setenv("CASEREVIEW_CLOCK", service.now().isoformat())
    result = CliRunner().invoke(main, ["report", "statutory", "--from", day.isoformat(), "--to", day.isoformat(),
                                       "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_a_renamed_panel_outcome_task_keeps_counting_reviews_of_both_versions(service, monkeypatch):
    shipped = shipped_files()
    old_reference = review_case(service, "Done on the shipped version", "panel_outcome")

    renamed = {**shipped, CASE_REVIEW: renamed_panel_outcome(shipped[CASE_REVIEW])}
    assert f'<bpmn:userTask id="{RENAMED}"' in renamed[CASE_REVIEW] and 'id="panel_outcome"' not in renamed[CASE_REVIEW]
    version, created = publish_bundle(service, renamed, note="Clearer task name", by="owner@demo.test")
    assert created and version.number == 2
    new_reference = review_case(service, "Done on the renamed version", RENAMED)

    day = service.now().date()
    period = Period(day, day)
    with service.sessions() as db:
        figures = statutory_figures(db, period).as_dict()
        counted = {c.reference for c in cases_behind(db, period, "reviews_carried_out")}
        letter_timing = next(t for t in build_dashboard(db, period, day).timings if t.key == "outcome_letter")
    assert figures["reviews_carried_out"] == 2
    assert figures["reviews_with_recommendations"] == 2
    assert counted == {old_reference, new_reference}
    assert cli_statutory(service, monkeypatch, day) == figures
    # Both outcome letters are found through the fact on the script task that sends them.
    assert letter_timing.spread.count == 2 and letter_timing.within_target == 2


def test_a_bundle_that_no_longer_declares_the_review_is_refused_with_the_reason(service):
    shipped = shipped_files()
    without_fact = {**shipped, CASE_REVIEW: renamed_panel_outcome(shipped[CASE_REVIEW]).replace(REVIEW_FACT, "")}

    problems = [p for p in validate_bundle(without_fact, dry_run=False) if p.rule == "statutory-fact"]
    assert len(problems) == 1
    assert "'review_carried_out'" in problems[0].message
    assert "Case reviews carried out" in problems[0].message

    with pytest.raises(BundleInvalid) as refused:
        publish_bundle(service, without_fact, note="Renamed, property lost", by="owner@demo.test")
    assert problems[0] in refused.value.problems
    with service.sessions() as db:
        assert latest_version(db).number == 1


@pytest.mark.parametrize("change, message", [
    (lambda files: {**files, CASE_REVIEW: files[CASE_REVIEW].replace(
        'value="review_carried_out"', 'value="reviews_carried_out"')},
     "'reviews_carried_out' is not one of"),
    (lambda files: {**files, ESCALATION: files[ESCALATION].replace(
        'send_letter("escalation_not_upheld")', 'set_stage("escalation_closed")')},
     "needs a script that sends a letter"),
    (lambda files: {**files, CASE_REVIEW: files[CASE_REVIEW].replace(
        "add_working_days(panel_requested_on, 20)", "today()")},
     "'panel_arranged' needs a due date written add_working_days"),
], ids=["misspelt fact", "letter fact without a letter", "target fact without a readable due date"])
def test_a_fact_the_reports_cannot_read_is_refused(change, message):
    problems = [p for p in validate_bundle(change(shipped_files()), dry_run=False) if p.rule == "statutory-fact"]
    assert any(message in p.message for p in problems), [p.message for p in problems]


def test_the_local_targets_are_the_latest_versions_due_dates(service):
    shipped = shipped_files()
    day = service.now().date()
    with service.sessions() as db:
        targets = {t.key: t.target for t in build_dashboard(db, Period(day, day), day).timings}
    assert targets == {"decision": 15, "panel": 20, "outcome_letter": 5}

    sooner = {**shipped, CASE_REVIEW: shipped[CASE_REVIEW]
              .replace("add_working_days(received_on, 15)", "add_working_days(received_on, 12)")
              .replace("add_working_days(panel_date, 5)", "add_working_days(panel_date, 3)")}
    publish_bundle(service, sooner, note="Faster decisions and letters", by="owner@demo.test", dry_run=False)
    with service.sessions() as db:
        targets = {t.key: t.target for t in build_dashboard(db, Period(day, day), day).timings}
    assert targets == {"decision": 12, "panel": 20, "outcome_letter": 3}


def test_a_version_published_before_facts_were_declared_counts_through_the_legacy_names(service):
    shipped = shipped_files()
    undeclared = {name: re.sub(r'\s*<spiffworkflow:property name="statutoryFact" value="\w+" />', "", text)
                  for name, text in shipped.items()}
    undeclared[CASE_REVIEW] = undeclared[CASE_REVIEW].replace(
        '\n          <spiffworkflow:property name="dueDate" value="add_working_days(panel_date, 5)" />', "")
    assert "statutoryFact" not in "".join(undeclared.values())
    # As such a version was published then: the studio's statutory-fact rule did not exist.
    with service.transaction() as db:
        publish(db, undeclared, note="Before facts were declared", by="system", now=service.now())
    reference = review_case(service, "Done on an undeclared version", "panel_outcome")

    day = service.now().date()
    with service.sessions() as db:
        counted = {c.reference for c in cases_behind(db, Period(day, day), "reviews_carried_out")}
        board = build_dashboard(db, Period(day, day), day)
    assert counted == {reference}
    assert {t.key: t.target for t in board.timings} == {"decision": 15, "panel": 20, "outcome_letter": 5}
    assert next(t for t in board.timings if t.key == "outcome_letter").spread.count == 1
