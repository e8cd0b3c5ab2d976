"""The form editor: a draft's form field by field (label, hint, type, required, options, order),
adding and removing fields, the JSON itself for what the fields pages do not cover, and a
preview drawn by the task page's own renderer."""
from __future__ import annotations

import json

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from markupsafe import Markup

from engine.errors import Conflict, InvalidData
from engine.safexml import UnsafeXML
from engine.studio import save_file
from engine.studio.formcheck import load_form, ui_problems

from ..documents import FormFiles, staff_uploader
from ..formrender import render_fields
from ..tasks import SUBMIT_DEFAULT
from ..tasks import _choices as task_page_choices  # the preview offers exactly what the task page offers
from . import blueprint, conflict, load_draft, require_file, require_open, service, who
from .bpmnprops import DiagramProperties
from .formschema import (TYPES, EditRefused, add_field, dumps, edit_field, field_of, fields, remove_field, set_submit,
                         submit_text)

ANSWER_KEYS = ("title", "hint", "type", "required", "options", "position")


def _schema(draft, form: str) -> dict:
    text = require_file(draft, f"forms/{form}", ".json")
    try:
        schema = json.loads(text)
    except ValueError:
        schema = None
    if not isinstance(schema, dict):
        abort(409, f"forms/{form} is not a JSON object; correct it on the JSON page "
                   f"({url_for('studio.form_json', draft_id=draft.id, form=form)}).")
    return schema


def preview(schema: dict) -> Markup:
    """The form's fields exactly as the task page renders a new task: the same choices, and file
    fields with the same rules (no case, so no files yet)."""
    with service().sessions() as db:
        choices = task_page_choices(db)
    files = FormFiles(schema, 0, staff_uploader(current_user)).shown(None)
    return render_fields(schema, None, [], choices=choices, files=files)


def _used_by(draft, form: str) -> list[dict]:
    found = []
    for name in sorted(n for n in draft.files if n.endswith(".bpmn")):
        try:
            tasks = DiagramProperties(draft.files[name], name).user_tasks()
        except UnsafeXML:
            continue
        found += [{"task": t.name, "file": name} for t in tasks if t.form == form]
    return found


def _save(draft_id: int, form: str, schema: dict, message: str):
    try:
        save_file(service(), draft_id, f"forms/{form}", dumps(schema), by=who(), lock_version=_lock(request.form))
    except Conflict as error:
        return conflict(error.message)
    except InvalidData as error:
        raise EditRefused([{"field": "title", "message": e["message"]} for e in error.errors]) from None
    flash(message)
    return redirect(url_for("studio.form_editor", draft_id=draft_id, form=form))


def _lock(form) -> int | None:
    value = form.get("lock_version", "")
    return int(value) if value.isdigit() else None


def _form_page(current, form: str, schema: dict, *, submit: str, error: str | None = None, status: int = 200):
    return render_template("studio/form.html", title=f"Form {form}", draft=current, form=form, schema=schema,
                           fields=fields(schema), used_by=_used_by(current, form), preview=preview(schema),
                           submit=submit, submit_default=SUBMIT_DEFAULT, submit_error=error,
                           error_items=[{"text": error, "href": "#submit"}] if error else None), status


@blueprint.get("/drafts/<int:draft_id>/forms/<form>")
def form_editor(draft_id: int, form: str):
    current = load_draft(draft_id)
    schema = _schema(current, form)
    return _form_page(current, form, schema, submit=submit_text(schema))


@blueprint.post("/drafts/<int:draft_id>/forms/<form>/submit")
def form_submit_text(draft_id: int, form: str):
    """What the form's button says (x-ui.submit): what the task does, "Confirm the decision"."""
    current = load_draft(draft_id)
    schema = _schema(current, form)
    require_open(current)
    text = request.form.get("submit", "")
    try:
        changed = set_submit(schema, text)
        return _save(draft_id, form, changed, f"The button of forms/{form} now says "
                                              f"‘{submit_text(changed) or SUBMIT_DEFAULT}’.")
    except EditRefused as refused:
        return _form_page(current, form, schema, submit=text, error=refused.errors[0]["message"], status=422)


def _field_page(current, form: str, schema: dict, *, field=None, answers: dict, errors: list[dict],
                shown: dict, status: int = 200):
    by_field = {}
    for error in errors:
        by_field.setdefault(error["field"], error["message"])
    items = [{"text": e["message"], "href": f"#studio-field-{e['field']}"} for e in errors]
    heading = f"Change ‘{field.title}’" if field else "Add a field"
    return render_template("studio/field.html", title=heading, draft=current, form=form, field=field,
                           answers=answers, errors=by_field, error_items=items or None, types=TYPES,
                           count=len(fields(schema)) + (0 if field else 1), preview=preview(shown),
                           preview_submit=submit_text(shown) or SUBMIT_DEFAULT), status


@blueprint.route("/drafts/<int:draft_id>/forms/<form>/fields/<field_name>", methods=["GET", "POST"])
def form_field(draft_id: int, form: str, field_name: str):
    current = load_draft(draft_id)
    schema = _schema(current, form)
    try:
        field = field_of(schema, field_name)
    except KeyError:
        abort(404, f"forms/{form} has no field {field_name}.")
    answers = {"title": field.title, "hint": field.hint, "type": field.type or "", "position": str(field.position),
               "required": "yes" if field.required else "no", "options": field.options_text}
    if request.method == "GET":
        return _field_page(current, form, schema, field=field, answers=answers, errors=[], shown=schema)
    require_open(current)
    answers = {key: request.form.get(key, "") for key in ANSWER_KEYS}
    try:
        changed = edit_field(schema, field_name, answers)
        if request.form.get("action") == "preview":
            return _field_page(current, form, schema, field=field, answers=answers, errors=[], shown=changed)
        return _save(draft_id, form, changed, f"‘{answers['title'].strip()}’ saved in forms/{form}.")
    except EditRefused as refused:
        return _field_page(current, form, schema, field=field, answers=answers, errors=refused.errors,
                           shown=schema, status=422)


@blueprint.route("/drafts/<int:draft_id>/forms/<form>/add", methods=["GET", "POST"])
def form_add_field(draft_id: int, form: str):
    current = load_draft(draft_id)
    schema = _schema(current, form)
    answers = {"title": "", "hint": "", "type": "text", "required": "no", "options": "", "name": "",
               "position": str(len(fields(schema)) + 1)}
    if request.method == "GET":
        return _field_page(current, form, schema, answers=answers, errors=[], shown=schema)
    require_open(current)
    answers = {key: request.form.get(key, "") for key in (*ANSWER_KEYS, "name")}
    try:
        changed, name = add_field(schema, answers)
        if request.form.get("action") == "preview":
            return _field_page(current, form, schema, answers=answers, errors=[], shown=changed)
        return _save(draft_id, form, changed, f"Field ‘{answers['title'].strip()}’ ({name}) added to forms/{form}.")
    except EditRefused as refused:
        return _field_page(current, form, schema, answers=answers, errors=refused.errors, shown=schema, status=422)


@blueprint.route("/drafts/<int:draft_id>/forms/<form>/fields/<field_name>/remove", methods=["GET", "POST"])
def form_remove_field(draft_id: int, form: str, field_name: str):
    current = load_draft(draft_id)
    schema = _schema(current, form)
    try:
        field = field_of(schema, field_name)
    except KeyError:
        abort(404, f"forms/{form} has no field {field_name}.")
    error = None
    if request.method == "POST":
        require_open(current)
        try:
            return _save(draft_id, form, remove_field(schema, field_name),
                         f"Field ‘{field.title}’ removed from forms/{form}.")
        except EditRefused as refused:
            error = refused.errors[0]["message"]
    return render_template("studio/field_remove.html", title=f"Remove ‘{field.title}’", draft=current, form=form,
                           field=field, error=error,
                           error_items=[{"text": error, "href": "#remove"}] if error else None), \
        422 if error else 200


@blueprint.route("/drafts/<int:draft_id>/forms/<form>/json", methods=["GET", "POST"])
def form_json(draft_id: int, form: str):
    """The schema as JSON, for what the field pages do not cover (conditions, lists, limits)."""
    current = load_draft(draft_id)
    name = f"forms/{form}"
    text = require_file(current, name, ".json")
    errors: list[str] = []
    if request.method == "POST":
        require_open(current)
        text = request.form.get("text", "").replace("\r\n", "\n")
        schema, problems = load_form(name, text)
        if schema is not None:
            problems += ui_problems(name, schema)
        errors = [p.message if not p.element else f"{p.element}: {p.message}" for p in problems]
        if not errors:
            try:
                return _save(draft_id, form, schema, f"forms/{form} saved.")
            except EditRefused as refused:
                errors = [e["message"] for e in refused.errors]
    items = [{"text": message, "href": "#form-json"} for message in errors]
    return render_template("studio/form_json.html", title=f"JSON of {form}", draft=current, form=form, text=text,
                           error=errors[0] if errors else None, error_items=items or None), 422 if errors else 200
