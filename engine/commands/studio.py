"""Process studio commands: validate, publish, export, history, diff, roll back, migrate cases."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from ..cli import _emit, _initialised, _service, handles_errors
from ..errors import InvalidData, InvalidProcess
from ..versions import BUNDLE
from .. import studio


def _fail_with_lines(lines: list[str], status: int = 2) -> None:
    for line in lines:
        click.echo(line, err=True)
    sys.exit(status)


def _read(path: str) -> dict[str, str]:
    try:
        return studio.read_bundle(path)
    except InvalidData as exc:
        _fail_with_lines([f"{e['field']}: {e['message']}" for e in exc.errors])
        raise  # _fail_with_lines exits


def _problems_or_exit(call):
    """Run `call`; on validation problems print one per line on stderr and exit 2."""
    try:
        return call()
    except studio.BundleInvalid as exc:
        _fail_with_lines([p.line() for p in exc.problems])
    except InvalidData as exc:
        _fail_with_lines([f"{e['field']}: {e['message']}" for e in exc.errors])
    except InvalidProcess as exc:
        _fail_with_lines([f"{e.get('file') or '(bundle)'}: {e.get('element') or '-'}: "
                          f"{e.get('rule', 'compile')}: {e['message']}" for e in exc.errors])


@click.command("validate")
@click.argument("path")
@click.option("--no-dry-run", is_flag=True, help="skip running the demo applications through the bundle")
@handles_errors
def validate(path: str, no_dry_run: bool) -> None:
    """Run every validation on a folder or .zip; problems one per line on stderr (exit 2)."""
    problems = studio.validate_bundle(_read(path), dry_run=not no_dry_run)
    if problems:
        _fail_with_lines([p.line() for p in problems])
    _emit({"problems": 0})


@click.command("publish")
@click.argument("path")
@click.option("--note", required=True, help="what changed and why (shown in the version history)")
@click.option("--by", "by", default="cli", show_default=True, help="who is publishing")
@handles_errors
def publish(path: str, note: str, by: str) -> None:
    """Validate a folder or .zip (processes/ + forms/) and publish it as a new version."""
    files = _read(path)
    service = _initialised(_service())
    version, created = _problems_or_exit(lambda: studio.publish_bundle(service, files, note=note, by=by))
    if not created:
        click.echo(f"Version {version.number} already holds these files; nothing published", err=True)
    _emit({"version": version.number, "bundle": version.bundle, "published": created})


@click.command("export")
@click.argument("process_id")
@click.option("--version", "number", type=int, default=None, help="version number (default: the latest)")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False), help="the .zip to write")
@handles_errors
def export(process_id: str, number: int | None, out: str) -> None:
    """Write the bundle of the version holding PROCESS_ID (BPMN, DMN, forms, letters) as a .zip."""
    service = _initialised(_service())
    with service.sessions() as db:
        row = studio.version_holding(db, process_id, number)
        files, bundle, found = dict(row.files), row.bundle, row.number
    Path(out).write_bytes(studio.write_zip(files))
    _emit({"process": process_id, "bundle": bundle, "version": found, "out": out, "files": len(files)})


@click.command("versions")
@click.option("--bundle", default=BUNDLE, show_default=True)
@handles_errors
def history(bundle: str) -> None:
    """Published versions, newest first: who, when, the note, how many cases use each."""
    with _initialised(_service()).sessions() as db:
        _emit(studio.version_history(db, bundle))


@click.command("diff")
@click.argument("version_a", type=int)
@click.argument("version_b", type=int)
@click.option("--json", "as_json", is_flag=True, help="the structured diff instead of lines")
@handles_errors
def diff(version_a: int, version_b: int, as_json: bool) -> None:
    """What changed from VERSION_A to VERSION_B: elements, flows, rules, form fields, letters."""
    with _initialised(_service()).sessions() as db:
        files_a = dict(studio.get_version(db, version_a).files)
        files_b = dict(studio.get_version(db, version_b).files)
    result = studio.diff_versions(files_a, files_b)
    if as_json:
        _emit(result)
    else:
        for line in studio.diff_lines(result):
            click.echo(line)


@click.command("rollback")
@click.argument("version", type=int)
@click.option("--note", required=True)
@click.option("--by", "by", default="cli", show_default=True)
@handles_errors
def rollback(version: int, note: str, by: str) -> None:
    """Publish the files of an earlier VERSION again, as a new version."""
    service = _initialised(_service())
    row = _problems_or_exit(lambda: studio.publish_again(service, version, note=note, by=by))
    _emit({"version": row.number, "bundle": row.bundle, "published": True, "republished_from": version})


@click.command("migrate-cases")
@click.option("--from", "from_version", type=int, required=True)
@click.option("--to", "to_version", type=int, required=True)
@click.option("--apply", "apply_moves", is_flag=True, help="move the movable cases (default: only show the plan)")
@click.option("--case", "references", multiple=True, help="only these cases (repeat the option)")
@click.option("--by", "by", default="cli", show_default=True)
@handles_errors
def migrate(from_version: int, to_version: int, apply_moves: bool, references: tuple[str, ...], by: str) -> None:
    """Which open cases on --from can move to --to (and why not); --apply moves them."""
    service = _initialised(_service())
    with service.sessions() as db:
        plan = studio.migration_plan(db, from_version, to_version, references=list(references) or None)
    if not apply_moves:
        _emit(plan)
        return
    result = studio.migrate_cases(service, [item["reference"] for item in plan], to_version, by=by)
    for item in result["refused"]:
        click.echo(f"{item['reference']}: not moved: {'; '.join(item['reasons'])}", err=True)
    _emit(result)


COMMANDS = [validate, publish, export, history, diff, rollback, migrate]
