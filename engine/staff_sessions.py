"""Staff sign-in sessions held on the server.

Flask's session cookie is signed, not revocable: a copy keeps working until it expires. So the
cookie carries only a random token, and a request is signed in only while that token's row here
is open. Signing out ends the row; a new password ends the user's other rows; deactivating a user
ends them all; a row unused for IDLE_LIMIT ends by itself. Rows live in the database, so every
web process sees the same sessions."""
from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from .models import StaffSession, User

IDLE_LIMIT = timedelta(minutes=30)
TOUCH_EVERY = timedelta(minutes=1)  # last_seen_at is written at most this often per session


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start(db: Session, user_id: int, now: datetime) -> str:
    token = secrets.token_urlsafe(32)
    db.add(StaffSession(token_hash=_digest(token), user_id=user_id, created_at=now, last_seen_at=now))
    return token


def user_of(db: Session, token: str | None, user_id: int, now: datetime) -> User | None:
    """The active user this open session belongs to, or None (ended, idle, someone else's)."""
    if not token:
        return None
    row = db.execute(select(StaffSession, User).join(User, User.id == StaffSession.user_id)
                     .where(StaffSession.token_hash == _digest(token))).first()
    if row is None:
        return None
    record, user = row
    if record.ended_at is not None or record.user_id != user_id or not user.active:
        return None
    if now - record.last_seen_at > IDLE_LIMIT:
        record.ended_at = now
        return None
    if now - record.last_seen_at > TOUCH_EVERY:
        record.last_seen_at = now
    return user


def end(db: Session, token: str | None, now: datetime) -> None:
    if token:
        db.execute(update(StaffSession).where(StaffSession.token_hash == _digest(token),
                                              StaffSession.ended_at.is_(None)).values(ended_at=now))


def end_all(db: Session, user_id: int, now: datetime, *, keep: str | None = None) -> int:
    """End every open session of a user (but `keep`, the caller's own); how many ended."""
    query = update(StaffSession).where(StaffSession.user_id == user_id, StaffSession.ended_at.is_(None))
    if keep:
        query = query.where(StaffSession.token_hash != _digest(keep))
    return db.execute(query.values(ended_at=now)).rowcount
