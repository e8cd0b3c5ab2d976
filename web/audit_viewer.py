"""The audit trail for administrators: who viewed or changed which case, and when.

Filter by case reference, person, event and dates; page through; download as CSV. The trail
holds no applicant's personal data (engine/audit.py), so administrators may read all of it.
"""
from __future__ import annotations

import csv
import io
import json
from datetime import date

from flask import Blueprint, Response, current_app, render_template, request, stream_with_context
from flask_login import current_user

from engine import audit

from .auth import roles_required
from .cases import STAGE_WORDS
from .timeline import event_words

blueprint = Blueprint("audit_viewer", __name__, url_prefix="/admin")
PER_PAGE = 50
CSV_COLUMNS = ("seq", "at", "actor", "event", "case", "stage_before", "stage_after", "detail")
FIELDS = ("reference", "actor", "event", "since", "until")


def _service():
    return current_app.extensions["casereview"]


def _read_filter(args) -> tuple[audit.TrailFilter, dict, list[dict]]:
    """The filter from the query string, the values as typed, and any problems with them."""
    values = {name: (args.get(name) or "").strip() for name in FIELDS}
    errors, days = [], {}
    for name, label in (("since", "From"), ("until", "To")):
        if values[name]:
            try:
                days[name] = date.fromisoformat(values[name])
            except ValueError:
                errors.append({"field": name, "message": f"{label} must be a date, for example 2026-03-02"})
    if not errors and days.get("since") and days.get("until") and days["since"] > days["until"]:
        errors.append({"field": "until", "message": "To must be the same as or after From"})
    where = audit.TrailFilter(reference=values["reference"], actor=values["actor"], event=values["event"],
                              since=days.get("since"), until=days.get("until"))
    return where, values, errors


def summary(detail: dict) -> str:
    """A short line for the table: the detail's fields, with the list of effects counted."""
    parts = []
    for key, value in detail.items():
        if key == "effects":
            value = f"{len(value)} effect{'' if len(value) == 1 else 's'}"
        elif isinstance(value, (dict, list)):
            value = json.dumps(value, ensure_ascii=False)
        parts.append(f"{key}: {value}")
    text = "; ".join(parts)
    return text if len(text) <= 160 else text[:157] + "…"


@blueprint.get("/audit")
@roles_required("admin")
def index():
    where, values, errors = _read_filter(request.args)
    page_arg = request.args.get("page", "1")
    with _service().sessions() as db:
        events = audit.event_names(db)
        result = (audit.trail_page(db, where, int(page_arg) if page_arg.isdigit() else 1, PER_PAGE)
                  if not errors else {"items": [], "page": 1, "more": False})
    event_items = [{"value": "", "text": "Any event"}] + [
        {"value": name, "text": event_words(name), "selected": name == values["event"]}
        for name in sorted(events, key=event_words)]
    return render_template("audit_trail.html", title="Audit trail", result=result, values=values, event_items=event_items,
                           errors={e["field"]: e["message"] for e in errors}, summary=summary, event_words=event_words,
                           stage_words=STAGE_WORDS,
                           error_items=[{"text": e["message"], "href": f"#{e['field']}"} for e in errors] or None
                           ), (422 if errors else 200)


@blueprint.get("/audit.csv")
@roles_required("admin")
def download():
    where, values, errors = _read_filter(request.args)
    if errors:
        return index()
    service = _service()
    with service.transaction() as db:
        audit.record(db, at=service.now(), actor=current_user.email, event="audit_trail_downloaded",
                     detail={k: v for k, v in values.items() if v})

    def rows():
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(CSV_COLUMNS)
        with service.sessions() as db:
            for event, reference in db.execute(audit.trail_query(where).execution_options(yield_per=1000)):
                item = audit.trail_item(event, reference)
                writer.writerow([_cell(item["seq"]), item["at"].isoformat(), _cell(item["actor"]), _cell(item["event"]),
                                 _cell(item["case"]), _cell(item["stage_before"]), _cell(item["stage_after"]),
                                 _cell(json.dumps(item["detail"], ensure_ascii=False, sort_keys=True))])
                if buffer.tell() > 64_000:
                    yield buffer.getvalue()
                    buffer.seek(0)
                    buffer.truncate()
        yield buffer.getvalue()

    name = f"audit-trail-{service.now().date().isoformat()}.csv"
    return Response(stream_with_context(rows()), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


def _cell(value) -> str:
    """Spreadsheets run cells that start with = + - @ as formulas: keep them text."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
