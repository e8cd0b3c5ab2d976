"""`casereview audit verify`: check the audit trail's hash chain from its first row to its last."""
from __future__ import annotations

import sys

import click

from engine.audit import verify_chain
from engine.cli import _emit, _service, handles_errors


@click.group("audit")
def audit_group() -> None:
    """The audit trail."""


@audit_group.command("verify")
@click.option("--max-problems", default=20, show_default=True, help="stop listing broken rows after this many")
@handles_errors
def verify(max_problems: int) -> None:
    """Walk the chain: exit 0 when every row is intact, 1 with the first broken rows and why."""
    with _service().sessions() as db:
        report = verify_chain(db, max_problems=max_problems)
    _emit(report.as_dict())
    if not report.ok:
        first = report.problems[0]
        click.echo(f"casereview: the audit trail is broken at seq {first['seq']} (row {first['id']}): "
                   f"{first['why']}", err=True)
        sys.exit(1)


COMMANDS = [audit_group]
