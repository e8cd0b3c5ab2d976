"""Case pages: the case list, the case itself in sections (every view audited) and its diagram.

A case is shown as an MOJ identity bar (reference, victim, status, stage, next deadline) over a
sub navigation of sections, each its own page at its own address so every one works without
JavaScript and can be linked to: /cases/<ref> (summary), /incidents, /actions, /letters,
/timeline and /process."""
from __future__ import annotations

from flask import Blueprint, Response, abort, current_app, g, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from engine import audit, policy
from engine.linked import linked_cases
from engine.models import Agency, Case, HumanTask, ProcessVersion, User
from engine.queries import CASE_SORTS, case_list, case_processes, case_view, diagram_state
from engine.evidence import explained
from engine.threshold import shortfalls

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
STATUS_WORDS = {"open": "Open", "closed": "Closed", "withdrawn": "Withdrawn"}
ROLE_WORDS = {"coordinator": "Coordinator", "partner": "Partner agency officer", "chair": "Panel chair",
              "reviewer": "Escalation reviewer", "applicant": "The applicant", "owner": "Process owner",
              "admin": "Administrator"}
# "Reported to" on an application is an agency code or one of these.
NOT_AN_AGENCY = {"other": "Someone else"}

# (section, address, label): the case's sub navigation, in its order.
SECTIONS = (
    ("summary", "cases.case_page", "Summary"),
    ("incidents", "cases.incidents", "Incidents and threshold"),
    ("actions", "cases.actions", "Action plan"),
    ("letters", "cases.letters", "Letters and documents"),
    ("timeline", "cases.timeline", "Timeline"),
    ("process", "cases.process", "Process"),
)


def _service():
    return current_app.extensions["casereview"]


def _visible_case(db, reference: str) -> Case:
    case = db.scalar(select(Case).where(Case.reference == reference))
    if case is None or not policy.may_view_case(current_user, case):
        abort(404, "There is no case with that reference that you can see. Check the reference, or find the "
                   "case in the case list: it shows every case you can see.")
    return case


@blueprint.app_template_global()
def agency_name(code: str | None) -> str:
    """An agency's name for a code (read once per request); an unknown code is shown as it is."""
    if not code:
        return ""
    names = g.get("agency_names")
    if names is None:
        with _service().sessions() as db:
            names = remember_agency_names(db)
    return names.get(code) or NOT_AN_AGENCY.get(code) or code


def remember_agency_names(db) -> dict[str, str]:
    """Read the agencies' names in a session already open (inside a write transaction on SQLite a
    second session would wait for the lock) for `agency_name` to use for the rest of the request."""
    g.agency_names = dict(db.execute(select(Agency.code, Agency.name)).all())
    return g.agency_names


@blueprint.app_template_global()
def recipient_words(role: str) -> str:
    """Who a letter went to: 'the applicant', 'the coordinator', or an agency by name."""
    if role.startswith("agency:"):
        return agency_name(role.removeprefix("agency:"))
    return {"applicant": "the applicant", "victim": "the victim", "coordinator": "the coordinator"}.get(role, role)


@blueprint.app_template_global()
def role_words(role: str | None) -> str:
    return ROLE_WORDS.get(role or "", role or "")


# ----- the case list --------------------------------------------------------------------------
@blueprint.get("/cases")
@roles_required(*VIEWING_ROLES)
def search():
    args = request.args
    filters = {
        "q": (args.get("q") or "").strip(),
        "status": args.get("status") if args.get("status") in STATUS_WORDS else "",
        "stage": args.get("stage") if args.get("stage") in STAGE_WORDS else "",
        "overdue": args.get("overdue") == "yes",
        "agency": (args.get("agency") or "") if current_user.role != "partner" else "",
    }
    sort = args.get("sort") if args.get("sort") in CASE_SORTS else "received"
    page = int(args["page"]) if (args.get("page") or "").isdigit() else 1
    service = _service()
    with service.sessions() as db:
        agencies = db.execute(select(Agency.code, Agency.name).order_by(Agency.name)).all()
        if filters["agency"] not in {code for code, _ in agencies}:
            filters["agency"] = ""
        result = case_list(db, current_user, today=service.now().date(), text=filters["q"], status=filters["status"],
                           stage=filters["stage"], overdue=filters["overdue"], agency=filters["agency"] or None,
                           sort=sort, page=page)
    query = {key: ("yes" if value is True else value) for key, value in filters.items() if value}
    return render_template("cases.html", title="Cases", result=result, filters=filters, sort=sort, query=query,
                           agencies=agencies, stage_words=STAGE_WORDS, status_words=STATUS_WORDS,
                           q=filters["q"])


# ----- the case, section by section -----------------------------------------------------------
def _identity(case: Case, tasks: list[HumanTask]) -> dict:
    """What the identity bar says: who the case is for, where it is and what is due next."""
    due = [t for t in tasks if t.due]
    next_task = min(due, key=lambda t: t.due) if due else None
    return {
        "victim": case.victim_name or "Victim not named",
        "status": case.status,
        "stage": STAGE_WORDS.get(case.stage, case.stage),
        "next_due": next_task.due if next_task else None,
        "next_task": next_task.title if next_task else None,
        "overdue": bool(next_task and next_task.due < _service().now().date()),
    }


def _show(reference: str, section: str, template: str, context: dict | None = None, **wanted):
    """Load what every section shows, audit the view, and render the section's page. `wanted`
    names the extra things this section reads (documents, linked), so no page reads the rest."""
    service = _service()
    with service.transaction() as db:
        case = _visible_case(db, reference)
        remember_agency_names(db)
        view = case_view(db, reference)
        tasks = list(db.scalars(select(HumanTask).where(HumanTask.case_id == case.id)
                                .order_by(HumanTask.due.is_(None), HumanTask.due)))
        personal = policy.sees_personal_details(current_user)
        if not personal:  # a partner officer's deadlines are their agency's
            tasks = [t for t in tasks if t.agency == current_user.agency]
        identity = _identity(case, tasks)
        extra = {}
        if wanted.get("documents"):
            extra["documents"] = documents_for_page(db, case)
        if wanted.get("people"):
            extra["people"] = dict(db.execute(select(User.email, User.name)).all())
        if wanted.get("linked"):
            extra["linked"] = linked_cases(db, case) if current_user.role == "coordinator" else None
        audit.record(db, at=service.now(), actor=current_user.email, event="case_viewed", case_id=case.id,
                     stage_before=case.stage, stage_after=case.stage, detail={"page": "case", "section": section})
        application = case.application or {}
    if not personal:
        view["actions"] = [a for a in view["actions"] if a["agency"] == current_user.agency]
        view["letters"] = []
    view["history"] = policy.visible_history(current_user, view["history"])
    if view["threshold"]:
        view["threshold"] = explained(view["threshold"])
    sections = [{"key": key, "href": url_for(endpoint, reference=reference),
                 "text": "Documents" if key == "letters" and not personal else label}
                for key, endpoint, label in SECTIONS]
    current = next(s for s in sections if s["key"] == section)
    title = f"{current['text']} – case {reference}"
    return render_template(template, title=title, section=section, sections=sections, section_title=current["text"],
                           case=view, identity=identity, application=application, personal=personal, tasks=tasks,
                           stage_words=STAGE_WORDS, status_words=STATUS_WORDS,
                           may_complete=lambda t: policy.may_complete(current_user.actor, t), **extra,
                           **(context or {}))


@blueprint.get("/cases/<reference>")
@roles_required(*VIEWING_ROLES)
def case_page(reference: str):
    return _show(reference, "summary", "case/summary.html", linked=True)


@blueprint.get("/cases/<reference>/incidents")
@roles_required(*VIEWING_ROLES)
def incidents(reference: str):
    return _show(reference, "incidents", "case/incidents.html")


@blueprint.get("/cases/<reference>/actions")
@roles_required(*VIEWING_ROLES)
def actions(reference: str):
    return _show(reference, "actions", "case/actions.html")


@blueprint.get("/cases/<reference>/letters")
@roles_required(*VIEWING_ROLES)
def letters(reference: str):
    return _show(reference, "letters", "case/letters.html", documents=True)


@blueprint.get("/cases/<reference>/timeline")
@roles_required(*VIEWING_ROLES)
def timeline(reference: str):
    return _show(reference, "timeline", "case/timeline.html", people=True)


@blueprint.get("/cases/<reference>/process")
@roles_required(*VIEWING_ROLES)
def process(reference: str):
    with _service().sessions() as db:
        case = _visible_case(db, reference)
        processes = case_processes(db, case)
        chosen = _chosen_process(db, case)
    return _show(reference, "process", "case/process.html", context={"processes": processes, "chosen": chosen})


@blueprint.app_template_global()
def case_timeline(history, people=None) -> list[dict]:
    return timeline_entries(history, STAGE_WORDS, people)


@blueprint.app_template_global()
def threshold_shortfalls(threshold) -> list[str]:
    return shortfalls(threshold) if threshold else []


def _chosen_process(db, case: Case) -> dict[str, str]:
    """The process `?process=` names among those the case has run (default: the first, the one the
    application started); any other name is not found."""
    processes = case_processes(db, case)
    wanted = request.args.get("process")
    chosen = next((p for p in processes if p["id"] == wanted), None) if wanted else (processes or [None])[0]
    if chosen is None:
        abort(404, "This case has not run that process.")
    return chosen


@blueprint.get("/cases/<reference>/diagram.bpmn")
@roles_required(*VIEWING_ROLES)
def diagram(reference: str):
    with _service().sessions() as db:
        case = _visible_case(db, reference)
        chosen = _chosen_process(db, case)
        files = db.scalar(select(ProcessVersion.files).where(ProcessVersion.id == case.process_version_id))
    return Response(files[chosen["file"]], mimetype="application/xml")


@blueprint.get("/cases/<reference>/diagram-state.json")
@roles_required(*VIEWING_ROLES)
def diagram_position(reference: str):
    with _service().sessions() as db:
        case = _visible_case(db, reference)
        return diagram_state(db, case, _chosen_process(db, case)["id"])
