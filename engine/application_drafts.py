"""Applications being filled in at /apply, kept in the database between pages.

A browser holds only a random key (in its signed session cookie); the answers, which can run to
hundreds of kilobytes (100 incidents of 5,000 characters), stay here. As with applicants' links,
only the key's sha256 is stored, so the table alone does not let anyone take over a draft.

A draft lives for `LIFETIME` after its last change; an expired draft is deleted when it is next
asked for, and every worker pass deletes the rest (`delete_expired`). Sending the application
deletes it (`discard`).
"""
from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import JSON, String, delete, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from .models import Base, UTCDateTime

LIFETIME = timedelta(hours=24)


class ApplicationDraft(Base):
    __tablename__ = "application_draft"
    id: Mapped[int] = mapped_column(primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    answers: Mapped[dict[str, Any]] = mapped_column(JSON)  # the application as far as it is answered
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


def new_key() -> str:
    return secrets.token_urlsafe(32)


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def load(db: Session, key: str, now: datetime) -> ApplicationDraft | None:
    """The live draft with this key, or None (an expired one is deleted on the way)."""
    draft = db.scalar(select(ApplicationDraft).where(ApplicationDraft.key_hash == _hash(key)))
    if draft is not None and draft.expires_at <= now:
        db.delete(draft)
        return None
    return draft


def save(db: Session, key: str, answers: dict, now: datetime) -> ApplicationDraft:
    """Store the answers under the key (a new draft if it has none or it expired); its life
    starts again from now."""
    draft = load(db, key, now)
    if draft is None:
        db.flush()  # an expired row with this key goes before its successor is inserted
        draft = ApplicationDraft(key_hash=_hash(key), created_at=now)
        db.add(draft)
    draft.answers = answers
    draft.updated_at = now
    draft.expires_at = now + LIFETIME
    return draft


def discard(db: Session, key: str) -> None:
    db.execute(delete(ApplicationDraft).where(ApplicationDraft.key_hash == _hash(key)))


def delete_expired(db: Session, now: datetime) -> int:
    return db.execute(delete(ApplicationDraft).where(ApplicationDraft.expires_at <= now)).rowcount or 0
