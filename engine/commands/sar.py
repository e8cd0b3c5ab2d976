"""`casereview sar export --email EMAIL --out FILE.zip`: a subject access export for an applicant."""
from __future__ import annotations

from pathlib import Path

import click

from engine.cli import _emit, _service, handles_errors
from engine.errors import CaseReviewError, NotFound


@click.group("sar")
def sar_group() -> None:
    """Subject access requests."""


@sar_group.command("export")
@click.option("--email", required=True, help="the applicant's email address")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="zip file to write")
@handles_errors
def export_command(email: str, out: Path) -> None:
    """Everything held about the applicant with this email, as a zip (cases, letters, audit events)."""
    from engine import subject_access

    service = _service()
    with service.transaction() as db:
        matches = subject_access.find(db, email=email)
        subject_access.record_search(db, at=service.now(), actor="cli", criteria=["email"], matches=len(matches))
    if not matches:
        raise NotFound(f"no case names {email} as its applicant")
    content = subject_access.export(service, matches, actor="cli", note="Found by the applicant's email address.")
    try:
        out.write_bytes(content)
    except OSError as exc:
        raise CaseReviewError(f"cannot write {out}: {exc.strerror}") from None
    _emit({"file": str(out), "cases": [m.reference for m in matches], "bytes": len(content)})


COMMANDS = [sar_group]
