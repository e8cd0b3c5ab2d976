"""Documents on a case: the files staff and applicants upload where a form asks for them.

A form asks for documents with a *file field*: `{"type": "array", "items": {"type": "string",
"format": "uuid"}, "maxItems": 5, "x-ui": {"widget": "file"}}`, or a single
`{"type": "string", "format": "uuid", "x-ui": {"widget": "file"}}` (the widget may also be named
in the parent's `x-ui.widgets`). The file itself is uploaded first and stored here; the form's
value is the document's id. `reference_problems` lets the engine refuse an id that is not a
document of the task's own case, so no client can point a form at another case's file.

What is accepted is decided from the bytes, never from the name or the client's content type:
PDF, JPEG, PNG and Word .docx (a zip whose entries are under `word/`, read from the zip's
directory without extracting anything), each at most `Settings.upload_max_mb`.
"""
from __future__ import annotations

import hashlib
import io
import re
import unicodedata
import uuid
import zipfile
from datetime import datetime
from typing import Any, Callable, Iterable, Iterator

import filetype
from sqlalchemy import ForeignKey, Integer, LargeBinary, String, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from . import audit
from .errors import InvalidData
from .models import Base, Case, UTCDateTime

PDF, JPEG, PNG = "application/pdf", "image/jpeg", "image/png"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
EXTENSIONS = {PDF: "pdf", JPEG: "jpg", PNG: "png", DOCX: "docx"}
TYPE_WORDS = {PDF: "PDF", JPEG: "JPG", PNG: "PNG", DOCX: "Word document"}
ACCEPT = ".pdf,.jpg,.jpeg,.png,.docx"  # a hint for the browser's file picker; the bytes decide
APPLICANT = "applicant"
APPLICANT_LIMIT = 50  # documents an applicant may add to one case: a private link is not an open bucket
FILES_PER_REQUEST = 5  # a request body may carry this many files of the largest size (MAX_CONTENT_LENGTH)
MIB = 1024 * 1024


class Document(Base):
    __tablename__ = "document"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case_review.id"), index=True)
    filename: Mapped[str] = mapped_column(String(200))  # sanitised, with the extension of its real type
    content_type: Mapped[str] = mapped_column(String(100))  # detected from the bytes
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    content: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)  # lists never load the bytes
    uploaded_by: Mapped[str] = mapped_column(String(320))  # a staff email, or "applicant"
    agency: Mapped[str | None] = mapped_column(String(40))  # the uploading partner officer's agency
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime)

    @property
    def type_words(self) -> str:
        return TYPE_WORDS.get(self.content_type, self.content_type)


class DocumentRefused(InvalidData):
    """An upload that breaks a rule. `reason` completes "The selected file …" (or "‘name’ …" when
    several files were chosen at once and the message must say which)."""

    def __init__(self, reason: str, field: str = "file"):
        self.reason = reason
        super().__init__([{"field": field, "message": f"The selected file {reason}"}], "The file was not accepted")

    def sentence(self, name: str | None = None) -> str:
        return f"‘{name}’ {self.reason}" if name else f"The selected file {self.reason}"


def max_bytes(settings) -> int:
    return int(settings.upload_max_mb) * MIB


def request_limit(settings) -> int:
    """The largest request body the web app takes: a form's worth of files plus its text."""
    return FILES_PER_REQUEST * max_bytes(settings) + MIB


# ----- what a file is -----------------------------------------------------------------------------

def _is_docx(content: bytes) -> bool:
    """A Word document: a zip with `[Content_Types].xml` and entries under `word/`, read from the
    zip's central directory only. Macro-enabled documents (`word/vbaProject.bin`) are refused."""
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError):
        return False
    return ("[Content_Types].xml" in names and any(n.startswith("word/") for n in names)
            and "word/vbaProject.bin" not in names)


def detect_type(content: bytes) -> str | None:
    """The allowed content type the bytes are, or None."""
    kind = filetype.guess(content) if content else None
    mime = kind.mime if kind else None
    if mime in (PDF, JPEG, PNG):
        return mime
    if mime in (DOCX, "application/zip") and _is_docx(content):
        return DOCX
    return None


def display_name(filename: str | None, extension: str | None = None) -> str:
    """The name to show and to download as: no path, no control or direction characters, plain
    punctuation, and the extension of what the file really is (kept as given when None)."""
    name = unicodedata.normalize("NFC", filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    stem = name.rsplit(".", 1)[0] if "." in name and extension else name
    stem = re.sub(r"[^\w .()&,+'-]", "_", stem)
    stem = re.sub(r"\s+", " ", stem).strip(" ._")[:100].strip() or "document"
    return f"{stem}.{extension}" if extension else stem


def check_upload(filename: str | None, content: bytes, *, limit: int, field: str = "file") -> tuple[str, str]:
    """(content type, display name) of an acceptable file, else DocumentRefused."""
    if not content:
        raise DocumentRefused("is empty", field)
    if len(content) > limit:
        raise DocumentRefused(f"must be smaller than {limit // MIB}MB", field)
    content_type = detect_type(content)
    if content_type is None:
        raise DocumentRefused("must be a PDF, JPG, PNG or Word document", field)
    return content_type, display_name(filename, EXTENSIONS[content_type])


def add_document(db: Session, case: Case, filename: str | None, content: bytes, *, uploaded_by: str,
                 agency: str | None, now: datetime, limit: int, field: str = "file") -> Document:
    """Check and store one upload on the case, audited (without its name: names can be personal)."""
    content_type, name = check_upload(filename, content, limit=limit, field=field)
    if uploaded_by == APPLICANT:
        held = db.scalar(select(func.count()).select_from(Document)
                         .where(Document.case_id == case.id, Document.uploaded_by == APPLICANT))
        if held >= APPLICANT_LIMIT:
            raise DocumentRefused(f"cannot be added: you have sent us {APPLICANT_LIMIT} files already. "
                                  "Contact the coordinator to send more", field)
    document = Document(id=str(uuid.uuid4()), case_id=case.id, filename=name, content_type=content_type,
                        size=len(content), sha256=hashlib.sha256(content).hexdigest(), content=content,
                        uploaded_by=uploaded_by, agency=agency, uploaded_at=now)
    db.add(document)
    # No stage: an upload is not a step of the process (reports' process history skips it).
    audit.record(db, at=now, actor=uploaded_by, event="document_uploaded", case_id=case.id,
                 detail={"document": document.id, "content_type": content_type, "size": document.size,
                         "sha256": document.sha256})
    return document


# ----- reading ------------------------------------------------------------------------------------

def documents_of(db: Session, case_id: int) -> list[Document]:
    return list(db.scalars(select(Document).where(Document.case_id == case_id)
                           .order_by(Document.uploaded_at, Document.filename, Document.id)))


def documents_by_id(db: Session, case_id: int, ids: Iterable[str]) -> dict[str, Document]:
    wanted = {i for i in ids if isinstance(i, str) and _is_uuid(i)}
    if not wanted:
        return {}
    rows = db.scalars(select(Document).where(Document.case_id == case_id, Document.id.in_(wanted)))
    return {row.id: row for row in rows}


def content_of(db: Session, document_id: str) -> bytes:
    return db.scalar(select(Document.content).where(Document.id == document_id))


def _is_uuid(value: str) -> bool:
    try:
        return str(uuid.UUID(value)) == value.lower()
    except (ValueError, AttributeError):
        return False


# ----- file fields in forms -----------------------------------------------------------------------

def is_file_field(parent: dict, name: str) -> bool:
    prop = (parent.get("properties") or {}).get(name)
    own = prop.get("x-ui") if isinstance(prop, dict) else None
    widgets = (parent.get("x-ui") or {}).get("widgets") if isinstance(parent.get("x-ui"), dict) else None
    widget = (own or {}).get("widget") if isinstance(own, dict) else None
    return (widget or (widgets or {}).get(name)) == "file"


def file_fields(schema: dict, path: tuple = ()) -> list[tuple[str, ...]]:
    """Paths of the file fields a page shows an upload for: top level and inside groups
    (not inside the items of a list)."""
    found = []
    for name, prop in (schema.get("properties") or {}).items():
        if not isinstance(prop, dict):
            continue
        if is_file_field(schema, name):
            found.append(path + (name,))
        elif prop.get("type") == "object" or "properties" in prop:
            found.extend(file_fields(prop, path + (name,)))
    return found


def referenced_ids(schema: dict, data: Any, path: tuple = ()) -> Iterator[tuple[str, Any]]:
    """("a/b/0", value) for every value held in a file field of `data`, lists of groups included."""
    if not isinstance(data, dict) or not isinstance(schema, dict):
        return
    for name, prop in (schema.get("properties") or {}).items():
        if name not in data or not isinstance(prop, dict):
            continue
        value, where = data[name], path + (name,)
        if is_file_field(schema, name):
            items = value if isinstance(value, list) else [value]
            for index, item in enumerate(items):
                yield "/".join(map(str, where + ((index,) if isinstance(value, list) else ()))), item
        elif isinstance(value, dict):
            yield from referenced_ids(prop, value, where)
        elif isinstance(value, list) and isinstance(prop.get("items"), dict):
            for index, item in enumerate(value):
                yield from referenced_ids(prop["items"], item, where + (index,))


def reference_problems(db: Session, case_id: int, schema: dict, data: Any, *,
                       allowed: Callable[[Document], bool] | None = None) -> list[dict]:
    """Field errors for every file-field value that is not a document of this case (or one the
    actor may not use, when `allowed` says so)."""
    held = list(referenced_ids(schema, data))
    if not held:
        return []
    found = documents_by_id(db, case_id, [value for _, value in held])
    problems = []
    for field, value in held:
        document = found.get(value) if isinstance(value, str) else None
        if document is None or (allowed is not None and not allowed(document)):
            problems.append({"field": field, "message": "The selected file is not one of this case's documents"})
    return problems
