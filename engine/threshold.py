"""The threshold: counting functions the decision table calls, input checks for
`casereview threshold-check`, and running the published `threshold_check` process."""
from __future__ import annotations

import ast
import re
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


MAX_CHECKED_INCIDENTS = 1000  # ten times the most an application can hold; bounds the table's work


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
    elif isinstance(incidents, list) and len(incidents) > MAX_CHECKED_INCIDENTS:
        problems.append({"field": "incidents", "message": f"at most {MAX_CHECKED_INCIDENTS:,} incidents can be "
                                                          f"checked at once ({len(incidents):,} given)"})
    elif application_date is not None:
        problems.extend(incident_problems(incidents, application_date))
    elif not isinstance(incidents, list):
        problems.append({"field": "incidents", "message": "must be a list of incidents"})
    if problems:
        raise InvalidData(problems, "The request is not valid")
    clean = [{"occurred_on": i["occurred_on"], "reported_on": i["reported_on"], "hate": i.get("hate", False)}
             for i in incidents]
    return application_date, clean


# ----- explaining a decision in the published table's own terms --------------------------------

_MINIMUM = re.compile(r"^\s*(>=|>)\s*(\d+)\s*$")


def decision_terms(version) -> dict[str, Any] | None:
    """The threshold table's inputs (id, label) and each rule's minimums, read from the version's
    DMN, so pages explain a decision with the numbers the published table used."""
    table = _threshold_table(version)
    if table is None:
        return None
    inputs = [{"id": item.id, "label": item.label or item.id} for item in table.inputs]
    rules = []
    for rule in table.rules:
        needs, explainable = {}, True
        for entry in rule.inputEntries:
            text = (entry.text or "").strip()
            if text in ("", "-"):
                continue
            found = _MINIMUM.match(text)
            if not found:
                explainable = False  # a test we cannot phrase as "at least N"
                break
            needs[entry.input.id] = int(found.group(2)) + (1 if found.group(1) == ">" else 0)
        if explainable and needs:
            rules.append({"description": rule.description or "", "needs": needs})
    return {"inputs": inputs, "rules": rules, "period_months": _period_months(table)}


def _threshold_table(version):
    for spec, subprocesses in version.specs.values():
        for process in (spec, *subprocesses.values()):
            for task_spec in process.task_specs.values():
                engine = getattr(task_spec, "dmnEngine", None)
                if engine is not None and engine.decision_table.id == "threshold_table":
                    return engine.decision_table
    return None


def _period_months(table) -> int | None:
    """The months argument of the first counting function, e.g. 6 in occasions_within(..., 6)."""
    for item in table.inputs:
        try:
            call = ast.parse(item.expression, mode="eval").body
        except SyntaxError:
            continue
        if isinstance(call, ast.Call) and len(call.args) >= 3 and isinstance(call.args[2], ast.Constant):
            return call.args[2].value
    return None


def shortfalls(threshold: dict) -> list[str]:
    """For a decision that was not met: what each rule of the table still needed, in words."""
    terms = threshold.get("terms") or {}
    labels = {item["id"]: item["label"] for item in terms.get("inputs", [])}
    sentences = []
    for rule in terms.get("rules", []):
        missing = []
        for input_id, minimum in rule["needs"].items():
            have = threshold.get(input_id) or 0
            if have < minimum:
                label = labels.get(input_id, input_id)
                missing.append(f"{minimum - have} more for “{label[:1].lower()}{label[1:]}” ({have} of {minimum})")
        if missing:
            sentences.append(" and ".join(missing))
    return sentences


def rules_met(threshold: dict) -> list[str]:
    """The descriptions of the table's rules whose minimums the counts reach: why it is met."""
    terms = threshold.get("terms") or {}
    return [rule["description"] for rule in terms.get("rules", [])
            if rule["description"] and all((threshold.get(i) or 0) >= n for i, n in rule["needs"].items())]
