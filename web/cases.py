"""Case pages: search, the case itself (every view audited) and its diagram."""
from __future__ import annotations

from flask import Blueprint, Response, abort, current_app, render_template, request
from flask_login import current_user
from sqlalchemy import select

from engine import audit, policy
from engine.linked import linked_cases
from engine.models import Case, HumanTask, ProcessVersion
from engine.queries import case_view, diagram_state, search_cases
from engine.evidence import explained

from .auth import roles_required
from .documents import documents_for_page
from .timeline import timeline_entries

blueprint = Blueprint("cases", __name__)
VIEWING_ROLES = ("coordinator", "partner", "chair", "reviewer")
STAGE_WORDS = {
    "application": "Application received", "consent": "Waiting for the victim's consent",
    "incident_history": "Gathering incident history", "threshold_decision": "Threshold decision",
    "safety_net": "Threshold not met: safety-net actions", "panel": "Case review panel",
    "action_delivery": "Delivering the action plan", "follow_up": "Follow-up with the victim",
    "closed": "Closed", "withdrawn": "Withdrawn",
}


def _service():
    return current_app.extensions["casereview"]


def _visible_case(db, reference: str) -> Case:
    case = db.scalar(select(Case).where(Case.reference == reference))
    if case is None or not policy.may_view_case(current_user, case):
        abort(404, "There is no case with that reference you can see.")
    return case


@blueprint.get("/cases")
@roles_required(*VIEWING_ROLES)
def search():
    text = request.args.get("q", "")
    with _service().sessions() as db:
        found = search_cases(db, current_user, text)
    return render_template("cases.html", title="Cases", cases=found, q=text, stage_words=STAGE_WORDS)


@blueprint.get("/cases/<reference>")
@roles_required(*VIEWING_ROLES)
def case_page(reference: str):
    service = _service()
    with service.transaction() as db:
        case = _visible_case(db, reference)
        view = case_view(db, reference)
        tasks = list(db.scalars(select(HumanTask).where(HumanTask.case_id == case.id).order_by(HumanTask.due)))
        linked = linked_cases(db, case) if current_user.role == "coordinator" else None
        documents = documents_for_page(db, case)
        audit.record(db, at=service.now(), actor=current_user.email, event="case_viewed", case_id=case.id,
                     stage_before=case.stage, stage_after=case.stage, detail={"page": "case"})
        application = case.application or {}
    personal = policy.sees_personal_details(current_user)
    if not personal:
        view["actions"] = [a for a in view["actions"] if a["agency"] == current_user.agency]
        view["letters"] = []
        view["history"] = [h for h in view["history"] if h["event"] != "case_viewed"]
    tasks = [t for t in tasks if personal or t.agency == current_user.agency]
    if view["threshold"]:
        view["threshold"] = explained(view["threshold"])
    return render_template("case.html", title=f"Case {reference}", case=view, application=application,
                           personal=personal, tasks=tasks, stage_words=STAGE_WORDS,
                           timeline=timeline_entries(view["history"], STAGE_WORDS), linked=linked, documents=documents,
                           may_complete=lambda t: policy.may_complete(current_user.actor, t))


@blueprint.get("/cases/<reference>/diagram.bpmn")
@roles_required(*VIEWING_ROLES)
def diagram(reference: str):
    with _service().sessions() as db:
        case = _visible_case(db, reference)
        files = db.scalar(select(ProcessVersion.files).where(ProcessVersion.id == case.process_version_id))
    return Response(files["processes/case_review.bpmn"], mimetype="application/xml")


@blueprint.get("/cases/<reference>/diagram-state.json")
@roles_required(*VIEWING_ROLES)
def diagram_position(reference: str):
    with _service().sessions() as db:
        case = _visible_case(db, reference)
        return diagram_state(db, case)
