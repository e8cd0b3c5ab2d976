"""Letters as PDF downloads: for staff from the case page, for the applicant from their tracking link.

A PDF is always served as an attachment (never shown inline in the app's origin), with
nosniff and no caching: it carries personal data. Each download is written to the audit trail.
"""
from __future__ import annotations

from flask import Blueprint, Response, abort, current_app
from flask_login import current_user
from sqlalchemy import select

from engine import audit, policy
from engine.letter_documents import ensure_letter_pdf
from engine.models import Case, OutboxMessage

from .auth import roles_required

blueprint = Blueprint("letters", __name__)
VIEWING_ROLES = ("coordinator", "partner", "chair", "reviewer")


def _service():
    return current_app.extensions["casereview"]


def may_have_letter(user, message: OutboxMessage) -> bool:
    """Letters to the applicant or victim are for the coordinating roles; a partner officer may
    have only those addressed to their own agency."""
    if policy.sees_personal_details(user):
        return True
    return user.role == "partner" and message.recipient_role == f"agency:{user.agency}"


def _pdf_response(message: OutboxMessage, reference: str, pdf: bytes) -> Response:
    name = f"{reference}-{message.template.replace('_', '-')}-{message.id}.pdf"
    return Response(pdf, mimetype="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="{name}"',
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-store",
    })


def _record_download(case: Case, message: OutboxMessage, actor: str) -> None:
    service = _service()
    with service.transaction() as db:
        audit.record(db, at=service.now(), actor=actor, event="letter_downloaded", case_id=case.id,
                     stage_before=case.stage, stage_after=case.stage,
                     detail={"letter": message.id, "template": message.template})


def _letter_of(db, case: Case, message_id: int) -> OutboxMessage:
    message = db.get(OutboxMessage, message_id)
    if message is None or message.case_id != case.id:
        abort(404, "There is no such letter on this case.")
    return message


@blueprint.get("/cases/<reference>/letters/<int:message_id>.pdf")
@roles_required(*VIEWING_ROLES)
def staff_download(reference: str, message_id: int):
    service = _service()
    with service.sessions() as db:
        case = db.scalar(select(Case).where(Case.reference == reference))
        if case is None or not policy.may_view_case(current_user, case):
            abort(404, "There is no case with that reference you can see.")
        message = _letter_of(db, case, message_id)
        if not may_have_letter(current_user, message):
            abort(403, "This letter is not addressed to your agency.")
    pdf = ensure_letter_pdf(service.sessions, message.id, now=service.now(),  # rendered outside a transaction
                            service=service.settings.service)
    _record_download(case, message, current_user.email)
    return _pdf_response(message, case.reference, pdf)


@blueprint.get("/track/<token>/letters/<int:message_id>.pdf")
def applicant_download(token: str, message_id: int):
    """The applicant's own letters, through their private tracking link."""
    from engine.applicant_links import LINK_EMAIL, case_for_token

    service = _service()
    with service.sessions() as db:
        case = case_for_token(db, token, service.now())
        if case is None:
            abort(404, "This link does not work. Ask for a new one from the page that tracks your case.")
        message = _letter_of(db, case, message_id)
        # The letters the track page lists: the applicant's own, not emails that carry a new link.
        if message.recipient_role != "applicant" or message.template == LINK_EMAIL:
            abort(404, "There is no such letter on this case.")
    pdf = ensure_letter_pdf(service.sessions, message.id, now=service.now(), service=service.settings.service)
    _record_download(case, message, "applicant")
    response = _pdf_response(message, case.reference, pdf)
    response.headers.update({"Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex"})
    return response
