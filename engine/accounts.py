"""Agencies and user accounts."""
from __future__ import annotations

import re
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .forms import is_email_address
from .errors import CaseReviewError, InvalidData, NotFound
from .models import Agency, User

ROLES = ("coordinator", "partner", "chair", "reviewer", "owner", "admin")
_hasher = PasswordHasher()
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check_password(user: User, password: str) -> bool:
    if not user.password_hash:
        return False
    try:
        return _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def ensure_agency(db: Session, code: str, name: str, email: str | None = None) -> Agency:
    agency = db.scalar(select(Agency).where(Agency.code == code))
    if agency is None:
        agency = Agency(code=code, name=name, email=email)
        db.add(agency)
        db.flush()
    return agency


def find_user(db: Session, email: str) -> User | None:
    return db.scalar(select(User).where(func.lower(User.email) == email.strip().lower()))


def require_user(db: Session, email: str) -> User:
    user = find_user(db, email)
    if user is None:
        raise NotFound(f"there is no user {email}")
    if not user.active:
        raise CaseReviewError(f"user {email} is deactivated")
    return user


def create_user(db: Session, email: str, role: str, *, agency: str | None = None, name: str | None = None,
                password: str | None = None, password_hash: str | None = None,
                now: datetime) -> tuple[User, bool]:
    """Create a user (or return the existing one unchanged); (user, created)."""
    email = email.strip().lower()
    problems = []
    if not is_email_address(email) or not _EMAIL.match(email):
        problems.append({"field": "email", "message": f"{email!r} is not an email address"})
    if role not in ROLES:
        problems.append({"field": "role", "message": f"role must be one of {', '.join(ROLES)}"})
    if role == "partner" and not agency:
        problems.append({"field": "agency", "message": "a partner officer needs --agency"})
    if agency and role != "partner":
        problems.append({"field": "agency", "message": "only partner officers belong to an agency"})
    if agency and db.scalar(select(Agency).where(Agency.code == agency)) is None:
        problems.append({"field": "agency", "message": f"there is no agency {agency!r}"})
    if problems:
        raise InvalidData(problems, "The user is not valid")
    existing = find_user(db, email)
    if existing is not None:
        if existing.role != role or existing.agency != agency:
            raise CaseReviewError(f"user {email} already exists as {existing.role}"
                                  + (f" ({existing.agency})" if existing.agency else ""))
        return existing, False
    user = User(email=email, name=name or email.split("@")[0].replace(".", " ").title(), role=role, agency=agency,
                password_hash=hash_password(password) if password else password_hash, active=True, created_at=now)
    db.add(user)
    db.flush()
    return user, True
