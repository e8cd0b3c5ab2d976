"""What a task page shows beside its form, and what the form starts with: both declared in the
form (`x-ui.context`, `x-ui.prefill`), read here over the task's own data and generic case facts.

No form field, diagram element or letter is named in this module: the declaration names them,
so a process owner changes what a page shows by editing the form.

`x-ui.context` is a list; each item has a `title` (its heading) and one `kind`:

| kind | shows | members |
| --- | --- | --- |
| `data` (the default) | the value at `key`, a dotted path into the task's data | `key`; optional `show` (members of an object, in order), `labels` (member → words), `heading` (the member that heads each entry of a list of objects), `agencies` (members holding agency codes, shown by name), `words` (stored value → words, e.g. `in_progress` → "In progress") |
| `threshold` | the computed threshold in the published table's terms: met or not, the reasons, the counts and each incident counted or not | `result`: path to the threshold check's result (`met`, `reasons`) |
| `timeline` | the case's history as the MOJ timeline | none |
| `actions` | the case's action plan: each action, its agency, owner, due date, status and whether it is overdue | none |
| `facts` | a summary list of single values | `rows`: [{`label`, and one of `key` (path into task data), `case` (one of CASE_FACTS), `letter` (a letter template, or a list: the date the first such letter was written)}] |

`x-ui.prefill` is `{property: path}`: the property starts with the value at the path in the
task's data when the form is first shown (a list of objects keeps, in each item, only the
members the item's schema has). A posted form is never prefilled again.

Partner officers never see the applicant's details through either: a path whose first part is
an object section of the application (who applied, the victim) is withheld from them, as are
entries of a list headed by another agency, and other agencies' actions (engine.policy)."""
from __future__ import annotations

import copy
from datetime import date
from typing import Any
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import policy
from . import threshold as threshold_rules
from .models import Action, Agency, AuditEvent, Case, HumanTask, OutboxMessage, User, WorkflowInstance
from .versions import compiled

KINDS = ("data", "threshold", "timeline", "actions", "facts")
CASE_FACTS = ("received_on", "decided_on", "status", "stage", "route", "handled_by")
MISSING = object()


# ----- reading declarations -------------------------------------------------------------------

def context_items(schema: dict) -> list[dict]:
    """The well-formed items of a form's `x-ui.context` (the studio refuses the others)."""
    items = (schema.get("x-ui") or {}).get("context") or []
    return [item for item in items if isinstance(item, dict) and item.get("kind", "data") in KINDS]


def prefill_paths(schema: dict) -> dict[str, str]:
    declared = (schema.get("x-ui") or {}).get("prefill") or {}
    return {name: path for name, path in declared.items()
            if isinstance(path, str) and name in (schema.get("properties") or {})} if isinstance(declared, dict) else {}


def value_at(data: Any, path: str) -> Any:
    """The value at a dotted path (`action.updates`), MISSING where any part is absent."""
    current = data
    for part in path.split("."):
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return MISSING
    return current


# ----- the task's data --------------------------------------------------------------------------

def task_data(db: Session, task: HumanTask) -> dict:
    from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine

    row = db.get(WorkflowInstance, task.instance_id)
    case = db.get(Case, task.case_id)
    workflow = compiled(db, case.process_version_id).serializer.loads(row.state, PythonScriptEngine())
    spiff_task = workflow.get_task_from_id(UUID(task.id))
    return spiff_task.data if spiff_task is not None else {}


def _readable(path: str, withheld: set[str]) -> bool:
    return path.split(".", 1)[0] not in withheld


# ----- prefill ------------------------------------------------------------------------------------

def task_prefill(db: Session, task: HumanTask, schema: dict, user=None, *, data: dict | None = None) -> dict | None:
    """The values a new form starts with, or None when the form declares none. `data`: the task's
    data when the caller has it already (loading it deserialises the workflow)."""
    paths = prefill_paths(schema)
    if not paths:
        return None
    case = db.get(Case, task.case_id)
    withheld = policy.withheld_task_data(user, case)
    data = task_data(db, task) if data is None else data
    values = {}
    for name, path in paths.items():
        found = value_at(data, path) if _readable(path, withheld) else MISSING
        if found is not MISSING and found is not None:
            values[name] = _fit(copy.deepcopy(found), schema["properties"][name])
    return values


def _fit(value: Any, schema: dict) -> Any:
    """Keep only what the target field can hold: an object's known members, recursively."""
    if isinstance(value, dict) and isinstance(schema.get("properties"), dict):
        return {k: _fit(v, schema["properties"][k]) for k, v in value.items() if k in schema["properties"]}
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [_fit(v, schema["items"]) for v in value]
    return value


# ----- context ------------------------------------------------------------------------------------

def task_context(db: Session, task: HumanTask, schema: dict, user=None, *, today: date | None = None,
                 data: dict | None = None) -> list[dict]:
    """What the form declares beside it, each item ready to show: `{kind, title, ...}`.
    `user` is the person looking (None: no restriction, for the command line); `data` as for
    `task_prefill`."""
    wanted = context_items(schema)
    if not wanted:
        return []
    case = db.get(Case, task.case_id)
    withheld = policy.withheld_task_data(user, case)
    own_agency = policy.only_agency(user)
    data = task_data(db, task) if data is None else data
    names = dict(db.execute(select(Agency.code, Agency.name)).all())
    shown = []
    for item in wanted:
        kind = item.get("kind", "data")
        entry = {"kind": kind, "title": str(item.get("title") or item.get("key") or kind)}
        if kind == "data":
            path = str(item.get("key", ""))
            value = value_at(data, path) if _readable(path, withheld) else MISSING
            entry["value"] = _present(value, item, names, own_agency)
        elif kind == "threshold":
            entry["threshold"] = threshold_view(db, case, data, str(item.get("result", "")))
        elif kind == "timeline":
            entry["history"] = case_history(db, case, user)
        elif kind == "actions":
            entry["actions"] = action_plan(db, case, names, own_agency, today)
        elif kind == "facts":
            entry["rows"] = _facts(db, case, data, item.get("rows") or [], withheld, names)
        shown.append(entry)
    return shown


def _present(value: Any, item: dict, names: dict[str, str], own_agency: str | None) -> Any:
    """The value as the page shows it: members chosen and labelled, agency codes as names,
    list entries headed; a partner sees only entries headed by their own agency."""
    if value is MISSING:
        return None
    labels = item.get("labels") if isinstance(item.get("labels"), dict) else {}
    show = item.get("show") if isinstance(item.get("show"), list) else None
    heading = item.get("heading") if isinstance(item.get("heading"), str) else None
    agency_members = set(item.get("agencies") or []) | ({heading} if heading else set())
    value_words = item.get("words") if isinstance(item.get("words"), dict) else {}

    def member_rows(mapping: dict) -> list[dict]:
        keys = [k for k in show if k in mapping] if show else [k for k in mapping if k != heading]
        return [{"label": str(labels.get(k) or k.replace("_", " ").capitalize()),
                 "value": shape(mapping[k], k in agency_members)} for k in keys]

    def shape(v: Any, is_agency: bool = False) -> Any:
        if isinstance(v, dict):
            return {"rows": member_rows(v)}
        if isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            columns = [k for k in (show or []) if any(k in x for x in v)] or list(dict.fromkeys(k for x in v for k in x))
            return {"columns": [str(labels.get(k) or k.replace("_", " ").capitalize()) for k in columns],
                    "table": [[shape(x.get(k), k in agency_members) for k in columns] for x in v]}
        if isinstance(v, list):
            return [shape(x, is_agency) for x in v]
        if is_agency and isinstance(v, str):
            return names.get(v, v)
        if isinstance(v, str) and v in value_words:
            return value_words[v]
        return v

    if isinstance(value, list) and value and all(isinstance(x, dict) for x in value):
        if own_agency is not None and heading:  # another agency's entry is not for a partner's eyes
            value = [x for x in value if x.get(heading) not in names or x.get(heading) == own_agency]
        return {"cards": [{"heading": shape(x.get(heading), True) if heading and x.get(heading) else None,
                           "rows": member_rows(x)} for x in value]}
    return shape(value)


def _facts(db: Session, case: Case, data: dict, rows: list, withheld: set[str], names: dict) -> list[dict]:
    shown = []
    for row in rows:
        if not isinstance(row, dict):
            continue
        value: Any = None
        if isinstance(row.get("key"), str):
            found = value_at(data, row["key"]) if _readable(row["key"], withheld) else MISSING
            value = None if found is MISSING else found
        elif row.get("case") in CASE_FACTS:
            value = _case_fact(db, case, row["case"])
        elif row.get("letter"):
            templates = row["letter"] if isinstance(row["letter"], list) else [row["letter"]]
            written = db.scalar(select(OutboxMessage.created_at).where(
                OutboxMessage.case_id == case.id, OutboxMessage.template.in_([str(t) for t in templates]))
                .order_by(OutboxMessage.id).limit(1))
            value = written.date().isoformat() if written else None
        shown.append({"label": str(row.get("label") or ""), "value": value})
    return shown


def _case_fact(db: Session, case: Case, fact: str) -> Any:
    if fact == "handled_by":
        return handled_by(db, case)
    value = getattr(case, fact)
    return value.isoformat() if isinstance(value, date) else value


def handled_by(db: Session, case: Case) -> list[str]:
    """The staff who did the case's work (completed its tasks), first to last, by name and role."""
    emails = list(dict.fromkeys(db.scalars(select(AuditEvent.actor).where(
        AuditEvent.case_id == case.id, AuditEvent.event == "task_completed").order_by(AuditEvent.id))))
    users = {u.email: u for u in db.scalars(select(User).where(User.email.in_(emails)))} if emails else {}
    people = []
    for email in emails:
        user = users.get(email)
        if user is None:
            continue  # the applicant, or the system
        role = f"{user.role}, {user.agency}" if user.agency else user.role
        people.append(f"{user.name} ({role})")
    return people


def case_history(db: Session, case: Case, user=None) -> list[dict]:
    """The case's history as the case page's Timeline shows it to this user (None: all of it)."""
    from .queries import case_view

    history = case_view(db, case.reference)["history"]
    return history if user is None else policy.visible_history(user, history)


def action_plan(db: Session, case: Case, names: dict[str, str], own_agency: str | None,
                today: date | None) -> list[dict]:
    query = select(Action).where(Action.case_id == case.id).order_by(Action.due, Action.id)
    if own_agency is not None:
        query = query.where(Action.agency == own_agency)
    return [{"description": a.description, "agency": names.get(a.agency, a.agency), "owner": a.owner,
             "due": a.due.isoformat() if a.due else None, "status": a.status, "last_note": a.last_note,
             "overdue": a.status == "overdue" or bool(today and a.due and a.due < today and a.status != "completed")}
            for a in db.scalars(query)]


def threshold_view(db: Session, case: Case, data: dict, result_path: str) -> dict | None:
    """The computed threshold, shaped as a recorded decision (`case_review.threshold`), so the
    case page and the task page explain it with the same partial."""
    from .runtime import threshold_details

    result = value_at(data, result_path) if result_path else MISSING
    if not isinstance(result, dict) or "threshold_incidents" not in data or "application_date" not in data:
        return None
    version = compiled(db, case.process_version_id)
    details = threshold_details(version, data)
    view = {"met": bool(result.get("met")), "computed_met": bool(result.get("met")),
            "reasons": list(result.get("reasons") or []), **details}
    return explained(view)


def explained(threshold: dict) -> dict:
    """A threshold decision with the sentences pages show: the rules it met, what it lacked."""
    return {**threshold, "rules_met": threshold_rules.rules_met(threshold),
            "shortfalls": threshold_rules.shortfalls(threshold)}
