"""Drafts: a bundle being edited in the studio, started from a published version, saved file
by file, validated, and published as the next version.

Saves are guarded by `lock_version` (pass the value you read; a stale one raises Conflict,
exit status 6) so two owners editing one draft never overwrite each other silently. A
published draft keeps `published_as` and is read-only from then on.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Integer, String, Text, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from .. import audit, versions
from ..errors import Conflict, NotFound
from ..models import Base, ProcessVersion, UTCDateTime
from .bundles import check_files
from .problems import BundleInvalid, Problem
from .publishing import _publish, get_version
from .validation import validate_bundle


class ProcessDraft(Base):
    __tablename__ = "process_draft"
    id: Mapped[int] = mapped_column(primary_key=True)
    bundle: Mapped[str] = mapped_column(String(80), index=True)
    files: Mapped[dict] = mapped_column(JSON)
    based_on_version: Mapped[int | None] = mapped_column(Integer)  # version number it started from
    note: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_by: Mapped[str] = mapped_column(String(320))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    lock_version: Mapped[int] = mapped_column(Integer, default=0)
    published_as: Mapped[int | None] = mapped_column(Integer)  # version number, once published


def start_draft(service, from_version: int | None = None, *, by: str, bundle: str = versions.BUNDLE,
                note: str = "", files: dict[str, str] | None = None) -> ProcessDraft:
    """A new draft holding the files of version `from_version` (a number; the latest if None),
    or `files` (an imported bundle, in one step) compared against that version."""
    if files is not None:
        check_files(files)
    with service.transaction() as db:
        source = get_version(db, from_version, bundle) if from_version is not None \
            else versions.latest_version(db, bundle)
        if source is None:
            raise NotFound(f"nothing of {bundle} has been published yet")
        now = service.now()
        draft = ProcessDraft(bundle=bundle, files=dict(files if files is not None else source.files),
                             based_on_version=source.number, note=note,
                             created_by=by, created_at=now, updated_by=by, updated_at=now, lock_version=0)
        db.add(draft)
        db.flush()
        detail = {"draft": draft.id, "bundle": bundle, "from_version": source.number}
        if files is not None:
            detail.update(imported=True, files=len(files), sha256=versions.bundle_sha256(files))
        audit.record(db, at=now, actor=by, event="draft_started", detail=detail)
        db.expunge(draft)
        return draft


def get_draft(db: Session, draft_id: int) -> ProcessDraft:
    draft = db.get(ProcessDraft, draft_id, populate_existing=True)
    if draft is None:
        raise NotFound(f"there is no draft {draft_id}")
    return draft


def list_drafts(db: Session, bundle: str = versions.BUNDLE, *, open_only: bool = True) -> list[ProcessDraft]:
    query = select(ProcessDraft).where(ProcessDraft.bundle == bundle).order_by(ProcessDraft.updated_at.desc())
    if open_only:
        query = query.where(ProcessDraft.published_as.is_(None))
    return list(db.scalars(query))


def save_file(service, draft_id: int, name: str, text: str, *, by: str,
              lock_version: int | None = None) -> ProcessDraft:
    """Add or replace one file of the draft."""
    return _change(service, draft_id, by, lock_version, lambda files: {**files, name: text},
                   event="draft_file_saved", file=name)


def delete_file(service, draft_id: int, name: str, *, by: str, lock_version: int | None = None) -> ProcessDraft:
    def without(files: dict) -> dict:
        if name not in files:
            raise NotFound(f"draft {draft_id} has no file {name}")
        return {k: v for k, v in files.items() if k != name}
    return _change(service, draft_id, by, lock_version, without, event="draft_file_deleted", file=name)


def _change(service, draft_id: int, by: str, lock_version: int | None, edit, *, event: str,
            file: str) -> ProcessDraft:
    with service.transaction() as db:
        draft = _open_draft(db, draft_id, lock_version)
        files = edit(dict(draft.files))
        check_files(files)
        seen_lock, bundle = draft.lock_version, draft.bundle
        bumped = db.execute(update(ProcessDraft)
                            .where(ProcessDraft.id == draft_id, ProcessDraft.lock_version == seen_lock)
                            .values(files=files, updated_by=by, updated_at=service.now(),
                                    lock_version=seen_lock + 1))
        if bumped.rowcount != 1:
            raise Conflict(f"draft {draft_id} was changed by someone else; reload it and try again")
        # Every edit is on the record, as publishing is: who changed which file of which draft.
        audit.record(db, at=service.now(), actor=by, event=event,
                     detail={"draft": draft_id, "bundle": bundle, "file": file, "lock_version": seen_lock + 1})
        draft = get_draft(db, draft_id)
        db.expunge(draft)
        return draft


def _open_draft(db: Session, draft_id: int, lock_version: int | None) -> ProcessDraft:
    draft = get_draft(db, draft_id)
    if draft.published_as is not None:
        raise Conflict(f"draft {draft_id} was published as version {draft.published_as}; start a new draft")
    if lock_version is not None and lock_version != draft.lock_version:
        raise Conflict(f"draft {draft_id} was changed by someone else since you read it; reload it and try again")
    return draft


def validate_draft(service, draft_id: int, *, dry_run: bool = True) -> list[Problem]:
    with service.sessions() as db:
        files = dict(get_draft(db, draft_id).files)
    return validate_bundle(files, dry_run=dry_run)


def publish_draft(service, draft_id: int, *, note: str, by: str) -> tuple[ProcessVersion, bool]:
    """Validate and publish the draft; (version, created). Identical to the latest version:
    nothing new is published (created False). The draft is closed either way."""
    with service.sessions() as db:
        draft = _open_draft(db, draft_id, None)
        files, seen_lock, bundle = dict(draft.files), draft.lock_version, draft.bundle
    problems = validate_bundle(files)
    if problems:
        raise BundleInvalid(problems)
    with service.transaction() as db:
        _open_draft(db, draft_id, seen_lock)  # not edited while it was being validated
        latest = versions.latest_version(db, bundle)
        if latest is not None and latest.sha256 == versions.bundle_sha256(files):
            version, created = latest, False
        else:
            version, created = _publish(db, files, note=note, by=by, now=service.now(), bundle=bundle,
                                        detail={"draft": draft_id})
        db.execute(update(ProcessDraft).where(ProcessDraft.id == draft_id)
                   .values(published_as=version.number, updated_by=by, updated_at=service.now(),
                           lock_version=seen_lock + 1))
        return version, created
