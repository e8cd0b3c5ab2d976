"""Reports: the statutory figures (ready to publish, with CSV and JSON), the coordinator's
dashboard, and process analytics with the event log export.

Who sees what: figures are counts, with no case in them, so the statutory figures are for the
coordinator and the administrator, and process analytics for the coordinator and the process
owner. The operational dashboard, and anything that lists cases (the cases behind a figure, the
event log), are the coordinator's, who sees every case anyway; partner officers, chairs and
reviewers get 403 everywhere here.
"""
from __future__ import annotations

import csv
import io
import json
from datetime import date

from flask import Blueprint, Response, abort, current_app, render_template, request, stream_with_context, url_for
from flask_login import current_user

from engine import audit
from engine.errors import InvalidData
from engine.reports import (FIGURES, build_dashboard, cases_behind, cohort_history, last_complete_financial_year,
                            last_twelve_months, parse_period, process_analytics, statutory_figures)
from engine.reports.dashboard import ACTION_OUTCOMES, ROUTES, Dashboard
from engine.reports.eventlog import csv_chunks, xes_chunks
from engine.reports.periods import Period, financial_year_containing, financial_year_to_date
from engine.reports.statutory import FIGURES_BY_KEY

from .auth import roles_required
from .cases import STAGE_WORDS, agency_name

blueprint = Blueprint("reports", __name__, url_prefix="/reports")

STATUTORY_ROLES = ("coordinator", "admin")
CASE_LIST_ROLES = ("coordinator",)
DASHBOARD_ROLES = ("coordinator",)
PROCESS_ROLES = ("coordinator", "owner")
EVENT_LOG_ROLES = ("coordinator",)
REPORT_ROLES = tuple(sorted(set(STATUTORY_ROLES + DASHBOARD_ROLES + PROCESS_ROLES)))

ROUTE_WORDS = {"victim": "Victim", "third_party": "Third party"}
ACTION_WORDS = {"completed_on_time": "Completed on time", "completed_late": "Completed late",
                "overdue": "Overdue", "not_yet_due": "Not yet due", "stopped": "Stopped (case closed)"}
# GOV.UK colours, chosen so that a colour means the same thing wherever it appears.
ACTION_COLOURS = {"completed_on_time": "#00703c", "completed_late": "#f47738", "overdue": "#d4351c",
                  "not_yet_due": "#1d70b8", "stopped": "#505a5f"}


def _service():
    return current_app.extensions["casereview"]


def _today() -> date:
    return _service().now().date()


def _period(default: Period) -> Period:
    return parse_period(request.args.get("from"), request.args.get("to"), default)


def _period_errors(error: InvalidData) -> list[dict]:
    return [{"text": e["message"], "href": f"#{e['field']}"} for e in error.errors]


def _field_errors(error: InvalidData | None) -> dict[str, str]:
    return {e["field"]: e["message"] for e in error.errors} if error else {}


def _invalid_page(template: str, title: str, error: InvalidData, **context):
    return render_template(template, title=title, period=None, error_items=_period_errors(error),
                           field_errors=_field_errors(error), typed=request.args, **context), 422


def _invalid_download(error: InvalidData) -> Response:
    return Response(json.dumps({"errors": error.errors}), status=422, mimetype="application/json")


def _download(body, mimetype: str, filename: str) -> Response:
    response = Response(body, mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _csv_text(rows) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue()


def _slug(period: Period) -> str:
    return f"{period.start.isoformat()}_to_{period.end.isoformat()}"


# ----- the list of reports --------------------------------------------------------------------
@blueprint.get("")
@roles_required(*REPORT_ROLES)
def index():
    return render_template("reports/index.html", title="Reports", role=current_user.role,
                           statutory=STATUTORY_ROLES, dashboard=DASHBOARD_ROLES, process=PROCESS_ROLES)


# ----- statutory figures ----------------------------------------------------------------------
def _statutory(period: Period):
    with _service().sessions() as db:
        return statutory_figures(db, period)


def _period_choices(today: date) -> list[tuple[str, Period]]:
    last = last_complete_financial_year(today)
    current = financial_year_containing(today)
    return [(f"Last financial year ({last.start.year} to {last.end.year})", last),
            (f"This financial year so far ({current.start.year} to {current.end.year})",
             financial_year_to_date(today))]


@blueprint.get("/statutory")
@roles_required(*STATUTORY_ROLES)
def statutory():
    today = _today()
    context = {"choices": _period_choices(today), "figure_defs": FIGURES}
    try:
        period = _period(last_complete_financial_year(today))
    except InvalidData as error:
        return _invalid_page("reports/statutory.html", "Statutory figures", error, **context)
    # This financial year so far beside the period asked for (by default the last complete year, which
    # is what gets published), so the figures still being made are in view too.
    so_far = financial_year_to_date(today)
    columns = [{"key": "period", "period": period, "heading": _column_heading(period, today),
                "figures": _statutory(period).counts}]
    if so_far != period:
        columns.append({"key": "current", "period": so_far, "heading": _column_heading(so_far, today),
                        "figures": _statutory(so_far).counts})
    return render_template("reports/statutory.html", title="Statutory figures", period=period, columns=columns,
                           typed=period.query(), field_errors={}, may_list_cases=current_user.role in CASE_LIST_ROLES,
                           **context)


def _column_heading(period: Period, today: date) -> str:
    if period == last_complete_financial_year(today):
        return f"Last financial year ({period.start.year} to {period.end.year})"
    if period == financial_year_to_date(today):
        return f"This financial year so far ({period.words})"
    return period.words


@blueprint.get("/statutory.json")
@roles_required(*STATUTORY_ROLES)
def statutory_json():
    try:
        period = _period(last_complete_financial_year(_today()))
    except InvalidData as error:
        return _invalid_download(error)
    body = {"from": period.start.isoformat(), "to": period.end.isoformat(), **_statutory(period).as_dict()}
    return _download(json.dumps(body), "application/json", f"statutory-figures_{_slug(period)}.json")


@blueprint.get("/statutory.csv")
@roles_required(*STATUTORY_ROLES)
def statutory_csv():
    try:
        period = _period(last_complete_financial_year(_today()))
    except InvalidData as error:
        return _invalid_download(error)
    figures = _statutory(period).as_dict()
    rows = [("from", "to", "figure", "description", "count")]
    rows += [(period.start.isoformat(), period.end.isoformat(), figure.key, figure.label, figures[figure.key])
             for figure in FIGURES]
    return _download(_csv_text(rows), "text/csv", f"statutory-figures_{_slug(period)}.csv")


@blueprint.get("/statutory/<figure>")
@roles_required(*CASE_LIST_ROLES)
def statutory_cases(figure: str):
    if figure not in FIGURES_BY_KEY:
        abort(404)
    try:
        period = _period(last_complete_financial_year(_today()))
    except InvalidData as error:
        return _invalid_page("reports/statutory_cases.html", FIGURES_BY_KEY[figure].label, error,
                             figure=FIGURES_BY_KEY[figure], cases=[], stage_words=STAGE_WORDS)
    with _service().sessions() as db:
        cases = cases_behind(db, period, figure)
    return render_template("reports/statutory_cases.html", title=FIGURES_BY_KEY[figure].label, period=period,
                           figure=FIGURES_BY_KEY[figure], cases=cases, stage_words=STAGE_WORDS)


# ----- the coordinator's dashboard ------------------------------------------------------------
def _dashboard_tables(board: Dashboard) -> dict:
    """Every table of the page (and of its CSV and charts) as headers and rows of plain values."""
    month = lambda m: m.strftime("%B %Y")  # noqa: E731
    return {
        "applications": {
            "caption": "Applications received, by month and route",
            "headers": ["Month", *(ROUTE_WORDS[r] for r in ROUTES), "Total"],
            "rows": [[month(m.month), *(m.counts[r] for r in ROUTES), m.total] for m in board.applications],
        },
        "decisions": {
            "caption": "Threshold decisions, by month",
            "headers": ["Month", "Threshold met", "Threshold not met", "Total"],
            "rows": [[month(m.month), m.counts["met"], m.counts["not_met"], m.total] for m in board.decisions],
        },
        "timings": {
            "caption": "Working days against the local targets",
            "headers": ["Step", "Target (working days)", "Cases", "Half took no more than", "9 in 10 took no more than", "Longest",
                        "Within target"],
            "rows": [[t.label, "None set" if t.target is None else t.target, t.spread.count, _number(t.spread.median), _number(t.spread.p90),
                      _number(t.spread.longest), t.within_target] for t in board.timings],
        },
        "actions": {
            "caption": "Actions due in the period, by agency",
            "headers": ["Agency", *(ACTION_WORDS[k] for k in ACTION_OUTCOMES), "Total"],
            "rows": [[agency_name(a.agency), *(a.counts[k] for k in ACTION_OUTCOMES), a.total] for a in board.actions],
        },
        "escalations": {
            "caption": "Escalations",
            "headers": ["Escalations", "Number"],
            "rows": [["Asked for in the period", board.escalations.requested],
                     ["Decided in the period: upheld", board.escalations.upheld],
                     ["Decided in the period: not upheld", board.escalations.not_upheld],
                     ["Waiting for a decision now", board.escalations.waiting_now]],
        },
    }


def _number(value) -> str:
    if value is None:
        return "–"
    return f"{value:g}"


def _charts(tables: dict) -> dict[str, dict]:
    """What reports.js draws, read from data-* attributes (the CSP forbids inline script)."""
    applications, decisions, timings = tables["applications"], tables["decisions"], tables["timings"]
    actions = tables["actions"]
    return {
        "applications": {"type": "bar", "stacked": True, "labels": [r[0] for r in applications["rows"]],
                         "series": [{"label": applications["headers"][i + 1], "data": [r[i + 1] for r in
                                                                                       applications["rows"]]}
                                    for i in range(len(ROUTES))]},
        "decisions": {"type": "bar", "stacked": True, "labels": [r[0] for r in decisions["rows"]],
                      "series": [{"label": decisions["headers"][i], "data": [r[i] for r in decisions["rows"]]}
                                 for i in (1, 2)]},
        "timings": {"type": "bar", "stacked": False, "labels": [r[0] for r in timings["rows"]],
                    "series": [{"label": "Target", "data": [r[1] for r in timings["rows"]], "colour": "#505a5f"},
                               {"label": "Half took no more than", "data": [_float(r[3]) for r in timings["rows"]],
                                "colour": "#1d70b8"},
                               {"label": "9 in 10 took no more than", "data": [_float(r[4]) for r in timings["rows"]],
                                "colour": "#4c2c92"}]},
        "actions": {"type": "bar", "stacked": True, "horizontal": True, "labels": [r[0] for r in actions["rows"]],
                    "series": [{"label": actions["headers"][i + 1], "data": [r[i + 1] for r in actions["rows"]],
                                "colour": ACTION_COLOURS[key]} for i, key in enumerate(ACTION_OUTCOMES)]},
    }


def _float(text: str) -> float | None:
    return None if text == "–" else float(text)


def _board(period: Period) -> Dashboard:
    with _service().sessions() as db:
        return build_dashboard(db, period, _today())


@blueprint.get("/dashboard")
@roles_required(*DASHBOARD_ROLES)
def dashboard():
    try:
        period = _period(last_twelve_months(_today()))
    except InvalidData as error:
        return _invalid_page("reports/dashboard.html", "Dashboard", error, tables={}, charts={})
    tables = _dashboard_tables(_board(period))
    return render_template("reports/dashboard.html", title="Dashboard", period=period, tables=tables,
                           charts=_charts(tables), typed=period.query(), field_errors={})


@blueprint.get("/dashboard.csv")
@roles_required(*DASHBOARD_ROLES)
def dashboard_csv():
    """Every table of the page in one long CSV: table, row, column, value."""
    try:
        period = _period(last_twelve_months(_today()))
    except InvalidData as error:
        return _invalid_download(error)
    rows = [("from", "to", "table", "row", "column", "value")]
    for name, table in _dashboard_tables(_board(period)).items():
        for row in table["rows"]:
            rows += [(period.start.isoformat(), period.end.isoformat(), name, row[0], header, value)
                     for header, value in zip(table["headers"][1:], row[1:])]
    return _download(_csv_text(rows), "text/csv", f"dashboard_{_slug(period)}.csv")


# ----- process analytics and the event log ----------------------------------------------------
@blueprint.get("/process")
@roles_required(*PROCESS_ROLES)
def process():
    try:
        period = _period(last_twelve_months(_today()))
    except InvalidData as error:
        return _invalid_page("reports/process.html", "Where the time goes", error, analytics=None,
                             stage_words=STAGE_WORDS, may_export=False)
    with _service().sessions() as db:
        analytics = process_analytics(db, period, _service().now())
    return render_template("reports/process.html", title="Where the time goes", period=period, analytics=analytics,
                           stage_words=STAGE_WORDS, typed=period.query(), field_errors={},
                           may_export=current_user.role in EVENT_LOG_ROLES)


def _event_log(kind: str):
    try:
        period = _period(last_twelve_months(_today()))
    except InvalidData as error:
        return _invalid_download(error)
    service = _service()
    with service.transaction() as db:
        audit.record(db, at=service.now(), actor=current_user.email, event="event_log_exported",
                     detail={"format": kind, **period.query()})

    def chunks():
        with service.sessions() as db:
            events = cohort_history(db, period)
            if kind == "csv":
                for chunk in csv_chunks(events):
                    yield chunk.encode("utf-8")
            else:
                yield from xes_chunks(events, f"ASB case reviews received {period.words}")

    mimetype = "text/csv" if kind == "csv" else "application/xml"
    return _download(stream_with_context(chunks()), mimetype, f"event-log_{_slug(period)}.{kind}")


@blueprint.get("/process/events.csv")
@roles_required(*EVENT_LOG_ROLES)
def events_csv():
    return _event_log("csv")


@blueprint.get("/process/events.xes")
@roles_required(*EVENT_LOG_ROLES)
def events_xes():
    return _event_log("xes")


@blueprint.app_template_filter("report_days")
def days_filter(value) -> str:
    """A number of days to one decimal place, or a dash."""
    return "–" if value is None else f"{value:.1f}"


@blueprint.app_context_processor
def report_links():
    return {"report_url": lambda endpoint, period, **kw: url_for(endpoint, **(period.query() if period else {}),
                                                                  **kw)}
