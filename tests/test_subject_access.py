"""Subject access and erasure: an export holds the person's data and nobody else's; erasure is
refused for open cases, needs a ground, and is audited."""
from __future__ import annotations

import io
import json
import zipfile

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from pypdf import PdfReader

from engine import audit, subject_access
from engine.anonymise import MARK
from engine.cli import main
from engine.models import AuditEvent, Case
from engine.scenarios import application

from .conftest import START
from .web_helpers import make_app, page, sign_in, text_of

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
POSTCODE = "AB1 2CD"


def apply_as(service, name: str, email: str, *, third_party_for: str | None = None) -> str:
    app = application(START.date(), name=third_party_for or name, postcode=POSTCODE, third_party=bool(third_party_for))
    app["applicant"].update(name=name, email=email, address=f"{name}'s house, Exampleton")
    return service.apply(app)["reference"]


@pytest.fixture
def people(service):
    """Alex applied and withdrew; Chris, at the same postcode, has an open case; Sam applied on
    Alex's behalf (Alex is the victim there)."""
    alex = apply_as(service, "Alex Morgan", "alex@example.org")
    service.withdraw(alex, reason="It has stopped")
    chris = apply_as(service, "Chris Patel", "chris@example.org")
    for_alex = apply_as(service, "Sam Carer", "sam@example.org", third_party_for="Alex Morgan")
    return {"alex": alex, "chris": chris, "for_alex": for_alex}


def zip_text(content: bytes) -> dict[str, str]:
    """Every file of the zip as text (PDFs through their extracted text)."""
    archive = zipfile.ZipFile(io.BytesIO(content))
    files = {}
    for name in archive.namelist():
        data = archive.read(name)
        files[name] = ("\n".join(p.extract_text() for p in PdfReader(io.BytesIO(data)).pages)
                       if name.endswith(".pdf") else data.decode("utf-8"))
    return files


def test_export_holds_the_persons_data_and_nobody_elses(service, people):
    with service.sessions() as db:
        by_postcode = subject_access.find(db, postcode="ab12cd")
        by_email = subject_access.find(db, email="ALEX@example.org")
    assert sorted(m.reference for m in by_postcode) == sorted(people.values())
    assert [(m.reference, m.roles) for m in by_email] == [(people["alex"], ["applicant", "victim"])]

    files = zip_text(subject_access.export(service, by_email, actor="admin@demo.test"))
    cases = json.loads(files["cases.json"])
    assert [c["reference"] for c in cases] == [people["alex"]]
    assert cases[0]["application"]["applicant"]["email"] == "alex@example.org"
    assert [s["step"] for s in cases[0]["recorded_at_each_step"]] == []  # withdrawn before any task was done
    letters = sorted(name for name in files if name.startswith("letters/"))
    assert letters and all(name.startswith(f"letters/{people['alex']}-") for name in letters)
    assert {name.rsplit(".", 1)[1] for name in letters} == {"txt", "pdf"}
    withdrawal_pdf = next(name for name in letters if "withdrawal" in name and name.endswith(".pdf"))
    assert "withdrawn" in files[withdrawal_pdf]
    events = json.loads(files["audit_events.json"])
    assert {e["case"] for e in events} == {people["alex"]}
    assert "withdrawal_requested" in [e["event"] for e in events]
    everything = "\n".join(files.values())
    assert "Alex Morgan" in everything
    for someone_else in ("Chris Patel", "chris@example.org", "Sam Carer", "sam@example.org", people["chris"]):
        assert someone_else not in everything
    with service.sessions() as db:
        exported = db.scalars(sa.select(AuditEvent).where(AuditEvent.event == "subject_access_exported")).all()
    assert [(e.case_id is not None, e.actor) for e in exported] == [(True, "admin@demo.test")]


def admin(service):
    client = make_app(service).test_client()
    sign_in(client, "admin@demo.test")
    return client


def test_administrators_find_export_and_erase_on_the_page(service, people):
    coordinator = make_app(service).test_client()
    sign_in(coordinator, "coordinator@demo.test")
    assert coordinator.get("/admin/subject-access").status_code == 403
    client = admin(service)

    found = client.get("/admin/subject-access?name=alex+morgan&email=&postcode=")
    assert found.status_code == 200
    boxes = {box.get("value") for box in page(found).cssselect("input[name=cases]")}
    assert boxes == {people["alex"], people["for_alex"]}
    assert "alex morgan" not in json.dumps([e.detail for e in _events(service, "subject_access_search")])

    download = client.post("/admin/subject-access/export", data={"name": "alex morgan", "cases": [people["for_alex"]]})
    assert download.status_code == 200 and download.mimetype == "application/zip"
    files = zip_text(download.data)
    third_party = json.loads(files["cases.json"])[0]
    assert third_party["your_role"] == ["victim"]
    assert third_party["application"]["applicant"]["email"] == subject_access.WITHHELD
    assert "sam@example.org" not in "\n".join(files.values())

    nothing = client.post("/admin/subject-access/export", data={"name": "alex morgan"})
    assert nothing.status_code == 422 and page(nothing).cssselect(".govuk-error-summary a[href='#cases']")

    # Erasure: a ground is needed, open cases are refused, and nothing changes until both are right.
    both = {"postcode": POSTCODE, "cases": [people["alex"], people["chris"]]}
    no_ground = client.post("/admin/subject-access/erase", data=both)
    assert no_ground.status_code == 422 and page(no_ground).cssselect(".govuk-error-summary a[href='#ground']")
    assert {b.get("value") for b in page(no_ground).cssselect("input[name=cases][checked]")} == set(both["cases"])
    refused = client.post("/admin/subject-access/erase", data={**both, "ground": "consent_withdrawn"})
    assert refused.status_code == 422 and f"{people['chris']} is still open" in text_of(refused)
    assert _case(service, people["alex"]).applicant_name == "Alex Morgan"

    erased = client.post("/admin/subject-access/erase",
                         data={"postcode": POSTCODE, "cases": [people["alex"]], "ground": "consent_withdrawn"})
    assert erased.status_code == 302
    case = _case(service, people["alex"])
    assert (case.applicant_name, case.applicant_email, case.postcode) == (MARK, None, "AB1")
    assert _case(service, people["chris"]).applicant_name == "Chris Patel"
    [event] = _events(service, "case_erased")
    assert (event.actor, event.case_id, event.detail["ground"]) == ("admin@demo.test", case.id, "consent_withdrawn")
    with service.sessions() as db:
        assert audit.verify_chain(db).ok
    again = client.get("/admin/subject-access?name=alex+morgan")
    assert {box.get("value") for box in page(again).cssselect("input[name=cases]")} == {people["for_alex"]}


def test_sar_export_command(service, people, tmp_path, monkeypatch):
    monkeypatch.setenv("CASEREVIEW_DATABASE_URL", service.settings.database_url)
    runner = CliRunner()
    out = tmp_path / "alex.zip"
    done = runner.invoke(main, ["sar", "export", "--email", "alex@example.org", "--out", str(out)], catch_exceptions=False)
    assert done.exit_code == 0, done.stderr
    assert json.loads(done.stdout)["cases"] == [people["alex"]]
    assert json.loads(zipfile.ZipFile(out).read("cases.json"))[0]["reference"] == people["alex"]
    missing = runner.invoke(main, ["sar", "export", "--email", "nobody@example.org", "--out", str(out)])
    assert missing.exit_code == 5 and "nobody@example.org" in missing.stderr


def _case(service, reference: str) -> Case:
    with service.sessions() as db:
        return db.scalar(sa.select(Case).where(Case.reference == reference))


def _events(service, name: str) -> list[AuditEvent]:
    with service.sessions() as db:
        return list(db.scalars(sa.select(AuditEvent).where(AuditEvent.event == name)))


def test_export_holds_the_files_the_person_sent_and_no_one_elses(service, people):
    from engine.documents import add_document

    def upload(reference, name, uploaded_by):
        with service.transaction() as db:
            case = db.scalar(sa.select(Case).where(Case.reference == reference))
            add_document(db, case, name, b"%PDF-1.4\n" + name.encode() + b"\n%%EOF\n", uploaded_by=uploaded_by,
                         agency="police" if uploaded_by != "applicant" else None, now=service.now(),
                         limit=1_000_000)

    upload(people["alex"], "my-diary.pdf", "applicant")
    upload(people["alex"], "police-log.pdf", "police@demo.test")
    upload(people["chris"], "chris-notes.pdf", "applicant")
    with service.sessions() as db:
        alex = subject_access.find(db, email="alex@example.org")
    files = zipfile.ZipFile(io.BytesIO(subject_access.export(service, alex, actor="admin@demo.test"))).namelist()
    assert [name for name in files if name.startswith("documents/")] == [
        f"documents/{people['alex']}-001-my-diary.pdf"]
