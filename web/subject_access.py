"""Subject access and erasure requests, for administrators (engine/subject_access.py).

Find a person by name, email or postcode; tick the cases that are theirs; download everything
held about them as a zip, or erase closed cases on a stated ground. Searches, exports and
erasures are audited; the search terms are not kept.
"""
from __future__ import annotations

import io

from flask import Blueprint, current_app, flash, redirect, render_template, request, send_file, url_for
from flask_login import current_user

from engine import subject_access
from engine.errors import CaseReviewError, InvalidData

from .auth import roles_required

blueprint = Blueprint("subject_access", __name__, url_prefix="/admin/subject-access")
CRITERIA = ("name", "email", "postcode")


def _service():
    return current_app.extensions["casereview"]


def _criteria(source) -> dict[str, str]:
    return {key: (source.get(key) or "").strip() for key in CRITERIA}


def _page(criteria: dict, matches: list | None, errors: list[dict] | None = None, *,
          selected: list[str] | None = None, ground: str = "", status: int = 200):
    errors, selected = errors or [], set(selected or [])
    case_items = [{"value": m.reference, "text": f"{m.reference}: {_people(m)}", "checked": m.reference in selected,
                   "hint": {"text": f"As the {' and '.join(m.roles)} · postcode {m.postcode or 'not given'} · "
                                    f"received {m.received_on} · {m.status}"}} for m in matches or []]
    ground_items = [{"value": value, "text": text, "checked": ground == value}
                    for value, text in subject_access.ERASURE_GROUNDS.items()]
    return render_template(
        "subject_access.html", title="Subject access and erasure", criteria=criteria, matches=matches,
        case_items=case_items, ground_items=ground_items,
        errors={e["field"]: e["message"] for e in errors},
        error_items=[{"text": e["message"], "href": f"#{e['field']}"} for e in errors] or None), status


def _people(match: subject_access.Match) -> str:
    if match.route == "third_party" and match.victim_name:
        return f"applicant {match.applicant_name}, victim {match.victim_name}"
    return f"{match.applicant_name} (applying for themselves)"


def _find(criteria: dict, *, audited: bool) -> list[subject_access.Match]:
    service = _service()
    with service.transaction() as db:
        matches = subject_access.find(db, **criteria)
        if audited:
            subject_access.record_search(db, at=service.now(), actor=current_user.email,
                                         criteria=[k for k, v in criteria.items() if v], matches=len(matches))
    return matches


@blueprint.get("")
@roles_required("admin")
def search():
    criteria = _criteria(request.args)
    if not any(key in request.args for key in CRITERIA):
        return _page(criteria, None)
    try:
        matches = _find(criteria, audited=True)
    except InvalidData as error:
        return _page(criteria, None, error.errors, status=422)
    return _page(criteria, matches)


def _chosen():
    """The criteria and ticked cases posted back, and the cases they name (re-found, so a
    posted reference outside the search results is refused)."""
    criteria = _criteria(request.form)
    selected = request.form.getlist("cases")
    matches = _find(criteria, audited=False)
    chosen = [m for m in matches if m.reference in selected]
    return criteria, selected, matches, chosen


@blueprint.post("/export")
@roles_required("admin")
def export():
    service = _service()
    try:
        criteria, selected, matches, chosen = _chosen()
    except InvalidData as error:
        return _page(_criteria(request.form), None, error.errors, status=422)
    if not chosen:
        return _page(criteria, matches, [{"field": "cases", "message": "Choose the cases that are about this person"}],
                     selected=selected, status=422)
    used = ", ".join(f"{k} “{v}”" for k, v in criteria.items() if v)
    content = subject_access.export(service, chosen, actor=current_user.email,
                                    note=f"Found by {used}; cases confirmed by {current_user.email}.")
    name = f"subject-access-{service.now().date().isoformat()}.zip"
    return send_file(io.BytesIO(content), mimetype="application/zip", as_attachment=True, download_name=name)


@blueprint.post("/erase")
@roles_required("admin")
def erase():
    try:
        criteria, selected, matches, chosen = _chosen()
    except InvalidData as error:
        return _page(_criteria(request.form), None, error.errors, status=422)
    ground = request.form.get("ground") or ""
    errors = []
    if not chosen:
        errors.append({"field": "cases", "message": "Choose the cases to erase"})
    if ground not in subject_access.ERASURE_GROUNDS:
        errors.append({"field": "ground", "message": "Choose the ground for erasure"})
    if not errors:
        try:
            done = subject_access.erase(_service(), chosen, ground=ground, actor=current_user.email)
        except CaseReviewError as error:
            errors.append({"field": "cases", "message": error.message})
    if errors:
        return _page(criteria, matches, errors, selected=selected, ground=ground, status=422)
    flash(f"Personal data erased from {', '.join(item['reference'] for item in done)}. "
          "The figures and the audit trail are kept.")
    return redirect(url_for("subject_access.search", **criteria))
