"""Subject access and erasure requests (UK GDPR articles 15 and 17), for administrators.

`find` lists the cases in which a person appears, as applicant or victim, by name, email or
postcode (all the criteria given must match). The administrator checks the list: a name or a
postcode can match someone else. `export` gathers what is held about the person in the chosen
cases into a zip: the case data and what was recorded at each step (JSON), the letters sent to
them (text and PDF) and the audit events of those cases. Contact details of the other person
in a third-party case are withheld. `erase` anonymises closed cases exactly as retention does.
Every search, export and erasure is audited, without the search terms.
"""
from __future__ import annotations

import html
import io
import json
import re
import zipfile
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, inspect, or_, select, table, column
from sqlalchemy.orm import Session
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.util.task import TaskState

from . import anonymise, audit, retention
from .documents import APPLICANT as APPLICANT_UPLOADER
from .documents import Document, content_of
from .errors import Conflict, InvalidData, NotFound
from .models import Action, AuditEvent, Case, OutboxMessage, WorkflowInstance
from .versions import compiled

WITHHELD = "[withheld: another person's details]"
CONTACT_FIELDS = ("email", "phone", "address", "postcode")

# Article 17(1): the grounds on which a person may have their data erased.
ERASURE_GROUNDS = {
    "no_longer_necessary": "The data is no longer needed for the purpose it was collected for (article 17(1)(a))",
    "consent_withdrawn": "The person withdrew their consent and there is no other lawful basis (article 17(1)(b))",
    "objection_upheld": "The person objected and there are no overriding legitimate grounds (article 17(1)(c))",
    "unlawfully_processed": "The data was processed unlawfully (article 17(1)(d))",
    "legal_obligation": "Erasure is required by law (article 17(1)(e))",
}


@dataclass
class Match:
    """A case in which the person appears, and as whom."""

    case_id: int
    reference: str
    roles: list[str]
    status: str
    route: str
    received_on: str
    applicant_name: str
    victim_name: str | None
    postcode: str | None

    @property
    def closed(self) -> bool:
        return self.status in anonymise.CLOSED_STATUSES


# ----- finding the person ------------------------------------------------------------------
def find(db: Session, *, name: str = "", email: str = "", postcode: str = "") -> list[Match]:
    name, email = " ".join((name or "").split()).lower(), (email or "").strip().lower()
    compact = re.sub(r"\s+", "", postcode or "").upper()
    if not (name or email or compact):
        raise InvalidData([{"field": "name", "message": "Enter a name, an email address or a postcode"}],
                          "Say who to look for")
    conditions = [Case.applicant_name != anonymise.MARK]  # an anonymised case holds nobody's data
    if name:
        conditions.append(or_(func.lower(Case.applicant_name).contains(name, autoescape=True),
                              func.lower(Case.victim_name).contains(name, autoescape=True)))
    if email:
        conditions.append(func.lower(Case.applicant_email) == email)
    if compact:
        conditions.append(func.replace(func.upper(Case.postcode), " ", "") == compact)
    cases = db.scalars(select(Case).where(*conditions).order_by(Case.received_on, Case.reference).limit(200))
    return [_match(case, name, email) for case in cases]


def _match(case: Case, name: str, email: str) -> Match:
    roles = []
    if (email and (case.applicant_email or "").lower() == email) or (name and name in case.applicant_name.lower()):
        roles.append("applicant")
    if name and case.victim_name and name in case.victim_name.lower():
        roles.append("victim")
    if not roles:  # found by postcode alone: the case's postcode is the victim's
        roles.append("victim")
    if case.route == "victim":  # applying for themselves: one person in both roles
        roles = ["applicant", "victim"]
    return Match(case.id, case.reference, roles, case.status, case.route, case.received_on.isoformat(),
                 case.applicant_name, case.victim_name, case.postcode)


def matches_for(db: Session, references: list[str], *, name: str = "", email: str = "",
                postcode: str = "") -> list[Match]:
    """The chosen cases, with the roles the same criteria give (each must be among the matches)."""
    found = {m.reference: m for m in find(db, name=name, email=email, postcode=postcode)}
    missing = [ref for ref in references if ref not in found]
    if missing:
        raise NotFound(f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not among the cases found")
    return [found[ref] for ref in references]


def record_search(db: Session, *, at: datetime, actor: str, criteria: list[str], matches: int) -> None:
    audit.record(db, at=at, actor=actor, event="subject_access_search",
                 detail={"criteria": sorted(criteria), "matches": matches})


# ----- export ------------------------------------------------------------------------------
@dataclass
class Letter:
    id: int
    reference: str
    template: str
    subject: str
    body: str
    created_at: datetime
    recipient_role: str
    stored_pdf: bytes | None = None


@dataclass
class Upload:
    """A file the person sent us themselves (through their tracking link)."""

    reference: str
    filename: str
    content: bytes


@dataclass
class Gathered:
    cases: list[dict] = field(default_factory=list)
    letters: list[Letter] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)
    uploads: list[Upload] = field(default_factory=list)


def gather(db: Session, matches: list[Match]) -> Gathered:
    """Read everything to export (one transaction; the zip is built after it, outside)."""
    result = Gathered()
    pdfs = _stored_pdfs(db)
    for match in matches:
        case = db.get(Case, match.case_id)
        result.cases.append(_case_record(db, case, match))
        for message in db.scalars(select(OutboxMessage).where(OutboxMessage.case_id == case.id,
                                                              OutboxMessage.recipient_role.in_(match.roles))
                                  .order_by(OutboxMessage.id)):
            result.letters.append(Letter(message.id, case.reference, message.template, message.subject, message.body,
                                         message.created_at, message.recipient_role, pdfs(message.id)))
        if "applicant" in match.roles:  # staff uploads are the agencies' records, not the person's
            for upload in db.scalars(select(Document).where(Document.case_id == case.id,
                                                            Document.uploaded_by == APPLICANT_UPLOADER)
                                     .order_by(Document.uploaded_at, Document.id)):
                result.uploads.append(Upload(case.reference, upload.filename, content_of(db, upload.id)))
        for event in db.scalars(select(AuditEvent).where(AuditEvent.case_id == case.id).order_by(AuditEvent.seq)):
            result.events.append({"case": case.reference, "seq": event.seq, "at": event.at.isoformat(),
                                  "actor": event.actor, "event": event.event, "stage_before": event.stage_before,
                                  "stage_after": event.stage_after, "detail": event.detail})
    return result


def _case_record(db: Session, case: Case, match: Match) -> dict[str, Any]:
    application = json.loads(json.dumps(case.application or {}))
    if case.route == "third_party":  # the other person's contact details are theirs, not the subject's
        other = "victim" if match.roles == ["applicant"] else "applicant" if match.roles == ["victim"] else None
        for key in CONTACT_FIELDS if other else ():
            if key in (application.get(other) or {}):
                application[other][key] = WITHHELD
    actions = db.scalars(select(Action).where(Action.case_id == case.id).order_by(Action.due, Action.id))
    return {
        "reference": case.reference, "your_role": match.roles, "status": case.status, "stage": case.stage,
        "route": case.route, "received_on": case.received_on.isoformat(),
        "decided_on": case.decided_on.isoformat() if case.decided_on else None,
        "closed_at": case.closed_at.isoformat() if case.closed_at else None,
        "application": application, "threshold": case.threshold,
        "actions": [{"agency": a.agency, "description": a.description, "due": a.due.isoformat() if a.due else None,
                     "status": a.status, "last_note": a.last_note} for a in actions],
        "recorded_at_each_step": _steps(db, case),
    }


def _steps(db: Session, case: Case) -> list[dict]:
    """What each completed form recorded (its fields only), in the order the audit trail shows."""
    version = compiled(db, case.process_version_id)
    completed_at = {e.detail.get("task_id"): e.at for e in db.scalars(
        select(AuditEvent).where(AuditEvent.case_id == case.id, AuditEvent.event == "task_completed"))}
    steps = []
    for row in db.scalars(select(WorkflowInstance).where(WorkflowInstance.case_id == case.id)
                          .order_by(WorkflowInstance.id)):
        workflow = version.serializer.loads(row.state, PythonScriptEngine())
        for task in workflow.get_tasks(state=TaskState.COMPLETED):
            spec = task.task_spec
            form = (spec.extensions.get("properties") or {}).get("formJsonSchemaFilename") if spec.manual else None
            if not form or form not in version.forms:
                continue
            fields = version.forms[form].get("properties", {})
            at = completed_at.get(str(task.id))
            steps.append({"step": spec.bpmn_name or spec.bpmn_id, "process": row.process_id,
                          "completed_at": at.isoformat() if at else None,
                          "recorded": {k: task.data[k] for k in fields if k in task.data}})
    return sorted(steps, key=lambda s: s["completed_at"] or "")


def _stored_pdfs(db: Session):
    """The PDF a letter was sent as, where this database keeps them (letter_document)."""
    if "letter_document" not in inspect(db.connection()).get_table_names():
        return lambda _message_id: None
    documents = table("letter_document", column("outbox_id"), column("pdf"))
    return lambda message_id: db.scalar(select(documents.c.pdf).where(documents.c.outbox_id == message_id))


def build_zip(gathered: Gathered, *, now: datetime, note: str = "") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("README.txt", _readme(gathered, now, note))
        archive.writestr("cases.json", _json(gathered.cases))
        archive.writestr("audit_events.json", _json(gathered.events))
        for letter in gathered.letters:
            stem = f"letters/{letter.reference}-{letter.id:06d}-{letter.template}"
            archive.writestr(f"{stem}.txt", f"Subject: {letter.subject}\nDate: {letter.created_at.date().isoformat()}\n"
                                            f"To: the {letter.recipient_role}\n\n{letter.body}\n")
            archive.writestr(f"{stem}.pdf", letter.stored_pdf or letter_pdf(letter))
        for number, upload in enumerate(gathered.uploads, start=1):
            archive.writestr(f"documents/{upload.reference}-{number:03d}-{upload.filename}", upload.content)
    return buffer.getvalue()


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def _readme(gathered: Gathered, now: datetime, note: str) -> str:
    references = ", ".join(c["reference"] for c in gathered.cases)
    return (f"Subject access export made {now.isoformat(timespec='seconds')}.\n{note}\n\n"
            f"Cases: {references}\n\n"
            "cases.json          each case: the application, the threshold decision, the action plan and\n"
            "                    what was recorded at each step of the review\n"
            "letters/            letters sent to the person, as text and as PDF\n"
            "audit_events.json   who viewed or changed these cases, and when\n\n"
            "Before release, check free text for information about other people (article 15(4)) and any\n"
            "exemption that applies (e.g. crime prevention, Data Protection Act 2018 schedule 2).\n")


def letter_pdf(letter: Letter) -> bytes:
    """A plain PDF of a letter's text (WeasyPrint): the subject as a heading, then its paragraphs."""
    from weasyprint import HTML  # slow to import: only when a PDF is made

    paragraphs = "".join(f"<p>{html.escape(part).replace(chr(10), '<br>')}</p>"
                         for part in re.split(r"\n\s*\n", letter.body.strip()) if part.strip())
    document = (f"<!DOCTYPE html><html lang='en-GB'><head><meta charset='utf-8'><title>{html.escape(letter.subject)}"
                "</title><style>body{font-family:Arial,'Liberation Sans',sans-serif;font-size:11pt;line-height:1.4}"
                f"</style></head><body><p>{letter.created_at.date().strftime('%-d %B %Y')}</p>"
                f"<p>Case reference {html.escape(letter.reference)}</p><h1>{html.escape(letter.subject)}</h1>"
                f"{paragraphs}</body></html>")
    return HTML(string=document).write_pdf()


def export(service, matches: list[Match], *, actor: str, note: str = "") -> bytes:
    """The zip for these cases; one audit event per case exported."""
    if not matches:
        raise InvalidData([{"field": "cases", "message": "Choose at least one case"}], "Nothing to export")
    with service.sessions() as db:
        gathered = gather(db, matches)
    content = build_zip(gathered, now=service.now(), note=note)
    with service.transaction() as db:
        for match in matches:
            audit.record(db, at=service.now(), actor=actor, event="subject_access_exported", case_id=match.case_id,
                         detail={"roles": match.roles, "letters": sum(1 for l in gathered.letters
                                                                       if l.reference == match.reference)})
    return content


# ----- erasure -----------------------------------------------------------------------------
def erase(service, matches: list[Match], *, ground: str, actor: str) -> list[dict]:
    """Anonymise the chosen cases, all or none: every one must be closed or withdrawn."""
    if ground not in ERASURE_GROUNDS:
        raise InvalidData([{"field": "ground", "message": "Choose the ground for erasure"}], "Say why")
    if not matches:
        raise InvalidData([{"field": "cases", "message": "Choose at least one case"}], "Nothing to erase")
    open_cases = [m.reference for m in matches if not m.closed]
    if open_cases:
        raise Conflict(f"{', '.join(open_cases)} {'is' if len(open_cases) == 1 else 'are'} still open: "
                       "a case can be erased only once it is closed or withdrawn")
    now, done = service.now(), []
    with service.transaction() as db:
        for match in matches:
            case = retention.lock_case(db, match.case_id)
            if case.status not in anonymise.CLOSED_STATUSES:  # reopened since the page was shown
                raise Conflict(f"{case.reference} is {case.status}: it cannot be erased")
            change = retention.anonymise_case(db, case, now, actor=actor, event="case_erased",
                                              detail={"ground": ground, "roles": match.roles})
            done.append(change.as_dict())
    return done
