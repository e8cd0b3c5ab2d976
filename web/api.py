"""JSON API /api/v1: the same commands and read models as the pages, behind bearer tokens."""
from __future__ import annotations

from functools import wraps

from flask import Blueprint, current_app, g, jsonify, request
from sqlalchemy import select
from werkzeug.exceptions import RequestEntityTooLarge

from engine import audit, policy
from engine.documents import DOCX, add_document, max_bytes
from engine.inputs import parse_json
from engine.errors import CaseReviewError, InvalidData, NotAllowed, NotFound, TaskNotReady
from engine.models import Case, HumanTask
from engine.queries import case_view, ready_tasks, task_view

from .auth import SignedInUser

blueprint = Blueprint("api", __name__, url_prefix="/api/v1")


def _service():
    return current_app.extensions["casereview"]


def problem(status: int, message: str, **extra):
    return jsonify({"error": message, **extra}), status


def token_required(view):
    @wraps(view)
    def guarded(*args, **kwargs):
        header = request.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            return problem(401, "send a bearer token: Authorization: Bearer <token>")
        from engine.tokens import user_for_token

        with _service().sessions() as db:
            user = user_for_token(db, value.strip())
            if user is None:
                return problem(401, "the token is not valid or has been revoked")
            g.api_user = SignedInUser.of(user)
        return view(*args, **kwargs)

    return guarded


def _json_body():
    if not request.is_json:
        raise InvalidData([{"field": "(body)", "message": "send a JSON object with Content-Type: application/json"}])
    return parse_json(request.get_data(), "The request body")  # depth, NUL and surrogates refused


@blueprint.errorhandler(CaseReviewError)
def domain_error(error: CaseReviewError):
    if isinstance(error, InvalidData):
        return problem(422, error.message, errors=error.errors)
    status = {NotAllowed: 403, TaskNotReady: 409, NotFound: 404}.get(type(error), 409)
    return problem(status, error.message)


@blueprint.errorhandler(RequestEntityTooLarge)
def too_large(_error):
    return problem(413, f"the request is too large: a file must be smaller than {_service().settings.upload_max_mb}MB")


@blueprint.post("/applications")
@token_required
def create_application():
    if g.api_user.role != "coordinator":
        return problem(403, "only coordinators may record applications")
    from engine.service import Actor

    result = _service().apply(_json_body(), Actor(g.api_user.email, g.api_user))
    return jsonify(result), 201


@blueprint.get("/tasks")
@token_required
def list_tasks():
    with _service().sessions() as db:
        return jsonify(ready_tasks(db, actor=g.api_user.actor))


def _visible_task(db, task_id: str) -> tuple[HumanTask, Case]:
    """As the task page: 404 where the case is not the caller's to see, 403 where the task is
    someone else's (a police token does not read a council task)."""
    task = db.get(HumanTask, task_id)
    case = db.get(Case, task.case_id) if task is not None else None
    if task is None or not policy.may_view_case(g.api_user, case):
        raise NotFound(f"there is no ready task {task_id} you can see")
    policy.require_may_complete(g.api_user.actor, task)
    return task, case


@blueprint.get("/tasks/<task_id>")
@token_required
def get_task(task_id: str):
    with _service().sessions() as db:
        task, case = _visible_task(db, task_id)
        return jsonify(task_view(db, task, case.reference))


@blueprint.post("/tasks/<task_id>/complete")
@token_required
def complete_task(task_id: str):
    data = _json_body()
    service = _service()
    with service.sessions() as db:
        task = db.get(HumanTask, task_id)
        if task is not None and not policy.may_view_case(g.api_user, db.get(Case, task.case_id)):
            raise NotFound(f"there is no ready task {task_id} you can see")
    return jsonify(service.complete(task_id, g.api_user.actor, data))


@blueprint.get("/cases/<reference>")
@token_required
def get_case(reference: str):
    service = _service()
    with service.transaction() as db:
        case = db.scalar(select(Case).where(Case.reference == reference))
        if case is None or not policy.may_view_case(g.api_user, case):
            raise NotFound(f"there is no case {reference} you can see")
        view = case_view(db, reference)
        audit.record(db, at=service.now(), actor=g.api_user.email, event="case_viewed", case_id=case.id,
                     stage_before=case.stage, stage_after=case.stage, detail={"via": "api"})
    if not policy.sees_personal_details(g.api_user):
        view["actions"] = [a for a in view["actions"] if a["agency"] == g.api_user.agency]
        view["letters"] = []
    view["history"] = policy.visible_history(g.api_user, view["history"])
    return jsonify(view)


@blueprint.post("/cases/<reference>/documents")
@token_required
def upload_document(reference: str):
    """One file (multipart field `file`) added to the case, for use in a task form's file field."""
    service = _service()
    with service.sessions() as db:
        case = db.scalar(select(Case).where(Case.reference == reference))
        if case is None or not policy.may_view_case(g.api_user, case):
            raise NotFound(f"there is no case {reference} you can see")
        ready = db.scalars(select(HumanTask).where(HumanTask.case_id == case.id)).all()
        if not policy.may_add_documents(g.api_user.actor, ready):
            raise NotAllowed(f"documents are added by whoever may complete one of the ready tasks of {reference}")
    upload = request.files.get("file")
    if upload is None:
        raise InvalidData([{"field": "file", "message": "Select a file"}], "No file was sent")
    limit = max_bytes(service.settings)
    with service.transaction() as db:
        case = db.get(Case, case.id)
        document = add_document(db, case, upload.filename, upload.read(limit + 1), uploaded_by=g.api_user.email,
                                agency=g.api_user.agency if g.api_user.role == "partner" else None,
                                now=service.now(), limit=limit)
        created = {"id": document.id, "filename": document.filename, "content_type": document.content_type,
                   "size": document.size}
    return jsonify(created), 201


@blueprint.get("/openapi.json")
def openapi():
    """The description with the published forms as the request schemas: an application is
    checked against the latest version's application form, a completion against its task forms."""
    from copy import deepcopy

    from engine.service import APPLICATION_FORM

    service = _service()
    with service.sessions() as db:
        forms = service.version_for_new_case(db).forms
    description = deepcopy(OPENAPI)
    schemas = description["components"].setdefault("schemas", {})
    for name, form in sorted(forms.items()):
        schemas[_component_name(name)] = {k: v for k, v in form.items() if k != "$schema"}
    paths = description["paths"]
    paths["/applications"]["post"]["requestBody"]["content"]["application/json"]["schema"] = {
        "$ref": f"#/components/schemas/{_component_name(APPLICATION_FORM)}"}
    paths["/tasks/{id}/complete"]["post"]["requestBody"]["content"]["application/json"]["schema"] = {
        "description": "the data of the task's own form (its schema is in GET /tasks/{id}); one of these",
        "anyOf": [{"$ref": f"#/components/schemas/{_component_name(name)}"}
                  for name in sorted(forms) if name != APPLICATION_FORM]}
    return jsonify(description)


def _component_name(form_file: str) -> str:
    return form_file.removesuffix(".json")


_error = {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}
_field_errors = {"type": "object", "properties": {
    "error": {"type": "string"},
    "errors": {"type": "array", "items": {"type": "object", "properties": {
        "field": {"type": "string"}, "message": {"type": "string"}}, "required": ["field", "message"]}}},
    "required": ["error", "errors"]}
_task = {"type": "object", "required": ["id", "case", "name", "title", "role", "agency", "due", "schema"], "properties": {
    "id": {"type": "string"}, "case": {"type": "string"}, "name": {"type": "string"}, "title": {"type": "string"},
    "role": {"enum": ["coordinator", "partner", "chair", "reviewer", "applicant", "victim"]},
    "agency": {"type": ["string", "null"]}, "due": {"type": ["string", "null"], "format": "date"},
    "schema": {"type": "object", "description": "the task form's JSON Schema (2020-12)"}}}


def _responses(ok: dict, *codes: int) -> dict:
    described = {
        400: ("Text or a number in the request that cannot be stored (a NUL character, an unpaired surrogate)", _error),
        401: ("No or bad bearer token", _error), 403: ("Not allowed for this user", _error),
        404: ("Not found or not visible to this user", _error), 409: ("No longer ready", _error),
        413: ("The request is too large", _error), 422: ("Data does not match the form", _field_errors),
    }
    out = {str(k): v for k, v in ok.items()}
    for code in (400, *codes):
        text, schema = described[code]
        out[str(code)] = {"description": text, "content": {"application/json": {"schema": schema}}}
    return out


OPENAPI = {
    "openapi": "3.1.0",
    "info": {"title": "ASB case review API", "version": "1.0.0",
             "description": "Tasks, applications and cases. Authenticate with `Authorization: Bearer <token>` "
                            "(tokens from `casereview token create --user EMAIL`)."},
    "servers": [{"url": "/api/v1"}],
    "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    "security": [{"bearer": []}],
    "paths": {
        "/applications": {"post": {
            "summary": "Record an application (coordinators)", "operationId": "createApplication",
            "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}},
            "responses": _responses({201: {"description": "Case created", "content": {"application/json": {"schema": {
                "type": "object", "properties": {"reference": {"type": "string"}}, "required": ["reference"]}}}}},
                401, 403, 422)}},
        "/tasks": {"get": {
            "summary": "Ready tasks the caller may complete", "operationId": "listTasks",
            "responses": _responses({200: {"description": "Tasks", "content": {"application/json": {
                "schema": {"type": "array", "items": _task}}}}}, 401)}},
        "/tasks/{id}": {"get": {
            "summary": "One ready task with its form schema", "operationId": "getTask",
            "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": _responses({200: {"description": "The task", "content": {"application/json": {"schema": _task}}}},
                                    401, 403, 404)}},
        "/tasks/{id}/complete": {"post": {
            "summary": "Validate the data against the task's form and complete it", "operationId": "completeTask",
            "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
            "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}},
            "responses": _responses({200: {"description": "Completed", "content": {"application/json": {"schema": {
                "type": "object", "properties": {"completed": {"type": "string"}, "case": {"type": "string"},
                                                 "stage": {"type": "string"}, "status": {"type": "string"}}}}}}},
                401, 403, 404, 409, 422)}},
        "/cases/{reference}": {"get": {
            "summary": "A case: status, stage, threshold, actions, letters and history", "operationId": "getCase",
            "parameters": [{"name": "reference", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": _responses({200: {"description": "The case", "content": {"application/json": {"schema": {
                "type": "object", "required": ["reference", "status", "stage", "threshold", "actions", "history"],
                "properties": {"reference": {"type": "string"}, "status": {"enum": ["open", "closed", "withdrawn"]},
                               "stage": {"type": "string"}, "threshold": {"type": ["object", "null"]},
                               "actions": {"type": "array"}, "history": {"type": "array"}}}}}}}, 401, 404)}},
        "/cases/{reference}/documents": {"post": {
            "summary": "Add a document to a case", "description": (
                "A PDF, JPG, PNG or Word .docx (decided from its bytes), by whoever may complete one of the case's "
                "ready tasks. Put the returned id in a task form's file field (`x-ui.widget` \"file\": a string, "
                "or an array of strings); completing the task refuses ids of other cases' documents."),
            "operationId": "uploadDocument",
            "parameters": [{"name": "reference", "in": "path", "required": True, "schema": {"type": "string"}}],
            "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
                "type": "object", "required": ["file"],
                "properties": {"file": {"type": "string", "contentMediaType": "application/octet-stream"}}}}}},
            "responses": _responses({201: {"description": "Stored", "content": {"application/json": {"schema": {
                "type": "object", "required": ["id", "filename", "content_type", "size"],
                "properties": {"id": {"type": "string", "format": "uuid"}, "filename": {"type": "string"},
                               "content_type": {"enum": ["application/pdf", "image/jpeg", "image/png", DOCX]},
                               "size": {"type": "integer"}}}}}}}, 401, 403, 404, 413, 422)}},
    },
}
