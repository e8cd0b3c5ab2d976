"""Task and timer properties without XML: who does a user task (its lane), its form, its agency
rule and its due date; how long a timer waits. Plain forms that work without JavaScript; each
save rewrites the diagram's XML (bpmnprops.py) and stores it in the draft."""
from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from sqlalchemy import select

from engine.errors import Conflict, InvalidData
from engine.models import Agency
from engine.safexml import UnsafeXML
from engine.studio import save_file

from . import blueprint, conflict, load_draft, require_file, require_open, service, who
from .bpmnprops import (AGENCY_WORDS, DUE_FROM_WORDS, MAX_DAYS, DiagramProperties, DueRule, Period,
                        PropertyError, fixed_agency)

MAX_DUE_DAYS = 250  # about a year of working days, either way


def _diagram(draft, name: str) -> DiagramProperties:
    text = require_file(draft, name, ".bpmn")
    try:
        return DiagramProperties(text, name)
    except UnsafeXML as error:
        abort(409, f"{name} cannot be read ({error}); fix it in the diagram editor first.")


def _agencies() -> list[tuple[str, str]]:
    with service().sessions() as db:
        return [(code, name) for code, name in db.execute(select(Agency.code, Agency.name).order_by(Agency.name))]


def _all_tasks(draft):
    for name in sorted(n for n in draft.files if n.endswith(".bpmn")):
        try:
            yield from DiagramProperties(draft.files[name], name).user_tasks()
        except UnsafeXML:
            continue


def agency_words(rule: str | None, agencies: dict[str, str]) -> str:
    if not rule:
        return "None"
    code = fixed_agency(rule)
    if code:
        return f"Always {agencies.get(code, code)}"
    return AGENCY_WORDS.get(rule, rule)


def due_words(task) -> str:
    if not task.due_date:
        return "No due date"
    rule = task.due_rule
    if rule is None:
        return task.due_date
    days, after = abs(rule.days), "after" if rule.days >= 0 else "before"
    unit = "working day" if days == 1 else "working days"
    return f"{days} {unit} {after} {DUE_FROM_WORDS.get(rule.start, rule.start)}"


@blueprint.get("/drafts/<int:draft_id>/properties/<path:name>")
def properties(draft_id: int, name: str):
    current = load_draft(draft_id)
    diagram = _diagram(current, name)
    agencies = dict(_agencies())
    tasks = [{"task": t, "agency": agency_words(t.agency, agencies), "due": due_words(t)}
             for t in diagram.user_tasks()]
    return render_template("studio/properties.html", title=f"Tasks and timers in {name.rsplit('/', 1)[-1]}",
                           draft=current, name=name, tasks=tasks, timers=diagram.timers())


# ----- user tasks -----------------------------------------------------------------------------
def _task_choices(draft, diagram: DiagramProperties, task) -> dict:
    forms = sorted(n.removeprefix("forms/") for n in draft.files if n.startswith("forms/"))
    if task.form and task.form not in forms:
        forms.append(task.form)  # shown so the page says what is set, even if missing
    agencies = _agencies()
    rules_in_use = {t.agency for t in _all_tasks(draft) if t.agency and not fixed_agency(t.agency)}
    agency_rules = [("", "No agency (a task outside the partner lane)")]
    for rule, words in AGENCY_WORDS.items():
        if rule == task.agency or (rule in rules_in_use and (rule != "item" or task.multi_instance)):
            agency_rules.append((rule, words))
    agency_rules += [(f'"{code}"', f"Always {agency}") for code, agency in agencies]
    if task.agency and task.agency not in {value for value, _ in agency_rules}:
        agency_rules.append((task.agency, f"Keep the current rule: {task.agency}"))
    starts = ["today()"] + sorted({t.due_rule.start for t in _all_tasks(draft) if t.due_rule} - {"today()"})
    return {"forms": forms, "lanes": diagram.lane_names(task.process), "agency_rules": agency_rules,
            "starts": [(s, f"{_capital(DUE_FROM_WORDS[s])} ({s})" if s in DUE_FROM_WORDS else s) for s in starts]}


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _task_answers(task) -> dict:
    rule = task.due_rule
    return {"form": task.form or "", "lane": task.lane or "", "agency": task.agency or "",
            "due": "none" if not task.due_date else "working" if rule else "keep",
            "due_from": rule.start if rule else "received_on", "due_days": str(rule.days) if rule else ""}


def _task_errors(answers: dict, choices: dict, task) -> dict[str, str]:
    errors = {}
    if answers["form"] not in choices["forms"]:
        errors["form"] = "Choose the form people fill in for this task"
    if choices["lanes"] and answers["lane"] not in choices["lanes"]:
        errors["lane"] = "Choose who does this task"
    if answers["agency"] not in {value for value, _ in choices["agency_rules"]}:
        errors["agency"] = "Choose which agency does this task"
    elif answers["lane"] == "partner" and not answers["agency"]:
        errors["agency"] = "A task in the partner lane needs an agency: choose which agency does it"
    if answers["due"] not in ("none", "working") + (("keep",) if task.due_date and not task.due_rule else ()):
        errors["due"] = "Choose when the task is due"
    elif answers["due"] == "working":
        if answers["due_from"] not in {value for value, _ in choices["starts"]}:
            errors["due_from"] = "Choose the date the working days count from"
        text = answers["due_days"].strip().replace("\u2212", "-")
        if not text.lstrip("-").isdigit() or not -MAX_DUE_DAYS <= int(text) <= MAX_DUE_DAYS:
            errors["due_days"] = (f"Enter the number of working days as a whole number from -{MAX_DUE_DAYS} "
                                  f"to {MAX_DUE_DAYS}")
    return errors


@blueprint.route("/drafts/<int:draft_id>/task/<element_id>/<path:name>", methods=["GET", "POST"])
def task_properties(draft_id: int, element_id: str, name: str):
    current = load_draft(draft_id)
    diagram = _diagram(current, name)
    try:
        task = diagram.user_task(element_id)
    except PropertyError as error:
        abort(404, str(error))
    choices = _task_choices(current, diagram, task)
    answers, errors = _task_answers(task), {}
    if request.method == "POST":
        require_open(current)
        answers = {key: (request.form.get(key) or "").strip() for key in answers}
        errors = _task_errors(answers, choices, task)
        if not errors:
            diagram.set_property(element_id, "formJsonSchemaFilename", answers["form"])
            diagram.set_property(element_id, "agency", answers["agency"] or None)
            if answers["due"] == "none":
                diagram.set_property(element_id, "dueDate", None)
            elif answers["due"] == "working":
                days = int(answers["due_days"].replace("\u2212", "-"))
                diagram.set_property(element_id, "dueDate", DueRule(answers["due_from"], days).expression())
            if choices["lanes"]:
                diagram.move_to_lane(element_id, answers["lane"])
            saved = _save(current, name, diagram, f"‘{task.name}’ saved in draft {draft_id}.")
            if saved is not None:
                return saved
            errors["form"] = "The diagram could not be saved"
    items = [{"text": message, "href": f"#task-{field}"} for field, message in errors.items()]
    return render_template("studio/task_properties.html", title=f"Properties of ‘{task.name}’", draft=current,
                           name=name, task=task, choices=choices, answers=answers, errors=errors,
                           error_items=items or None), 422 if errors else 200


def _save(draft, name: str, diagram: DiagramProperties, message: str):
    """Store the rewritten diagram (unless nothing changed); None if the draft refused it."""
    text = diagram.text()
    if text == draft.files[name]:
        flash("Nothing changed.")
    else:
        try:
            save_file(service(), draft.id, name, text, by=who(), lock_version=_lock(request.form))
        except Conflict as error:
            return conflict(error.message)
        except InvalidData:
            return None
        flash(message)
    return redirect(url_for("studio.properties", draft_id=draft.id, name=name))


def _lock(form) -> int | None:
    value = form.get("lock_version", "")
    return int(value) if value.isdigit() else None


# ----- timers ---------------------------------------------------------------------------------
@blueprint.route("/drafts/<int:draft_id>/timer/<element_id>/<path:name>", methods=["GET", "POST"])
def timer_properties(draft_id: int, element_id: str, name: str):
    current = load_draft(draft_id)
    diagram = _diagram(current, name)
    try:
        timer = diagram.timer(element_id)
    except PropertyError as error:
        abort(404, str(error))
    if timer.kind not in ("timeDate", "timeDuration"):
        abort(409, "A repeating (cycle) timer is changed in the diagram editor.")
    period = timer.period
    answers = {"unit": period.unit if period else "keep", "days": str(period.days) if period else ""}
    errors = {}
    if request.method == "POST":
        require_open(current)
        answers = {key: (request.form.get(key) or "").strip() for key in answers}
        if answers["unit"] not in ("working", "calendar") + (("keep",) if period is None else ()):
            errors["unit"] = "Choose how the timer counts its days"
        elif answers["unit"] != "keep" and (not answers["days"].isdigit()
                                            or not 1 <= int(answers["days"]) <= MAX_DAYS):
            errors["days"] = f"Enter the number of days as a whole number from 1 to {MAX_DAYS}"
        if not errors:
            if answers["unit"] == "keep":
                return redirect(url_for("studio.properties", draft_id=draft_id, name=name))
            chosen = Period(int(answers["days"]), answers["unit"])
            diagram.set_timer(element_id, chosen)
            saved = _save(current, name, diagram, f"‘{timer.name}’ now waits {chosen.words()} (draft {draft_id}).")
            if saved is not None:
                return saved
            errors["days"] = "The diagram could not be saved"
    items = [{"text": message, "href": f"#timer-{field}"} for field, message in errors.items()]
    return render_template("studio/timer_properties.html", title=f"Timer ‘{timer.name}’", draft=current, name=name,
                           timer=timer, answers=answers, errors=errors, max_days=MAX_DAYS,
                           error_items=items or None), 422 if errors else 200
