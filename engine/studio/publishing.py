"""Publishing through validation, rolling back, version history and finding a version by the
processes it holds.

Commands take the CaseReview service: validation (with its dry run) runs outside any
database transaction, so SQLite's write lock is held only for the short publish itself.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .. import audit, versions
from ..errors import NotFound
from ..models import Case, ProcessVersion
from ..safexml import UnsafeXML, parse_xml
from .bpmnmodel import bpmn
from .bundles import check_files
from .problems import BundleInvalid
from .validation import validate_bundle


def publish_bundle(service, files: dict[str, str], *, note: str, by: str, bundle: str = versions.BUNDLE,
                   dry_run: bool = True) -> tuple[ProcessVersion, bool]:
    """Validate and publish `files` as the next version; (version, created).

    Files identical to the latest version publish nothing (created is False). Any problem
    raises BundleInvalid (CLI exit status 2) and publishes nothing.
    """
    check_files(files)
    with service.sessions() as db:
        latest = versions.latest_version(db, bundle)
        if latest is not None and latest.sha256 == versions.bundle_sha256(files):
            db.expunge(latest)
            return latest, False
    problems = validate_bundle(files, dry_run=dry_run)
    if problems:
        raise BundleInvalid(problems)
    with service.transaction() as db:
        return _publish(db, files, note=note, by=by, now=service.now(), bundle=bundle)


def _publish(db: Session, files: dict[str, str], *, note: str, by: str, now: datetime, bundle: str,
             detail: dict | None = None) -> tuple[ProcessVersion, bool]:
    version, created = versions.publish(db, files, note=note, by=by, now=now, bundle=bundle)
    if created:
        audit.record(db, at=now, actor=by, event="process_published",
                     detail={"bundle": bundle, "version": version.number, "sha256": version.sha256, "note": note,
                             **(detail or {})})
    db.flush()
    db.expunge(version)
    return version, created


def publish_again(service, old_version: int, *, note: str, by: str,
                  bundle: str = versions.BUNDLE) -> ProcessVersion:
    """Roll back: a new version holding exactly the files of `old_version` (a number). The old
    files were valid when published, but rules may have grown since, so they are validated."""
    with service.sessions() as db:
        files = dict(get_version(db, old_version, bundle).files)
    problems = validate_bundle(files)
    if problems:
        raise BundleInvalid(problems)
    with service.transaction() as db:
        latest = versions.latest_version(db, bundle)
        if latest is not None and latest.sha256 == versions.bundle_sha256(files):
            db.expunge(latest)
            return latest  # already what is live
        version, _created = _publish(db, files, note=note, by=by, now=service.now(), bundle=bundle,
                                     detail={"republished_from": old_version})
        return version


def get_version(db: Session, number: int, bundle: str = versions.BUNDLE) -> ProcessVersion:
    row = db.scalar(select(ProcessVersion).where(ProcessVersion.bundle == bundle, ProcessVersion.number == number))
    if row is None:
        raise NotFound(f"there is no version {number} of {bundle}")
    return row


def version_history(db: Session, bundle: str = versions.BUNDLE) -> list[dict[str, Any]]:
    """Newest first: number, who published it, when, the note, its hash and how many cases
    (open and in all) use it."""
    cases = dict(db.execute(select(Case.process_version_id, func.count()).group_by(Case.process_version_id)).all())
    open_cases = dict(db.execute(select(Case.process_version_id, func.count()).where(Case.status == "open")
                                 .group_by(Case.process_version_id)).all())
    rows = db.execute(select(ProcessVersion.id, ProcessVersion.number, ProcessVersion.published_by,
                             ProcessVersion.published_at, ProcessVersion.note, ProcessVersion.sha256)
                      .where(ProcessVersion.bundle == bundle).order_by(ProcessVersion.number.desc())).all()
    return [{"version": number, "bundle": bundle, "published_by": by, "published_at": at.isoformat(), "note": note,
             "sha256": sha, "cases": cases.get(row_id, 0), "open_cases": open_cases.get(row_id, 0)}
            for row_id, number, by, at, note, sha in rows]


def process_ids(files: dict[str, str]) -> set[str]:
    """Ids of the BPMN processes in a bundle (files that do not parse are skipped)."""
    found = set()
    for name, text in files.items():
        if name.endswith(".bpmn"):
            try:
                root = parse_xml(text, name)
            except UnsafeXML:
                continue
            found |= {p.get("id") for p in root.findall(bpmn("process")) if p.get("id")}
    return found


def version_holding(db: Session, process_id: str, number: int | None = None) -> ProcessVersion:
    """The latest version (or version `number`) of any bundle holding the process `process_id`."""
    query = select(ProcessVersion).order_by(ProcessVersion.published_at.desc(), ProcessVersion.id.desc())
    if number is not None:
        query = query.where(ProcessVersion.number == number)
    for row in db.scalars(query):
        if process_id in process_ids(row.files):
            return row
    where = f" in version {number}" if number is not None else ""
    raise NotFound(f"no published version holds a process {process_id!r}{where}")
