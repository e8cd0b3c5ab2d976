"""`casereview retention run [--dry-run]`: anonymise closed cases past the retention period."""
from __future__ import annotations

import click

from engine.cli import _emit, _service, handles_errors


@click.group("retention")
def retention_group() -> None:
    """Retention of closed cases (CASEREVIEW_RETENTION_YEARS after closure, 6 by default)."""


@retention_group.command("run")
@click.option("--dry-run", is_flag=True, help="list the cases and fields that would be anonymised; change nothing")
@handles_errors
def run(dry_run: bool) -> None:
    """Anonymise the personal data of closed and withdrawn cases past the retention period."""
    from engine import retention

    result = retention.run(_service(), dry_run=dry_run, actor="cli")
    verb = "would be anonymised" if dry_run else "anonymised"
    click.echo(f"{len(result['cases'])} case(s) closed by {result['closed_before'][:10]} {verb}", err=True)
    _emit(result)


COMMANDS = [retention_group]
