"""A draft: its files, the diagram and decision table modelers (and the XML they save), letters,
the check, what changed, and publishing."""
from __future__ import annotations

import base64
import hashlib
import json
from collections import OrderedDict

from flask import flash, jsonify, make_response, redirect, render_template, request, url_for

from engine.errors import Conflict, InvalidData
from engine.letters import check_template
from engine.safexml import UnsafeXML, parse_xml
from engine.studio import BundleInvalid, diff_versions, get_version, publish_draft, save_file, validate_draft
from engine.studio.bpmnmodel import BPMN, DMN_NAMESPACES
from engine.studio.bundles import MAX_FILE_BYTES

from .. import CONTENT_SECURITY_POLICY
from . import blueprint, conflict, load_draft, require_file, require_open, service, who
from .bpmnprops import processes_in

KINDS = OrderedDict([
    ("diagrams", ("Diagrams", lambda n: n.endswith(".bpmn"))),
    ("tables", ("Decision tables", lambda n: n.endswith(".dmn"))),
    ("forms", ("Forms", lambda n: n.startswith("forms/"))),
    ("letters", ("Letters", lambda n: n.startswith("processes/letters/"))),
])
MAX_NOTE = 2000
# dmn-js 17 writes its "powered by bpmn.io" link from an HTML string carrying these two style
# attributes, which `style-src 'self'` blocks. The decision table page allows exactly these two
# values, by hash ('unsafe-hashes' lets a hash match an attribute); nothing else inline.
DMN_INLINE_STYLES = ("position: absolute; bottom: 15px; right: 15px; z-index: 100;", "vertical-align:middle")
DMN_STYLE_HASHES = " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'"
                            for s in DMN_INLINE_STYLES)


def _base_files(draft) -> dict[str, str]:
    with service().sessions() as db:
        return dict(get_version(db, draft.based_on_version, draft.bundle).files) \
            if draft.based_on_version is not None else {}


def _form_title(text: str) -> str | None:
    try:
        schema = json.loads(text)
    except ValueError:
        return None
    return schema.get("title") if isinstance(schema, dict) else None


@blueprint.get("/drafts/<int:draft_id>")
def draft(draft_id: int):
    current = load_draft(draft_id)
    changed = diff_versions(_base_files(current), current.files)["files"]
    status = {**{n: "New" for n in changed["added"]}, **{n: "Changed" for n in changed["changed"]}}
    processes: dict[str, list[str]] = {}
    for process in processes_in(current.files):
        processes.setdefault(process["file"], []).append(process["name"])
    groups = []
    for key, (heading, belongs) in KINDS.items():
        names = sorted(n for n in current.files if belongs(n))
        groups.append({"key": key, "heading": heading, "files": [
            {"name": n, "status": status.get(n), "processes": processes.get(n, []),
             "title": _form_title(current.files[n]) if key == "forms" else None,
             "short": n.rsplit("/", 1)[-1]} for n in names]})
    return render_template("studio/draft.html", title=f"Draft {current.id}", draft=current, groups=groups,
                           removed=changed["removed"])


# ----- the modelers -------------------------------------------------------------------------
@blueprint.get("/drafts/<int:draft_id>/model/<path:name>")
def modeler(draft_id: int, name: str):
    current = load_draft(draft_id)
    require_file(current, name, ".bpmn", ".dmn")
    kind = "bpmn" if name.endswith(".bpmn") else "dmn"
    response = make_response(render_template(
        "studio/modeler.html", title=f"{name.rsplit('/', 1)[-1]} – draft {current.id}", draft=current, name=name,
        kind=kind, element=request.args.get("element", "")))
    if kind == "dmn":
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY.replace(
            "style-src 'self';", f"style-src 'self'; style-src-attr 'unsafe-hashes' {DMN_STYLE_HASHES};")
    return response


@blueprint.get("/drafts/<int:draft_id>/files/<path:name>")
def file_text(draft_id: int, name: str):
    current = load_draft(draft_id)
    text = require_file(current, name)
    response = make_response(text)
    response.mimetype = "application/json" if name.endswith(".json") else \
        "text/plain" if name.endswith(".txt") else "application/xml"
    response.headers["Cache-Control"] = "no-store"
    return response


def _xml_problem(name: str, text: str) -> str | None:
    """Why the XML a modeler sent cannot be saved, or None. Parsed safely (no DTD, no entities)."""
    if len(text.encode("utf-8")) > MAX_FILE_BYTES:
        return f"The file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB."
    try:
        root = parse_xml(text, name)
    except UnsafeXML as error:
        return str(error)
    namespaces = (BPMN,) if name.endswith(".bpmn") else DMN_NAMESPACES
    tag = root.tag if isinstance(root.tag, str) else ""
    if not any(tag == f"{{{ns}}}definitions" for ns in namespaces):
        kind = "BPMN" if name.endswith(".bpmn") else "DMN"
        return f"{name} must be a {kind} document (its root element is <definitions>)."
    return None


@blueprint.post("/drafts/<int:draft_id>/files/<path:name>")
def save_xml(draft_id: int, name: str):
    """What the modelers post: {"text": XML, "lock_version": n}. Saved to the draft only; nothing
    runs until the draft is checked and published."""
    current = load_draft(draft_id)
    if current.published_as is not None:
        return jsonify(error=f"Draft {draft_id} was published as version {current.published_as}; "
                             "start a new draft."), 409
    require_file(current, name, ".bpmn", ".dmn")
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("text"), str) \
            or not isinstance(body.get("lock_version"), int):
        return jsonify(error="Send JSON with the file's text and the lock_version you read."), 400
    problem = _xml_problem(name, body["text"])
    if problem:
        return jsonify(error=f"Not saved: {problem}"), 422
    try:
        saved = save_file(service(), draft_id, name, body["text"], by=who(), lock_version=body["lock_version"])
    except Conflict as error:
        return jsonify(error=f"Not saved: {error.message}"), 409
    except InvalidData as error:
        return jsonify(error="Not saved: " + "; ".join(e["message"] for e in error.errors)), 422
    return jsonify(saved=True, lock_version=saved.lock_version,
                   message=f"Saved {name} to draft {draft_id}. Nothing changes for cases until the draft is "
                           "checked and published.")


# ----- letters ------------------------------------------------------------------------------
@blueprint.route("/drafts/<int:draft_id>/letters/<letter>", methods=["GET", "POST"])
def letter(draft_id: int, letter: str):
    current = load_draft(draft_id)
    name = f"processes/letters/{letter}"
    text = require_file(current, name)
    errors = {}
    if request.method == "POST":
        require_open(current)
        text = request.form.get("text", "").replace("\r\n", "\n")
        if not text.strip():
            errors["text"] = "Enter the letter: a Subject: line, a blank line, then the text"
        elif (problem := check_template(text)) is not None:
            errors["text"] = f"The letter's template does not work: {problem}"
        if not errors:
            try:
                save_file(service(), draft_id, name, text, by=who(), lock_version=_lock(request.form))
            except Conflict as error:
                return conflict(error.message)
            except InvalidData as error:
                errors["text"] = "; ".join(e["message"] for e in error.errors)
        if not errors:
            flash(f"Letter {letter} saved to draft {draft_id}.")
            return redirect(url_for("studio.draft", draft_id=draft_id))
    items = [{"text": message, "href": "#letter-text"} for message in errors.values()]
    return render_template("studio/letter.html", title=f"Letter {letter}", draft=current, letter=letter, text=text,
                           errors=errors, error_items=items or None), 422 if errors else 200


def _lock(form) -> int | None:
    value = form.get("lock_version", "")
    return int(value) if value.isdigit() else None


# ----- check, changes, publish --------------------------------------------------------------
def problem_link(draft_id: int, problem) -> dict | None:
    """Where the owner can fix a problem: the element in its modeler, the form, the letter."""
    file, element = problem.file or "", problem.element
    if file.endswith(".bpmn") or file.endswith(".dmn"):
        query = f"?element={element}" if element else ""
        what = f"Show {element} in the diagram" if file.endswith(".bpmn") else "Open the decision table"
        return {"href": url_for("studio.modeler", draft_id=draft_id, name=file) + query,
                "text": what if element or file.endswith(".dmn") else "Open the diagram"}
    if file.startswith("forms/"):
        return {"href": url_for("studio.form_editor", draft_id=draft_id, form=file.rsplit("/", 1)[-1]),
                "text": "Open the form editor"}
    if file.startswith("processes/letters/"):
        return {"href": url_for("studio.letter", draft_id=draft_id, letter=file.rsplit("/", 1)[-1]),
                "text": "Open the letter"}
    return None


def grouped_problems(draft_id: int, problems) -> list[dict]:
    groups: dict[str, list] = {}
    for problem in problems:
        groups.setdefault(problem.file or "(the bundle as a whole)", []).append(
            {"problem": problem, "link": problem_link(draft_id, problem)})
    return [{"file": file, "problems": items} for file, items in groups.items()]


@blueprint.get("/drafts/<int:draft_id>/check")
def check(draft_id: int):
    current = load_draft(draft_id)
    problems = validate_draft(service(), draft_id)
    return render_template("studio/check.html", title=f"Check draft {draft_id}", draft=current,
                           groups=grouped_problems(draft_id, problems), count=len(problems))


@blueprint.get("/drafts/<int:draft_id>/changes")
def changes(draft_id: int):
    current = load_draft(draft_id)
    diff = diff_versions(_base_files(current), current.files)
    return render_template("studio/changes.html", title=f"What draft {draft_id} changes", draft=current, diff=diff,
                           before=f"version {current.based_on_version}", after=f"draft {draft_id}")


@blueprint.route("/drafts/<int:draft_id>/publish", methods=["GET", "POST"])
def publish(draft_id: int):
    current = load_draft(draft_id)
    require_open(current)
    note, error, groups, status = "", None, [], 200
    if request.method == "POST":
        note = request.form.get("note", "").strip()
        if not note:
            error = "Enter a note saying what changed and why"
        elif len(note) > MAX_NOTE:
            error = f"The note must be {MAX_NOTE} characters or fewer"
        else:
            try:
                version, created = publish_draft(service(), draft_id, note=note, by=who())
            except BundleInvalid as refused:
                groups = grouped_problems(draft_id, refused.problems)
                error = f"The draft was not published: {len(refused.problems)} problem(s) need fixing first"
            except Conflict as refused:
                return conflict(refused.message)
            else:
                flash(f"Version {version.number} is published. New cases start on it; running cases stay on "
                      "their version until you move them." if created else
                      f"The draft holds exactly the files of version {version.number}, so nothing new was "
                      "published.")
                return redirect(url_for("studio.versions"))
        status = 422
    items = [{"text": error, "href": "#publish-note"}] if error else None
    return render_template("studio/publish.html", title=f"Publish draft {draft_id}", draft=current, note=note,
                           error=error, error_items=items, groups=groups), status
