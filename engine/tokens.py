"""API bearer tokens: shown once, stored as sha256, revocable."""
from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from .accounts import require_user
from .errors import NotFound
from .models import ApiToken, User

PREFIX = "crv_"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(db: Session, email: str, now: datetime) -> str:
    user = require_user(db, email)
    token = PREFIX + secrets.token_urlsafe(32)
    db.add(ApiToken(user_id=user.id, token_hash=_digest(token), created_at=now))
    db.flush()
    return token


def revoke(db: Session, *, token: str | None = None, email: str | None = None, now: datetime) -> int:
    query = select(ApiToken).where(ApiToken.revoked_at.is_(None))
    if token:
        query = query.where(ApiToken.token_hash == _digest(token))
    elif email:
        query = query.where(ApiToken.user_id == require_user(db, email).id)
    else:
        raise NotFound("say which token: TOKEN or --user EMAIL")
    rows = list(db.scalars(query))
    for row in rows:
        row.revoked_at = now
    return len(rows)


def user_for_token(db: Session, token: str) -> User | None:
    row = db.scalar(select(ApiToken).where(ApiToken.token_hash == _digest(token), ApiToken.revoked_at.is_(None)))
    if row is None:
        return None
    user = db.get(User, row.user_id)
    return user if user is not None and user.active else None
