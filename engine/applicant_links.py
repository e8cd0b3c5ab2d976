"""Private links for applicants and victims: "track your case" and "answer the consent request".

A link is `BASE_URL/<purpose>/<token>` with an unguessable token (`secrets.token_urlsafe(32)`).
Only the token's sha256 is stored: the raw token exists in the letter that carries it, written
in the same transaction as the link, and nowhere else (not in task data, audit or logs).

Letters get links by naming them: a template that reads `{{ track_url }}` gets a tracking link
(letters to the applicant only) and one that reads `{{ consent_url }}` gets a consent link (while
the consent task is waiting); `{{ link_expires_on }}` says until when the link works. Letters to
agencies or the coordinator never get a link, whatever their template says.

Tracking links work for `Settings.link_days` (CASEREVIEW_LINK_DAYS, 90 by default); consent
links until the consent deadline (the timer that interrupts the consent task), and only once.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, String, and_, or_, select
from sqlalchemy.orm import Mapped, Session, mapped_column
from SpiffWorkflow.util.task import TaskState

from . import audit
from .letters import render, variables_used
from .models import Base, Case, HumanTask, OutboxMessage, UTCDateTime
from .policy import LEGACY_CONSENT_FORM  # an old version's consent task (applicant lane)
from .versions import compiled, latest_version

if TYPE_CHECKING:
    from .config import Settings
    from .runtime import CaseRun

TRACK, CONSENT = "track", "consent"
PURPOSES = (TRACK, CONSENT)
VICTIM_ROLE = "victim"  # the lane whose task a consent link answers (lanes name roles)
LINK_EMAIL = "track_link"  # the email that carries a link asked for again at /track
_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{32,64}")


class ApplicantLink(Base):
    __tablename__ = "applicant_link"
    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case_review.id"), index=True)
    purpose: Mapped[str] = mapped_column(String(20))
    sent_to: Mapped[str] = mapped_column(String(520))  # the address the letter went to (email or post:…)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


@dataclass(frozen=True)
class LinkSettings:
    base_url: str = "http://127.0.0.1:5000"
    days: int = 90

    @classmethod
    def of(cls, settings: "Settings") -> "LinkSettings":
        return cls(settings.base_url.rstrip("/"), int(settings.link_days))

    @classmethod
    def from_env(cls) -> "LinkSettings":
        from .config import Settings

        return cls.of(Settings.from_env())

    def url(self, purpose: str, token: str) -> str:
        return f"{self.base_url}/{purpose}/{token}"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _issue(db: Session, case: Case, purpose: str, now: datetime, *, sent_to: str = "",
           expires_at: datetime | None = None, days: int = 90) -> tuple[str, ApplicantLink]:
    if purpose not in PURPOSES:
        raise ValueError(f"unknown link purpose {purpose!r}")
    token = secrets.token_urlsafe(32)
    link = ApplicantLink(token_hash=_digest(token), case_id=case.id, purpose=purpose, sent_to=sent_to[:520],
                         created_at=now, expires_at=expires_at or now + timedelta(days=days))
    db.add(link)
    db.flush()
    return token, link


def issue_link(db: Session, case: Case, purpose: str, now: datetime, *, sent_to: str = "",
               expires_at: datetime | None = None, days: int = 90) -> str:
    """A new link for the case; returns the raw token (put it in the letter, keep it nowhere else)."""
    return _issue(db, case, purpose, now, sent_to=sent_to, expires_at=expires_at, days=days)[0]


@dataclass(frozen=True)
class LinkCheck:
    """What a token is worth now: state is "ok", "used", "expired" or "unknown" (wrong or revoked)."""

    state: str
    link: ApplicantLink | None = None
    case: Case | None = None

    @property
    def ok(self) -> bool:
        return self.state == "ok"


def check_link(db: Session, token: str, now: datetime, purpose: str = TRACK) -> LinkCheck:
    if not token or not _TOKEN_SHAPE.fullmatch(token):
        return LinkCheck("unknown")
    digest = _digest(token)
    # The lookup is by the token's hash, so its timing tells nothing about the token (an attacker
    # cannot choose hash prefixes); the compare below is constant-time all the same.
    link = db.scalar(select(ApplicantLink).where(ApplicantLink.token_hash == digest))
    if link is None or not hmac.compare_digest(link.token_hash, digest) or link.purpose != purpose:
        return LinkCheck("unknown")
    if link.revoked_at is not None:
        return LinkCheck("unknown")
    case = db.get(Case, link.case_id)
    if link.used_at is not None:
        return LinkCheck("used", link, case)
    if now >= link.expires_at:
        return LinkCheck("expired", link, case)
    if purpose == CONSENT and consent_task(db, case) is None:
        return LinkCheck("expired", link, case)  # the deadline passed or the application was closed
    return LinkCheck("ok", link, case)


def case_for_token(db: Session, token: str, now: datetime, purpose: str = TRACK) -> Case | None:
    check = check_link(db, token, now, purpose)
    return check.case if check.ok else None


def consent_task(db: Session, case: Case | None) -> HumanTask | None:
    """The waiting task a consent link answers: the case's victim-lane task (in a case of a
    version from before the victim's lane, its applicant-lane consent task), if any."""
    if case is None or case.status != "open":
        return None
    return db.scalar(select(HumanTask).where(
        HumanTask.case_id == case.id,
        or_(HumanTask.role == VICTIM_ROLE,
            and_(HumanTask.role == "applicant", HumanTask.form == LEGACY_CONSENT_FORM)))
        .order_by(HumanTask.created_at).limit(1))


def mark_used(db: Session, link_id: int, now: datetime) -> None:
    link = db.get(ApplicantLink, link_id)
    if link is not None and link.used_at is None:
        link.used_at = now


def revoke(db: Session, now: datetime, *, token: str | None = None, case_id: int | None = None) -> int:
    """Stop one link (by token) or every link of a case from working; how many were revoked."""
    query = select(ApplicantLink).where(ApplicantLink.revoked_at.is_(None))
    if token:
        query = query.where(ApplicantLink.token_hash == _digest(token))
    elif case_id is not None:
        query = query.where(ApplicantLink.case_id == case_id)
    else:
        raise ValueError("say which links: a token or a case")
    rows = list(db.scalars(query))
    for row in rows:
        row.revoked_at = now
    return len(rows)


def _day(moment: datetime) -> str:
    return f"{moment.day} {moment.strftime('%B %Y')}"


# ----- links in letters (called by the runtime while it writes a letter) ------------------------

def links_for_letter(run: "CaseRun", template: str, role: str, address: str) -> dict[str, str]:
    """The link variables the letter's template asks for, each a fresh link for this letter.
    A consent link only ever goes in a letter to the victim, a tracking link only in one to the
    applicant: whoever applied for someone else can never answer for them."""
    wanted = variables_used(run.version.letters.get(template, ""))
    if role not in ("applicant", VICTIM_ROLE) or not wanted & {"track_url", "consent_url"}:
        return {}
    settings: LinkSettings = getattr(run, "link_settings", None) or LinkSettings.from_env()
    now = run.clock.now()
    context: dict[str, str] = {}
    consent_for = VICTIM_ROLE if run.case.route != "victim" else None
    if "consent_url" in wanted and role == consent_for and _consent_waiting(run):
        deadline = consent_deadline(run) or now + timedelta(days=settings.days)
        token = issue_link(run.db, run.case, CONSENT, now, sent_to=address, expires_at=deadline)
        context.update(consent_url=settings.url(CONSENT, token), link_expires_on=_day(deadline))
    if "track_url" in wanted and role == "applicant":
        token = issue_link(run.db, run.case, TRACK, now, sent_to=address, days=settings.days)
        context.update(track_url=settings.url(TRACK, token),
                       link_expires_on=context.get("link_expires_on") or _day(now + timedelta(days=settings.days)))
    return context


def _consent_lane(run: "CaseRun") -> str:
    has_lane = any(getattr(task_spec, "lane", None) == VICTIM_ROLE
                   for spec, _subs in run.version.specs.values() for task_spec in spec.task_specs.values())
    return VICTIM_ROLE if has_lane else "applicant"


def _ready_consent_tasks(run: "CaseRun"):
    lane = _consent_lane(run)
    for workflow in run.loaded_workflows():
        for task in workflow.get_tasks(state=TaskState.READY):
            if not task.task_spec.manual or task.task_spec.lane != lane:
                continue
            properties = task.task_spec.extensions.get("properties", {})
            if lane == VICTIM_ROLE or properties.get("formJsonSchemaFilename") == LEGACY_CONSENT_FORM:
                yield task


def _consent_waiting(run: "CaseRun") -> bool:
    return any(True for _ in _ready_consent_tasks(run))


def consent_deadline(run: "CaseRun") -> datetime | None:
    """When the consent task is interrupted by its timer: the earliest cancelling timer attached to it."""
    from .runtime import waiting_deadline

    return waiting_deadline(run, lane=_consent_lane(run))


# ----- a new link by email, asked for at /track -------------------------------------------------

def resend(db: Session, reference: str, email: str, now: datetime, settings: LinkSettings,
           service: dict | None = None) -> bool:
    """If the reference and email match a case, email a new tracking link to the address on file
    (through the outbox) and audit it. The caller answers the same either way."""
    reference, email = (reference or "").strip().upper(), (email or "").strip().casefold()
    if not reference or not email:
        return False
    case = db.scalar(select(Case).where(Case.reference == reference))
    on_file = (case.applicant_email or "").strip().casefold() if case is not None else ""
    if not on_file or not hmac.compare_digest(on_file.encode(), email.encode()):
        return False
    token, link = _issue(db, case, TRACK, now, sent_to=case.applicant_email, days=settings.days)
    context = {"reference": case.reference, "case": {"reference": case.reference, "stage": case.stage},
               "applicant": {"name": case.applicant_name}, "track_url": settings.url(TRACK, token),
               "link_expires_on": _day(link.expires_at), "service": service or _service_details()}
    letter = render(_templates_with(db, case, LINK_EMAIL), LINK_EMAIL, context)
    db.add(OutboxMessage(case_id=case.id, template=LINK_EMAIL, recipient=case.applicant_email,
                         recipient_role="applicant", subject=letter.subject, body=letter.body, created_at=now,
                         attempts=0))
    audit.record(db, at=now, actor="applicant", event="applicant_link_sent", case_id=case.id,
                 stage_before=case.stage, stage_after=case.stage, detail={"purpose": TRACK, "link": link.id})
    return True


def _service_details() -> dict:
    from .config import Settings

    return Settings.from_env().service


def _templates_with(db: Session, case: Case, name: str) -> dict[str, str]:
    """The case's own version's letters, or the latest version's when the case predates the template."""
    letters = compiled(db, case.process_version_id).letters
    if name not in letters:
        latest = latest_version(db)
        if latest is not None:
            letters = compiled(db, latest.id).letters
    return letters
