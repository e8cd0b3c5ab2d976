"""Each letter's PDF, stored on the case once it has been made.

A letter is written to the outbox inside the command's transaction; its PDF is made later
(by the delivery pass, or on the first download) because WeasyPrint takes a fifth of a
second a letter and a command's transaction should not wait for it. Once stored, the same
bytes are what the recipient was sent and what staff download, whatever later changes to the
layout: `sha256` lets anyone check a copy against the record.
"""
from __future__ import annotations

import hashlib
import re
from datetime import datetime, timezone

from sqlalchemy import ForeignKey, LargeBinary, String, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from .errors import NotFound
from .letter_pdf import LetterContent, render_pdf
from .models import Agency, Base, Case, OutboxMessage, UTCDateTime

PERSONAL_ROLES = ("applicant", "victim")  # letters to people, not to agencies or staff


class LetterDocument(Base):
    __tablename__ = "letter_document"
    id: Mapped[int] = mapped_column(primary_key=True)
    outbox_id: Mapped[int] = mapped_column(ForeignKey("outbox.id"), unique=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("case_review.id"), index=True)
    pdf: Mapped[bytes] = mapped_column(LargeBinary)
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


def is_personal(message: OutboxMessage) -> bool:
    return message.recipient_role in PERSONAL_ROLES


def _postal_lines(address: str) -> list[str]:
    return [part.strip() for part in re.split(r"[,\n]", address) if part.strip()]


def recipient_lines(db: Session, message: OutboxMessage, case: Case | None) -> tuple[str, ...]:
    """Who the letter is for, as it goes in the envelope window: a name, then the address."""
    role = message.recipient_role
    application = (case.application or {}) if case else {}
    if role == "applicant":
        name = case.applicant_name if case else "The applicant"
    elif role == "victim":
        name = (case.victim_name if case else None) or "The resident"
    elif role.startswith("agency:"):
        code = role.split(":", 1)[1]
        name = db.scalar(select(Agency.name).where(Agency.code == code)) or code
    else:
        name = "ASB case review coordinator"
    if not message.recipient.startswith("post:"):
        return (name, message.recipient)
    lines = [name, *_postal_lines(message.recipient[len("post:"):])]
    person = "victim" if role == "victim" else "applicant"  # never the applicant's postcode on the victim's letter
    postcode = ((application.get(person) or {}).get("postcode") or "").strip()
    if postcode and postcode.replace(" ", "").upper() not in "".join(lines).replace(" ", "").upper():
        lines.append(postcode)
    return tuple(lines)


def letter_content(db: Session, message: OutboxMessage, service: dict | None = None) -> LetterContent:
    """What the PDF shows; `service` is Settings.service (the sender's name and contact details),
    read from the environment when not given."""
    case = db.get(Case, message.case_id) if message.case_id else None
    if service is None:
        from .config import Settings

        service = Settings.from_env().service
    return LetterContent(reference=case.reference if case else None, letter_date=message.created_at.date(),
                         recipient_lines=recipient_lines(db, message, case), subject=message.subject,
                         body=message.body, large_print=_wants_large_print(message, case),
                         service_name=service["name"], service_phone=service["phone"], service_email=service["email"])


def _wants_large_print(message: OutboxMessage, case: Case | None) -> bool:
    """Letters to the applicant come in large print when their application asked for it."""
    if case is None or message.recipient_role != "applicant":
        return False
    needs = ((case.application or {}).get("applicant") or {}).get("communication_needs") or []
    return "large_print" in needs


def stored_pdf(db: Session, message_id: int) -> bytes | None:
    return db.scalar(select(LetterDocument.pdf).where(LetterDocument.outbox_id == message_id))


def store_pdf(db: Session, message: OutboxMessage, pdf: bytes, *, now: datetime | None = None) -> bytes:
    """Keep the first copy made: when two makers race, the loser returns the winner's bytes."""
    document = LetterDocument(outbox_id=message.id, case_id=message.case_id, pdf=pdf,
                              sha256=hashlib.sha256(pdf).hexdigest(), created_at=now or datetime.now(timezone.utc))
    try:
        with db.begin_nested():
            db.add(document)
    except IntegrityError:
        return stored_pdf(db, message.id)
    return pdf


def _message(db: Session, message_id: int) -> OutboxMessage:
    message = db.get(OutboxMessage, message_id)
    if message is None:
        raise NotFound(f"there is no letter {message_id}")
    return message


def letter_pdf(db: Session, message_id: int, *, now: datetime | None = None, service: dict | None = None) -> bytes:
    """The letter's stored PDF, made and stored (in the caller's transaction) if missing."""
    existing = stored_pdf(db, message_id)
    if existing is not None:
        return existing
    message = _message(db, message_id)
    return store_pdf(db, message, render_pdf(letter_content(db, message, service)), now=now)


def ensure_letter_pdf(sessions: sessionmaker[Session], message_id: int, *, now: datetime | None = None,
                      service: dict | None = None) -> bytes:
    """`letter_pdf` with the rendering outside any transaction: read, render, then store briefly
    (on SQLite every transaction holds the write lock)."""
    with sessions() as db:
        existing = stored_pdf(db, message_id)
        if existing is not None:
            return existing
        content = letter_content(db, _message(db, message_id), service)
    pdf = render_pdf(content)
    with sessions.begin() as db:
        return store_pdf(db, _message(db, message_id), pdf, now=now)
