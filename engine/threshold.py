"""The threshold: counting functions the decision table calls, input checks for
`casereview threshold-check`, and running the published `threshold_check` process."""
from __future__ import annotations

from datetime import date
from typing import Any, Iterable

from .workdays import months_before, to_date

ASB_REASON = "ASB_THREE_IN_SIX_MONTHS"
HATE_REASON = "HATE_INCIDENT"


def _counted(incidents: Iterable[dict], on, months: int) -> list[dict]:
    end = to_date(on)
    start = months_before(end, months)
    return [i for i in incidents or [] if start <= to_date(i["reported_on"]) <= end]


def occasions_within(incidents, on, months: int) -> int:
    """Distinct occurrence dates among incidents reported in [on − months, on]."""
    return len({to_date(i["occurred_on"]) for i in _counted(incidents, on, months)})


def reported_within(incidents, on, months: int, recent_months: int) -> int:
    """Counted incidents whose report lies in [on − recent_months, on]."""
    recent_start = months_before(to_date(on), recent_months)
    return sum(1 for i in _counted(incidents, on, months) if to_date(i["reported_on"]) >= recent_start)


def hate_within(incidents, on, months: int) -> int:
    return sum(1 for i in _counted(incidents, on, months) if i.get("hate") is True)


def incident_problems(incidents: Any, application_date: date, *, label: str = "incidents") -> list[dict]:
    """Field-level problems with incident dates: missing, impossible, reported after the
    application, or occurring after the report. Each names the incident (1-based) and field."""
    problems: list[dict] = []
    if not isinstance(incidents, list):
        return [{"field": label, "message": "must be a list of incidents"}]
    for number, incident in enumerate(incidents, start=1):
        where = f"{label}/{number}"
        if not isinstance(incident, dict):
            problems.append({"field": where, "message": f"incident {number} must be an object"})
            continue
        dates: dict[str, date] = {}
        for name in ("occurred_on", "reported_on"):
            value = incident.get(name)
            if value is None:
                problems.append({"field": f"{where}/{name}", "message": f"incident {number}: {name} is required"})
                continue
            try:
                if not isinstance(value, str) or len(value) != 10:
                    raise ValueError
                dates[name] = date.fromisoformat(value)
            except ValueError:
                problems.append({"field": f"{where}/{name}",
                                 "message": f"incident {number}: {name} {value!r} is not a real date (YYYY-MM-DD)"})
        if "hate" in incident and not isinstance(incident["hate"], bool):
            problems.append({"field": f"{where}/hate", "message": f"incident {number}: hate must be true or false"})
        reported = dates.get("reported_on")
        if reported and reported > application_date:
            problems.append({"field": f"{where}/reported_on",
                             "message": f"incident {number}: reported_on {reported} is after the application date {application_date}"})
        occurred = dates.get("occurred_on")
        if reported and occurred and occurred > reported:
            problems.append({"field": f"{where}/occurred_on",
                             "message": f"incident {number}: occurred_on {occurred} is after it was reported ({reported})"})
    return problems


def parse_check_request(payload: Any) -> tuple[date, list[dict]]:
    """Validate a threshold-check request; raise InvalidData naming incident and field."""
    from .errors import InvalidData

    if not isinstance(payload, dict):
        raise InvalidData([{"field": "(input)", "message": "must be a JSON object"}], "The request is not valid")
    problems: list[dict] = []
    raw = payload.get("application_date")
    application_date = None
    try:
        if not isinstance(raw, str) or len(raw) != 10:
            raise ValueError
        application_date = date.fromisoformat(raw)
    except ValueError:
        problems.append({"field": "application_date",
                         "message": "application_date is required as a real date (YYYY-MM-DD)" if raw is None
                         else f"application_date {raw!r} is not a real date (YYYY-MM-DD)"})
    incidents = payload.get("incidents")
    if incidents is None:
        problems.append({"field": "incidents", "message": "incidents is required"})
    elif application_date is not None:
        problems.extend(incident_problems(incidents, application_date))
    elif not isinstance(incidents, list):
        problems.append({"field": "incidents", "message": "must be a list of incidents"})
    if problems:
        raise InvalidData(problems, "The request is not valid")
    clean = [{"occurred_on": i["occurred_on"], "reported_on": i["reported_on"], "hate": i.get("hate", False)}
             for i in incidents]
    return application_date, clean
