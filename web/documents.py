"""Documents in the web app: files posted with a task form (staff task pages and the applicant's
track page), downloads for staff, and the case page's list.

A file is stored as soon as it is posted, in its own transaction, before the form is completed:
a completion that fails (a field left out, a date mistyped) keeps it, and the page lists it as
added (hidden inputs carry the ids). A document no completed form names stays on the case and is
listed on the case page. Downloads are always attachments in the type detected from the bytes,
with nosniff, a sandboxing Content-Security-Policy and no caching; each is audited.
"""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Callable
from urllib.parse import quote

from flask import Blueprint, Response, abort, current_app, request, url_for
from flask_login import current_user
from sqlalchemy import select

from engine import audit, forms, policy
from engine.documents import (ACCEPT, APPLICANT, Document, DocumentRefused, add_document, content_of, display_name,
                              documents_by_id, documents_of, file_fields, max_bytes)
from engine.models import Case

from .auth import roles_required
from .formrender import FileUploads

blueprint = Blueprint("documents", __name__)
VIEWING_ROLES = ("coordinator", "partner", "chair", "reviewer")


def _service():
    return current_app.extensions["casereview"]


def size_words(size: int) -> str:
    if size < 1024 * 1024:
        return f"{max(1, round(size / 1024))} KB"
    return f"{size / (1024 * 1024):.1f} MB"


# ----- uploads with a form ------------------------------------------------------------------------

@dataclass(frozen=True)
class Uploader:
    """Who posts the files, and which of the case's documents they may see again on the page."""

    name: str  # a staff email, or "applicant"
    agency: str | None
    may_see: Callable[[Document], bool]


def staff_uploader(user) -> Uploader:
    return Uploader(user.email, user.agency if user.role == "partner" else None,
                    lambda document: policy.may_see_document(user, document))


APPLICANT_UPLOADER = Uploader(APPLICANT, None, lambda document: document.uploaded_by == APPLICANT)


def _value_at(data: dict | None, path: tuple[str, ...]):
    for part in path:
        data = data.get(part) if isinstance(data, dict) else None
    return data


def _put(data: dict, path: tuple[str, ...], value) -> None:
    """Set (or, for None, remove) the value at `path`, making the groups on the way only to set one."""
    for part in path[:-1]:
        if not isinstance(data.get(part), dict):
            if value is None:
                return
            data[part] = {}
        data = data[part]
    if value is None:
        data.pop(path[-1], None)
    else:
        data[path[-1]] = value


def _field_schema(schema: dict, path: tuple[str, ...]) -> dict:
    for part in path:
        schema = (schema.get("properties") or {}).get(part) or {}
    return schema


class FormFiles:
    """The file fields of one form page for one case: stores what is posted, names what is added."""

    def __init__(self, schema: dict, case_id: int, uploader: Uploader):
        self.schema, self.case_id, self.uploader = schema, case_id, uploader
        self.paths = file_fields(schema)

    @property
    def multipart(self) -> bool:
        return bool(self.paths)

    def receive(self, data: dict) -> list[dict]:
        """Store the files posted for each file field and add their ids to `data` (ids the
        uploader may not use are dropped); field errors for the files refused."""
        if not self.paths:
            return []
        service = _service()
        errors: list[dict] = []
        files = {path: [f for f in request.files.getlist("-".join(path)) if f.filename] for path in self.paths}
        # a write transaction only when there is something to store (on SQLite it takes the write lock)
        with (service.transaction if any(files.values()) else service.sessions)() as db:
            case = db.get(Case, self.case_id)
            for path, posted in files.items():
                many = _field_schema(self.schema, path).get("type") == "array"
                value, field = _value_at(data, path), "/".join(path)
                kept = self._usable(db, value if isinstance(value, list) else [value])
                maximum = _field_schema(self.schema, path).get("maxItems") if many else None
                if maximum is not None and len(kept) + len(posted) > maximum:
                    errors.append({"field": field, "message": f"You can add up to {maximum} file"
                                                              f"{'' if maximum == 1 else 's'}"})
                    posted = []
                added = self._store(db, case, posted if many else posted[:1], field, errors)
                if many:
                    _put(data, path, kept + added if kept or added or value is not None else None)
                else:  # a single file field: a new file replaces the one added before
                    _put(data, path, (added or kept or [None])[0])
        return errors

    def _usable(self, db, ids: list) -> list[str]:
        known = documents_by_id(db, self.case_id, [i for i in ids if isinstance(i, str)])
        return [i for i in ids if i in known and self.uploader.may_see(known[i])]

    def _store(self, db, case: Case, uploads: list, field: str, errors: list[dict]) -> list[str]:
        service, stored = _service(), []
        limit = max_bytes(service.settings)
        for upload in uploads:
            try:
                document = add_document(db, case, upload.filename, upload.read(limit + 1),
                                        uploaded_by=self.uploader.name, agency=self.uploader.agency,
                                        now=service.now(), limit=limit, field=field)
            except DocumentRefused as refused:  # with several files, say which one
                errors.append({"field": field, "message": refused.sentence(
                    display_name(upload.filename) if len(uploads) > 1 else None)})
                continue
            stored.append(document.id)
        return stored

    def shown(self, values: dict | None) -> FileUploads | None:
        """The names of the documents `values` holds (those the uploader may see) and the rules."""
        if not self.paths:
            return None
        rules = (f"Files must be PDF, JPG, PNG or Word documents, each smaller than "
                 f"{_service().settings.upload_max_mb}MB.")
        ids = []
        for path in self.paths:
            value = _value_at(values, path)
            ids += value if isinstance(value, list) else [value]
        with _service().sessions() as db:
            found = documents_by_id(db, self.case_id, [i for i in ids if isinstance(i, str)])
        names = {i: d.filename for i, d in found.items() if self.uploader.may_see(d)}
        return FileUploads(uploaded=names, rules=rules, accept=ACCEPT)


def with_form_errors(schema: dict, data: dict, upload_errors: list[dict]) -> list[dict]:
    """Refused uploads and whatever else the form says is wrong, shown together: the form is not
    sent while a file was refused, but the person should fix everything in one go."""
    return upload_errors + forms.errors_for(forms.make_validator(schema), data)


# ----- downloads and the case page --------------------------------------------------------------

def _disposition(name: str) -> str:
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().replace('"', "") or "document"
    if plain == name:
        return f'attachment; filename="{plain}"'
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(name, safe='')}"


def attachment(document: Document, content: bytes) -> Response:
    return Response(content, mimetype=document.content_type, headers={
        "Content-Disposition": _disposition(document.filename),
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-store",
        "Content-Security-Policy": "default-src 'none'; sandbox",  # should a browser ever render it
    })


@blueprint.get("/cases/<reference>/documents/<document_id>")
@roles_required(*VIEWING_ROLES)
def download(reference: str, document_id: str):
    service = _service()
    with service.transaction() as db:
        case = db.scalar(select(Case).where(Case.reference == reference))
        if case is None or not policy.may_view_case(current_user, case):
            abort(404, "There is no case with that reference you can see.")
        document = documents_by_id(db, case.id, [document_id]).get(document_id)
        if document is None or not policy.may_see_document(current_user, document):
            abort(404, "There is no such document on this case.")
        content = content_of(db, document.id)
        audit.record(db, at=service.now(), actor=current_user.email, event="document_downloaded", case_id=case.id,
                     detail={"document": document.id})
        return attachment(document, content)


def documents_for_page(db, case: Case) -> list[dict]:
    """The case page's documents: those the signed-in user may see, oldest first."""
    return [{
        "filename": d.filename, "type": d.type_words, "size": size_words(d.size), "uploaded_at": d.uploaded_at,
        "by": "the applicant" if d.uploaded_by == APPLICANT else d.uploaded_by,
        "url": url_for("documents.download", reference=case.reference, document_id=d.id),
    } for d in documents_of(db, case.id) if policy.may_see_document(current_user, d)]
