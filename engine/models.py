"""Database tables (SQLAlchemy 2 typed mappings).

`workflow_instance.state` is the only copy of the workflow; `case_review`, `human_task`,
`timer` and `action` are derived from it inside the same transaction, so reads never need
to deserialise a workflow.
"""
from __future__ import annotations

from datetime import date, datetime
from typing import Any

from datetime import timezone

from sqlalchemy import JSON, Boolean, Date, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes on every database (SQLite drops the offset: it is stored as UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(timezone.utc)
            if dialect.name == "sqlite":
                value = value.replace(tzinfo=None)
        return value

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class Agency(Base):
    __tablename__ = "agency"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))


class User(Base):
    __tablename__ = "app_user"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    agency: Mapped[str | None] = mapped_column(ForeignKey("agency.code"))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    failed_sign_ins: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    totp_secret: Mapped[str | None] = mapped_column(String(64))


class StaffSession(Base):
    """A signed-in browser. The cookie holds a random token; only its sha256 is kept here, and a
    session works only while its row is not ended (sign-out, new password, deactivation, idle)."""

    __tablename__ = "staff_session"
    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ProcessVersion(Base):
    """An immutable, published bundle of BPMN, DMN and form files."""

    __tablename__ = "process_version"
    __table_args__ = (UniqueConstraint("bundle", "number"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    bundle: Mapped[str] = mapped_column(String(80))
    number: Mapped[int] = mapped_column(Integer)
    files: Mapped[dict[str, Any]] = mapped_column(JSON)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    note: Mapped[str] = mapped_column(Text, default="")
    published_by: Mapped[str] = mapped_column(String(320))
    published_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Case(Base):
    __tablename__ = "case_review"
    __table_args__ = (Index("ix_case_review_open_stage", "stage", "id", postgresql_where=text("status = 'open'"),
                            sqlite_where=text("status = 'open'")),)
    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(String(30), unique=True)
    process_version_id: Mapped[int] = mapped_column(ForeignKey("process_version.id"))
    status: Mapped[str] = mapped_column(String(20), default="open", index=True)
    stage: Mapped[str] = mapped_column(String(40), default="application", index=True)
    route: Mapped[str] = mapped_column(String(20))
    applicant_name: Mapped[str] = mapped_column(String(200))
    applicant_email: Mapped[str | None] = mapped_column(String(320))
    victim_name: Mapped[str | None] = mapped_column(String(200))
    postcode: Mapped[str | None] = mapped_column(String(12), index=True)
    agencies: Mapped[list[Any]] = mapped_column(JSON)
    received_on: Mapped[date] = mapped_column(Date, index=True)
    threshold: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    application: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    decided_on: Mapped[date | None] = mapped_column(Date)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lock_version: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CaseAgency(Base):
    """The agencies involved in a case, one row each (Case.agencies as a table), so staff can
    filter by agency through an index."""

    __tablename__ = "case_agency"
    __table_args__ = (Index("ix_case_agency_agency", "agency", "case_id"),)
    case_id: Mapped[int] = mapped_column(ForeignKey("case_review.id"), primary_key=True)
    agency: Mapped[str] = mapped_column(String(40), primary_key=True)


class WorkflowInstance(Base):
    __tablename__ = "workflow_instance"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case_review.id"), index=True)
    process_id: Mapped[str] = mapped_column(String(80))
    status: Mapped[str] = mapped_column(String(20), default="running")
    state: Mapped[str] = mapped_column(Text)
    steps: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class HumanTask(Base):
    """A READY user task, with who may do it and by when."""

    __tablename__ = "human_task"
    # The inbox's orders (engine.queries.inbox; migration 0003).
    __table_args__ = (
        Index("ix_human_task_inbox_due", "role", text("(due IS NULL)"), "due", "case_id", "id"),
        Index("ix_human_task_inbox_agency_due", "role", "agency", text("(due IS NULL)"), "due", "case_id", "id"),
        Index("ix_human_task_inbox_title", "role", "title", "due", "id"),
        Index("ix_human_task_inbox_agency_title", "role", "agency", "title", "due", "id"),
    )
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case_review.id"), index=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("workflow_instance.id"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    title: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(20))
    agency: Mapped[str | None] = mapped_column(String(40))
    form: Mapped[str] = mapped_column(String(120))
    due: Mapped[date | None] = mapped_column(Date, index=True)
    assignee: Mapped[str | None] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Timer(Base):
    __tablename__ = "timer"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case_review.id"), index=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("workflow_instance.id"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class Action(Base):
    __tablename__ = "action"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case_review.id"), index=True)
    description: Mapped[str] = mapped_column(Text)
    agency: Mapped[str] = mapped_column(String(40), index=True)
    owner: Mapped[str | None] = mapped_column(String(200))
    due: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(30))
    last_note: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class OutboxMessage(Base):
    """A letter or email, written in the command's transaction and delivered after commit."""

    __tablename__ = "outbox"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("case_review.id"), index=True)
    template: Mapped[str] = mapped_column(String(80))
    recipient: Mapped[str] = mapped_column(String(320))
    recipient_role: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str] = mapped_column(String(255))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    # Delivery lease (engine/outbox.py): the worker sending it now, and until when it may.
    claim_token: Mapped[str | None] = mapped_column(String(32))
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    retry_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # backoff after a failed attempt
    failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # given up: shown to staff


class AuditEvent(Base):
    """Who did what to which case, when: one row per command (and per case read later).

    Append-only and hash-chained (engine/audit.py writes every row; migration 0004): `seq` is
    the row's position, `hash` the sha256 of its content and `prev_hash`, the previous row's hash.
    """

    __tablename__ = "audit_event"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    actor: Mapped[str] = mapped_column(String(320))
    event: Mapped[str] = mapped_column(String(80))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("case_review.id"), index=True)
    stage_before: Mapped[str | None] = mapped_column(String(40))
    stage_after: Mapped[str | None] = mapped_column(String(40))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    seq: Mapped[int | None] = mapped_column(Integer, index=True, unique=True)
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    hash: Mapped[str | None] = mapped_column(String(64), index=True, unique=True)


class ApiToken(Base):
    """A bearer token for the JSON API; only its sha256 is stored."""

    __tablename__ = "api_token"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
