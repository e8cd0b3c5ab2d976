"""Documents where a form asks for them: uploads on task pages, the applicant's track page and the
API; what is refused and why; the engine's check that a form names only its own case's files;
downloads. Through Flask's test client with pages parsed; SQLite (PostgreSQL where the bytes are
stored and read back). Uploads are limited to 1MB here (Settings.upload_max_mb) to keep it fast."""
from __future__ import annotations

import io
import re
import struct
import uuid
import zipfile
import zlib
from datetime import timedelta

import lxml.html
import pytest
from click.testing import CliRunner
from pypdf import PdfWriter
from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from engine.cli import main
from engine.config import Settings
from engine.documents import DOCX, Document, DocumentRefused, add_document, check_upload
from engine.errors import InvalidData
from engine.models import AuditEvent, Case, OutboxMessage, WorkflowInstance
from engine.scenarios import Walker, application
from engine.service import APPLICANT
from engine.versions import compiled
from web.formrender import FileUploads, apply_form_action, error_summary, parse_submission, render_fields

from .conftest import START
from .web_helpers import make_app, page, sign_in, text_of

TODAY = START.date()
MB = 1024 * 1024
TRACK_LINK = re.compile(r"http://127\.0\.0\.1:5000(/track/[A-Za-z0-9_-]+)")


@pytest.fixture(params=["sqlite"])
def database_url(request, tmp_path):
    """SQLite unless a test asks for PostgreSQL too."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'casereview.sqlite3'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def settings(database_url, tmp_path):
    return Settings(database_url=database_url, outbox_dir=tmp_path / "outbox", demo_password="test-password",
                    upload_max_mb=1)


@pytest.fixture
def app(service):
    return make_app(service)


# ----- files, made here ---------------------------------------------------------------------------

def pdf_bytes() -> bytes:
    out = io.BytesIO()
    writer = PdfWriter()
    writer.add_blank_page(200, 200)
    writer.write(out)
    return out.getvalue()


def png_bytes() -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)  # 1x1, 8-bit RGB
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00"))
            + chunk(b"IEND", b""))


def zip_bytes(names: list[str]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name in names:
            archive.writestr(name, "<xml/>")
    return out.getvalue()


def docx_bytes(*extra: str) -> bytes:
    return zip_bytes(["[Content_Types].xml", "_rels/.rels", "word/document.xml", *extra])


EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 200
HTML = b"<!DOCTYPE html><html><body><script>alert(1)</script></body></html>"


# ----- getting a case to the forms that take files ----------------------------------------------

def at_action_update(service) -> tuple[str, str]:
    """(reference, id of the police officer's "Update the action" task)."""
    data = application(TODAY)
    reference = service.apply(data)["reference"]
    walker = Walker(service, reference)
    walker.provide_histories()
    walker.verify(data["incidents"])
    walker.confirm()
    walker.schedule_panel(TODAY + timedelta(days=21))
    walker.panel_inputs()
    walker.outcome([{"description": "Joint visit", "agency": "police", "owner": "PC Evans", "due": "2026-04-20"}])
    return reference, walker.ready("deliver_action")[0].id


def client_for(app, email):
    client = app.test_client()
    sign_in(client, email)
    return client


def upload(client, url: str, fields: dict, files: list[tuple[bytes, str]], name: str = "evidence"):
    data = {**fields, name: [(io.BytesIO(content), filename) for content, filename in files]}
    return client.post(url, data=data, content_type="multipart/form-data")


def resubmit(response, **changes):
    """What the browser posts from a re-shown form: every kept value (hidden document ids too)."""
    pairs = [(k, v) for k, v in page(response).cssselect("main form")[-1].form_values() if k not in changes]
    for key, value in changes.items():
        pairs += [(key, v) for v in (value if isinstance(value, list) else [value])]
    return MultiDict(pairs)


def summary(response) -> list[tuple[str, str]]:
    return [(" ".join(a.text_content().split()), a.get("href")) for a in page(response).cssselect(
        ".govuk-error-summary a")]


def added_files(response) -> list[str]:
    """The names listed under the upload as already added, each with its own Remove button."""
    items = page(response).cssselect(".govuk-file-upload ~ ul li")
    for item in items:
        assert item.cssselect('input[type=hidden][name=evidence], input[type=hidden][name=documents]')
        assert item.cssselect('button[name=form-action]')[0].get("value").startswith("remove:")
    return [item.text_content().split("Remove")[0].strip() for item in items]


def documents_on(service, reference: str) -> list[Document]:
    with service.sessions() as db:
        rows = list(db.scalars(select(Document).join(Case, Case.id == Document.case_id)
                               .where(Case.reference == reference).order_by(Document.uploaded_at, Document.filename)))
        db.expunge_all()
        return rows


def completed_task_data(service, reference: str, task_id: str) -> dict:
    """The data a completed "Update the action" task left in its workflow instance."""
    with service.sessions() as db:
        case = db.scalar(select(Case).where(Case.reference == reference))
        instances = db.scalars(select(WorkflowInstance).where(WorkflowInstance.case_id == case.id,
                                                              WorkflowInstance.process_id == "action_delivery"))
        serializer = compiled(db, case.process_version_id).serializer
        for instance in instances:
            task = serializer.loads(instance.state, None).get_task_from_id(uuid.UUID(task_id))
            if task is not None:
                return task.data
    raise AssertionError(f"no task {task_id}")


def audit_events(service, reference: str, event: str) -> list[AuditEvent]:
    with service.sessions() as db:
        rows = list(db.scalars(select(AuditEvent).join(Case, Case.id == AuditEvent.case_id)
                               .where(Case.reference == reference, AuditEvent.event == event).order_by(AuditEvent.id)))
        db.expunge_all()
        return rows


# ----- what is accepted, from the bytes -------------------------------------------------------------

def test_types_are_decided_by_the_bytes_not_the_name():
    limit = MB
    assert check_upload("Visit report.PDF", pdf_bytes(), limit=limit) == ("application/pdf", "Visit report.pdf")
    assert check_upload("photo", png_bytes(), limit=limit) == ("image/png", "photo.png")
    assert check_upload("scan.pdf", b"\xff\xd8\xff\xe0" + b"\x00" * 64, limit=limit) == ("image/jpeg", "scan.jpg")
    assert check_upload("letter.docx", docx_bytes(), limit=limit) == (DOCX, "letter.docx")
    # A path, control and right-to-left characters never reach the name shown or downloaded.
    assert check_upload("C:\\Users\\sam\\..\\evil\u202etxt.exe", pdf_bytes(), limit=limit)[1] == "eviltxt.pdf"
    refused = {
        "setup.pdf": EXE,  # a program renamed
        "page.pdf": HTML,  # a web page renamed
        "archive.docx": zip_bytes(["notes.txt"]),  # a zip that is not a Word document
        "macros.docx": docx_bytes("word/vbaProject.bin"),  # a macro-enabled one
    }
    for name, content in refused.items():
        with pytest.raises(DocumentRefused) as caught:
            check_upload(name, content, limit=limit)
        assert caught.value.sentence() == "The selected file must be a PDF, JPG, PNG or Word document", name
    with pytest.raises(DocumentRefused) as caught:
        check_upload("big.pdf", pdf_bytes() + b"\x00" * limit, limit=limit)
    assert caught.value.sentence() == "The selected file must be smaller than 1MB"
    with pytest.raises(DocumentRefused) as caught:
        check_upload("blank.pdf", b"", limit=limit)
    assert caught.value.sentence("blank.pdf") == "‘blank.pdf’ is empty"


def test_a_single_file_field_shows_its_file_and_removing_it_clears_the_answer():
    schema = {"type": "object", "required": ["photo"], "properties": {
        "photo": {"title": "Photo of the damage", "type": "string", "format": "uuid", "x-ui": {"widget": "file"}}}}
    chosen = "6f1d8c52-4a3e-4c1e-9a57-1f2b3c4d5e6f"
    doc = lxml.html.fragment_fromstring(
        f"<form>{render_fields(schema, {'photo': chosen}, files=FileUploads({chosen: 'door.png'}))}</form>")
    picker = doc.cssselect("input[type=file]")[0]
    assert picker.get("multiple") is None and picker.get("name") == "photo"
    assert doc.cssselect('label[for="photo"]')[0].text_content().strip() == "Photo of the damage"
    remove = doc.cssselect("li button[name=form-action]")[0]
    assert " ".join(remove.text_content().split()) == "Remove door.png"
    data, action = parse_submission(schema, MultiDict([*doc.form_values(), ("form-action", remove.get("value"))]))
    assert data == {"photo": chosen}
    assert apply_form_action(schema, data, action) == {}
    assert error_summary([{"field": "photo", "message": "is required"}], schema) == [
        {"text": "Select a file", "href": "#photo"}]


# ----- staff: the task page -------------------------------------------------------------------------

def test_files_added_on_the_task_page_are_stored_and_named_by_the_form(app, service):
    reference, task_id = at_action_update(service)
    police = client_for(app, "police@demo.test")
    form = police.get(f"/tasks/{task_id}")
    assert page(form).cssselect("main form")[-1].get("enctype") == "multipart/form-data"
    picker = page(form).cssselect("input[type=file]#evidence")[0]
    assert picker.get("name") == "evidence" and picker.get("multiple") is not None
    label = page(form).cssselect('label[for="evidence"]')[0].text_content().strip()
    assert label == "Evidence (optional)"
    assert "smaller than 1MB" in page(form).cssselect("#evidence-hint")[0].text_content()

    done = upload(police, f"/tasks/{task_id}", {"status": "in_progress", "progress_note": "Joint visit booked."},
                  [(pdf_bytes(), "Visit report.pdf"), (png_bytes(), "Door.png")])
    assert done.status_code == 302, summary(done)
    stored = documents_on(service, reference)
    assert [(d.filename, d.content_type, d.uploaded_by, d.agency) for d in stored] == [
        ("Door.png", "image/png", "police@demo.test", "police"),
        ("Visit report.pdf", "application/pdf", "police@demo.test", "police")]
    uploaded = audit_events(service, reference, "document_uploaded")
    assert {e.detail["document"] for e in uploaded} == {d.id for d in stored}
    assert all("Visit" not in str(e.detail) for e in uploaded)  # names can be personal: not in the audit trail
    completed = audit_events(service, reference, "task_completed")[-1]
    assert completed.actor == "police@demo.test" and completed.detail["task"] == "deliver_action"

    # The case's "Letters and documents" page lists them, for the police officer and the coordinator.
    for email in ("police@demo.test", "coordinator@demo.test"):
        case_page = client_for(app, email).get(f"/cases/{reference}/letters")
        rows = [[" ".join(td.text_content().split()) for td in tr.cssselect("td")]
                for tr in page(case_page).cssselect("#documents + .app-table-scroll table tbody tr")]
        assert [row[:3] for row in rows] == [["Door.png", "PNG, 1 KB", "police@demo.test"],
                                             ["Visit report.pdf", "PDF, 1 KB", "police@demo.test"]]


def test_refused_files_say_why_and_keep_what_was_typed(app, service):
    reference, task_id = at_action_update(service)
    police = client_for(app, "police@demo.test")
    typed = {"status": "in_progress", "progress_note": "Spoke to the neighbours."}
    cases = [
        ([(EXE, "report.pdf")], "The selected file must be a PDF, JPG, PNG or Word document"),
        ([(HTML, "report.pdf")], "The selected file must be a PDF, JPG, PNG or Word document"),
        ([(pdf_bytes() + b"\x00" * MB, "big.pdf")], "The selected file must be smaller than 1MB"),
        ([(b"", "empty.pdf")], "The selected file is empty"),
        ([(pdf_bytes(), "fine.pdf"), (EXE, "setup.exe")], "‘setup.exe’ must be a PDF, JPG, PNG or Word document"),
    ]
    for files, message in cases:
        refused = upload(police, f"/tasks/{task_id}", typed, files)
        assert refused.status_code == 422
        assert summary(refused) == [(message, "#evidence")]
        assert page(refused).cssselect("#evidence-error")[0].text_content().split(":", 1)[1].strip() == message
        assert page(refused).cssselect("#progress_note")[0].text_content() == typed["progress_note"]
        assert page(refused).cssselect("#status-2")[0].get("checked") is not None
    # Only the good file of the last post was kept, and it is listed to be sent with the form.
    assert [d.filename for d in documents_on(service, reference)] == ["fine.pdf"]
    assert added_files(refused) == ["fine.pdf"]

    too_many = upload(police, f"/tasks/{task_id}", typed, [(png_bytes(), f"photo {n}.png") for n in range(6)])
    assert too_many.status_code == 422 and summary(too_many) == [("You can add up to 5 files", "#evidence")]
    assert len(documents_on(service, reference)) == 1


def test_a_failed_completion_keeps_the_file_and_a_file_can_be_removed(app, service):
    reference, task_id = at_action_update(service)
    police = client_for(app, "police@demo.test")
    url = f"/tasks/{task_id}"
    # No answer to "Where is the action now?": the form is not sent, the files are kept.
    first = upload(police, url, {"progress_note": "Letters sent."}, [(pdf_bytes(), "letter.pdf"),
                                                                       (png_bytes(), "photo.png")])
    assert first.status_code == 422
    assert [href for _, href in summary(first)] == ["#status"]
    assert added_files(first) == ["letter.pdf", "photo.png"]
    assert page(first).cssselect("#progress_note")[0].text_content() == "Letters sent."

    # Remove the photo: the page shows the letter only; nothing was completed.
    photo = next(d for d in documents_on(service, reference) if d.filename == "photo.png")
    removed = police.post(url, data=resubmit(first, **{"form-action": "remove:evidence:1"}))
    assert removed.status_code == 200 and added_files(removed) == ["letter.pdf"]
    assert page(removed).cssselect("#progress_note")[0].text_content() == "Letters sent."
    assert police.get(url).status_code == 200  # still ready

    sent = police.post(url, data=resubmit(removed, status="completed"))
    assert sent.status_code == 302
    letter = next(d for d in documents_on(service, reference) if d.filename == "letter.pdf")
    # The completed form names the letter; the removed photo stays on the case, named by no form.
    assert completed_task_data(service, reference, task_id)["evidence"] == [letter.id]
    assert {d.id for d in documents_on(service, reference)} == {letter.id, photo.id}
    coordinator = client_for(app, "coordinator@demo.test")
    listed = [a.text_content() for a in page(coordinator.get(f"/cases/{reference}/letters")).cssselect(
        "#documents + .app-table-scroll table a")]
    assert listed == ["letter.pdf", "photo.png"]


# ----- the engine: a form names only its own case's documents -------------------------------------

def test_the_engine_refuses_another_cases_document(app, service, settings, monkeypatch):
    reference, task_id = at_action_update(service)
    other = service.apply(application(TODAY, name="Robin Other"))["reference"]
    with service.transaction() as db:
        other_case = db.scalar(select(Case).where(Case.reference == other))
        foreign = add_document(db, other_case, "theirs.pdf", pdf_bytes(), uploaded_by="coordinator@demo.test",
                               agency=None, now=service.now(), limit=MB).id
    walker = Walker(service, reference)
    task = walker.ready("deliver_action")[0]
    answer = {"status": "in_progress", "progress_note": "Visited."}
    for wrong in ([foreign], ["00000000-0000-4000-8000-000000000000"], ["not-an-id"]):
        with pytest.raises(InvalidData) as caught:
            service.complete(task.id, walker.actor_for(task), {**answer, "evidence": wrong})
        assert caught.value.errors == [{"field": "evidence/0",
                                        "message": "The selected file is not one of this case's documents"}]

    # Through the API as well: 422 with the field, and the task is still ready.
    monkeypatch.setenv("CASEREVIEW_DATABASE_URL", settings.database_url)
    token = CliRunner().invoke(main, ["token", "create", "--user", "police@demo.test"]).stdout.strip()
    api = app.test_client()
    refused = api.post(f"/api/v1/tasks/{task_id}/complete", json={**answer, "evidence": [foreign]},
                       headers={"Authorization": f"Bearer {token}"})
    assert refused.status_code == 422
    assert refused.get_json()["errors"][0]["field"] == "evidence/0"
    assert walker.ready("deliver_action")[0].id == task_id


# ----- downloads ----------------------------------------------------------------------------------

@pytest.mark.parametrize("database_url", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
                         indirect=True)
def test_downloads_are_attachments_for_those_who_may_see_them(app, service):
    reference = service.apply(application(TODAY, reported_to="police"))["reference"]  # police and council involved
    content = pdf_bytes()
    with service.transaction() as db:
        case = db.scalar(select(Case).where(Case.reference == reference))
        police_file = add_document(db, case, "Zoë's statement.pdf", content, uploaded_by="police@demo.test",
                                   agency="police", now=service.now(), limit=MB).id
    url = f"/cases/{reference}/documents/{police_file}"

    coordinator = client_for(app, "coordinator@demo.test")
    got = coordinator.get(url)
    assert got.status_code == 200 and got.data == content
    assert got.mimetype == "application/pdf"
    assert got.headers["X-Content-Type-Options"] == "nosniff"
    assert got.headers["Cache-Control"] == "no-store"
    disposition = got.headers["Content-Disposition"]
    assert disposition.startswith("attachment;") and "filename*=UTF-8''Zo%C3%AB%27s%20statement.pdf" in disposition
    assert "sandbox" in got.headers["Content-Security-Policy"]
    downloads = audit_events(service, reference, "document_downloaded")
    assert [(e.actor, e.detail) for e in downloads] == [("coordinator@demo.test", {"document": police_file})]

    assert client_for(app, "police@demo.test").get(url).status_code == 200
    assert client_for(app, "chair@demo.test").get(url).status_code == 200
    assert client_for(app, "fire@demo.test").get(url).status_code == 404  # not involved in the case
    assert client_for(app, "council@demo.test").get(url).status_code == 404  # involved, but not their file
    assert client_for(app, "admin@demo.test").get(url).status_code == 403  # no case data at all
    assert coordinator.get(f"/cases/{reference}/documents/00000000-0000-4000-8000-000000000000").status_code == 404
    assert len(audit_events(service, reference, "document_downloaded")) == 3


# ----- the API ------------------------------------------------------------------------------------

def test_api_upload(app, service, settings, monkeypatch):
    monkeypatch.setenv("CASEREVIEW_DATABASE_URL", settings.database_url)
    runner = CliRunner()

    def token(email):
        return {"Authorization": f"Bearer {runner.invoke(main, ['token', 'create', '--user', email]).stdout.strip()}"}

    reference = service.apply(application(TODAY))["reference"]  # police and council have a task now
    api = app.test_client()
    url = f"/api/v1/cases/{reference}/documents"
    police = token("police@demo.test")

    def send(headers, content=None, name="report.pdf", field="file"):
        data = {field: (io.BytesIO(content), name)} if content is not None else {}
        return api.post(url, data=data, content_type="multipart/form-data", headers=headers)

    created = send(police, docx_bytes(), "minutes.docx")
    assert created.status_code == 201
    body = created.get_json()
    assert set(body) == {"id", "filename", "content_type", "size"}
    assert (body["filename"], body["content_type"]) == ("minutes.docx", DOCX)
    assert [d.id for d in documents_on(service, reference)] == [body["id"]]

    bad = send(police, HTML)
    assert bad.status_code == 422 and bad.get_json()["errors"] == [
        {"field": "file", "message": "The selected file must be a PDF, JPG, PNG or Word document"}]
    assert send(police).status_code == 422  # no file at all
    assert send(police, pdf_bytes() + b"\x00" * MB).get_json()["errors"][0]["message"] == (
        "The selected file must be smaller than 1MB")
    assert send({}, pdf_bytes()).status_code == 401
    assert send(token("housing@demo.test"), pdf_bytes()).status_code == 404  # not involved
    assert send(token("chair@demo.test"), pdf_bytes()).status_code == 403  # sees the case, has no task in it
    too_large = api.post(url, data=b"x" * (7 * MB), content_type="multipart/form-data; boundary=x", headers=police)
    assert too_large.status_code == 413 and "too large" in too_large.get_json()["error"]
    assert len(documents_on(service, reference)) == 1

    from openapi_spec_validator import validate

    document = api.get("/api/v1/openapi.json").get_json()
    validate(document)
    operation = document["paths"]["/cases/{reference}/documents"]["post"]
    assert "multipart/form-data" in operation["requestBody"]["content"]
    assert {"201", "403", "404", "413", "422"} <= set(operation["responses"])


def test_a_request_over_the_limit_gets_a_plain_page(app, service):
    _reference, task_id = at_action_update(service)
    police = client_for(app, "police@demo.test")
    response = upload(police, f"/tasks/{task_id}", {"status": "completed", "progress_note": "Done."},
                      [(b"%PDF-1.4" + b"\x00" * (2 * MB), f"scan {n}.pdf") for n in range(4)])
    assert response.status_code == 413
    assert "The files you selected are too big" in text_of(response)
    assert "smaller than 1MB" in text_of(response)


# ----- the applicant ------------------------------------------------------------------------------

def test_the_applicant_adds_documents_for_the_panel(app, service):
    data = application(TODAY)
    reference = service.apply(data)["reference"]
    walker = Walker(service, reference)
    walker.provide_histories()
    walker.verify(data["incidents"])
    walker.confirm()
    walker.schedule_panel(TODAY + timedelta(days=21))
    with service.sessions() as db:
        body = db.scalars(select(OutboxMessage.body).join(Case, Case.id == OutboxMessage.case_id).where(
            Case.reference == reference, OutboxMessage.template == "panel_invitation",
            OutboxMessage.recipient_role == "applicant")).first()
    track = TRACK_LINK.search(body).group(1)
    task = walker.ready("impact_statement")[0]
    url = f"{track}/tasks/{task.id}"
    # A staff member's file on the same case: the applicant never sees it, nor can use it.
    with service.transaction() as db:
        case = db.scalar(select(Case).where(Case.reference == reference))
        staff_file = add_document(db, case, "police notes.pdf", pdf_bytes(), uploaded_by="police@demo.test",
                                  agency="police", now=service.now(), limit=MB).id

    applicant = app.test_client()
    form = applicant.get(url)
    assert page(form).cssselect("main form")[-1].get("enctype") == "multipart/form-data"
    assert page(form).cssselect('label[for="documents"]')[0].text_content().strip() == (
        "Documents for the panel (optional)")

    missing = upload(applicant, url, {"wishes_to_attend": "no"}, [(png_bytes(), "Window.png")], "documents")
    assert missing.status_code == 422 and [h for _, h in summary(missing)] == ["#statement"]
    assert added_files(missing) == ["Window.png"]
    assert missing.headers["Referrer-Policy"] == "no-referrer"

    tampered = applicant.post(url, data=resubmit(missing, documents=[staff_file]))  # replaces the kept ids
    assert "police notes" not in tampered.get_data(as_text=True)
    assert added_files(tampered) == []

    with pytest.raises(InvalidData) as caught:  # the engine, too, refuses staff files from the applicant
        service.complete(task.id, APPLICANT, {"statement": "We cannot sleep.", "documents": [staff_file]})
    assert caught.value.errors[0]["field"] == "documents/0"

    sent = applicant.post(url, data=resubmit(missing, statement="We cannot sleep."))
    assert sent.status_code == 302
    mine = [d for d in documents_on(service, reference) if d.uploaded_by == "applicant"]
    assert [(d.filename, d.agency) for d in mine] == [("Window.png", None)]
    # Staff: the coordinator sees the applicant's file on the case page; a partner officer does not.
    coordinator_page = client_for(app, "coordinator@demo.test").get(f"/cases/{reference}/letters")
    assert "Window.png" in text_of(coordinator_page)
    police_page = client_for(app, "police@demo.test").get(f"/cases/{reference}/letters")
    assert "Window.png" not in text_of(police_page) and "police notes.pdf" in text_of(police_page)
