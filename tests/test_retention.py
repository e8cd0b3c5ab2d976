"""Retention: closed cases past the retention period lose their personal data and nothing else;
cases inside the period and open cases are untouched; the figures and the audit trail stay."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from engine import audit, retention
from engine.anonymise import MARK
from engine.cli import main
from engine.models import Case
from engine.queries import diagram_state
from engine.scenarios import Walker, application

from .conftest import START

TODAY = START.date()
PAST_THE_PERIOD = datetime(2032, 3, 3, 9, 0, tzinfo=timezone.utc)  # 6 years and a day after START
OLD_PERSON = ("Alex Morgan", "alex.morgan@example.org", "07700 900123", "12 Acacia Avenue, Exampleton", "AB1 2CD")
OLD_TEXT = ("Stones thrown at the window", "My children are frightened", "Visit the family at home",
            "Spoke to Mr Jones about it", "We are moving to Leeds", "REF-001")


def old_application() -> dict:
    app = application(TODAY, name=OLD_PERSON[0], postcode=OLD_PERSON[4])
    app["applicant"].update(email=OLD_PERSON[1], phone=OLD_PERSON[2], address=OLD_PERSON[3])
    app["incidents"][0]["description"] = OLD_TEXT[0]
    app["impact"] = OLD_TEXT[1]
    return app


@pytest.fixture
def cases(service, clock):
    """OLD: action plan agreed, then withdrawn at START. RECENT: withdrawn three years later.
    OPEN: still open. Then the clock moves past OLD's retention period."""
    app = old_application()
    old = service.apply(app)["reference"]
    walker = Walker(service, old)
    walker.provide_histories()
    walker.verify(app["incidents"])
    walker.confirm()
    walker.schedule_panel(TODAY + timedelta(days=21))
    walker.panel_inputs()
    walker.outcome([{"description": OLD_TEXT[2], "agency": "police", "owner": "PC Evans", "due": "2026-04-20"}])
    walker.complete("deliver_action", {"status": "in_progress", "progress_note": OLD_TEXT[3]})
    service.withdraw(old, reason=OLD_TEXT[4])
    recent = service.apply(application(TODAY, name="Robin Shaw", postcode="CD3 4EF"))["reference"]
    still_open = service.apply(application(TODAY, name="Sam Okafor", postcode="EF5 6GH"))["reference"]
    clock.set(START.replace(year=2029))
    service.withdraw(recent, reason="Sorted out now")
    clock.set(PAST_THE_PERIOD)
    return {"old": old, "recent": recent, "open": still_open}


def rows_of(service, reference: str) -> dict[str, list[dict]]:
    """Every row held about a case, table by table (any table with a case_id column)."""
    with service.sessions() as db:
        case_id = db.scalar(sa.select(Case.id).where(Case.reference == reference))
        inspector = sa.inspect(db.connection())
        found = {"case_review": _rows(db, "SELECT * FROM case_review WHERE id = :id", case_id)}
        for name in sorted(inspector.get_table_names()):
            if any(c["name"] == "case_id" for c in inspector.get_columns(name)):
                found[name] = _rows(db, f"SELECT * FROM {name} WHERE case_id = :id ORDER BY 1", case_id)
    return found


def _rows(db, query: str, case_id: int) -> list[dict]:
    return [{k: _plain(v) for k, v in row._mapping.items()} for row in db.execute(sa.text(query), {"id": case_id})]


def _plain(value):
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return json.loads(value)  # SQLite gives JSON columns back as text here
        except ValueError:
            return value
    return value.isoformat() if hasattr(value, "isoformat") else value


def changed_columns(before: list[dict], after: list[dict]) -> set[str]:
    assert len(before) == len(after)
    return {key for old, new in zip(before, after) for key in old if old[key] != new[key]}


def test_only_personal_data_of_cases_past_the_period_is_anonymised(service, cases):
    before = {name: rows_of(service, ref) for name, ref in cases.items()}
    with service.sessions() as db:
        old_case = db.scalar(sa.select(Case).where(Case.reference == cases["old"]))
        diagram_before = diagram_state(db, old_case, "case_review")

    dry = retention.run(service, dry_run=True)
    assert [item["reference"] for item in dry["cases"]] == [cases["old"]]
    assert {name: rows_of(service, ref) for name, ref in cases.items()} == before  # the dry run changed nothing

    result = retention.run(service)
    assert result["cases"] == dry["cases"]
    after = {name: rows_of(service, ref) for name, ref in cases.items()}
    old, new = before["old"], after["old"]

    # Nothing personal is left anywhere in the case's rows.
    text = json.dumps({k: v for k, v in new.items() if k != "audit_event"}, default=str)
    for secret in (*OLD_PERSON[:4], "2CD", *OLD_TEXT):
        assert secret not in text, secret
    # Exactly these columns changed, and no others.
    assert changed_columns(old["case_review"], new["case_review"]) == {
        "applicant_name", "applicant_email", "victim_name", "postcode", "application", "threshold"}
    assert changed_columns(old["workflow_instance"], new["workflow_instance"]) == {"state"}
    notes = {"last_note"} if any(a["last_note"] for a in old["action"]) else set()
    assert changed_columns(old["action"], new["action"]) == {"description", *notes}
    assert changed_columns(old["outbox"], new["outbox"]) == {"body", "recipient"}
    assert {m["recipient"] for m in new["outbox"] if m["recipient_role"] in ("applicant", "victim")} == {MARK}
    assert ({m["recipient"] for m in new["outbox"] if m["recipient_role"].startswith("agency:")}
            == {m["recipient"] for m in old["outbox"] if m["recipient_role"].startswith("agency:")})
    # The figures stay: the postcode's outward code, the threshold result and its dates and counts.
    case_row = new["case_review"][0]
    assert case_row["postcode"] == "AB1" and case_row["applicant_email"] is None
    threshold_before, threshold_after = old["case_review"][0]["threshold"], case_row["threshold"]
    for incident in threshold_before["incidents"]:
        incident.pop("reference")
    assert {k: v for k, v in threshold_after.items() if k != "incidents"} == {
        k: v for k, v in threshold_before.items() if k != "incidents"}
    assert [{k: v for k, v in i.items() if k != "reference"} for i in threshold_after["incidents"]] == \
        threshold_before["incidents"]
    application_after = case_row["application"]
    assert application_after["applicant"]["relationship_to_victim"] == "self"
    assert [(i["occurred_on"], i["reported_on"], i["reported_to"]) for i in application_after["incidents"]] == [
        (i["occurred_on"], i["reported_on"], i["reported_to"]) for i in old["case_review"][0]["application"]["incidents"]]
    # The process history stays: the diagram still shows the steps taken.
    with service.sessions() as db:
        assert diagram_state(db, db.get(Case, case_row["id"]), "case_review") == diagram_before

    # Audit rows are never changed; the run added one event for the case and one for itself.
    assert new["audit_event"][:len(old["audit_event"])] == old["audit_event"]
    added = new["audit_event"][len(old["audit_event"]):]
    assert [(e["event"], e["actor"]) for e in added] == [("case_anonymised", "system")]
    assert added[0]["detail"]["fields"] == dry["cases"][0]["fields"]
    with service.sessions() as db:
        assert db.scalar(sa.select(audit.AuditEvent.detail).where(audit.AuditEvent.event == "retention_run"))[
            "cases"] == [cases["old"]]
        assert audit.verify_chain(db).ok

    # Inside the period, or open: untouched.
    assert after["recent"] == before["recent"] and after["open"] == before["open"]
    assert retention.run(service)["cases"] == []  # done once


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_command_line_dry_run_lists_cases_and_fields(service, cases, monkeypatch):
    monkeypatch.setenv("CASEREVIEW_DATABASE_URL", service.settings.database_url)
    monkeypatch.setenv("CASEREVIEW_CLOCK", PAST_THE_PERIOD.isoformat())
    monkeypatch.setenv("CASEREVIEW_RETENTION_YEARS", "2")  # RECENT, closed 3 years ago, is then past it too
    result = CliRunner().invoke(main, ["retention", "run", "--dry-run"], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    listed = json.loads(result.stdout)
    assert listed["dry_run"] is True and listed["retention_years"] == 2
    assert [item["reference"] for item in listed["cases"]] == [cases["old"], cases["recent"]]
    assert "case_review.applicant_name" in listed["cases"][1]["fields"]
    assert "2 case(s)" in result.stderr
    with service.sessions() as db:
        assert db.scalar(sa.select(sa.func.count()).select_from(Case).where(Case.applicant_name == MARK)) == 0


PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def upload(service, reference: str, uploaded_by: str = "applicant") -> str:
    from engine.documents import add_document

    with service.transaction() as db:
        case = db.scalar(sa.select(Case).where(Case.reference == reference))
        return add_document(db, case, "photo.png", PNG, uploaded_by=uploaded_by, agency=None, now=service.now(),
                            limit=1_000_000).id


def test_uploaded_files_of_anonymised_cases_are_deleted(service, cases):
    from engine.documents import Document

    old_file, recent_file = upload(service, cases["old"]), upload(service, cases["recent"])
    dry = retention.run(service, dry_run=True)
    assert f"document[{old_file}] (deleted)" in dry["cases"][0]["fields"]
    retention.run(service)
    with service.sessions() as db:
        assert db.scalars(sa.select(Document.id)).all() == [recent_file]
