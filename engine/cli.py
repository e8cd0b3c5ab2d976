"""The `casereview` command: JSON on stdout, human messages on stderr, exit codes by error kind
(2 invalid input, 3 not allowed, 4 task no longer ready, 5 not found, 6 conflict)."""
from __future__ import annotations

import functools
import json
import sys
import time
from typing import Any, Callable

import click
from sqlalchemy.exc import OperationalError

from .clock import FixedClock, parse_instant
from .config import Settings
from .errors import CaseReviewError, InvalidData, NotInitialised
from .inputs import parse_json
from .service import APPLICANT, Actor, CaseReview


def _emit(value: Any) -> None:
    click.echo(json.dumps(value, indent=None, sort_keys=False, default=str))


def _service(clock=None) -> CaseReview:
    import os

    settings = Settings.from_env()
    if clock is None and os.environ.get("CASEREVIEW_CLOCK"):
        clock = FixedClock(parse_instant(os.environ["CASEREVIEW_CLOCK"]))
    return CaseReview(settings, clock)


def _read_json(source: str, what: str) -> Any:
    try:
        text = sys.stdin.read() if source == "-" else open(source, encoding="utf-8").read()
    except OSError as exc:
        raise CaseReviewError(f"cannot read {what} {source}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise InvalidData([{"field": "(input)", "message": "not valid JSON: it is not UTF-8 text"}],
                          f"The {what} is not valid JSON") from None
    return parse_json(text, f"The {what}")


def handles_errors(command: Callable) -> Callable:
    """Turn domain errors into a message on stderr and the contract's exit status."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except InvalidData as exc:
            click.echo(json.dumps({"errors": exc.errors}), err=True)
            sys.exit(exc.exit_code)
        except CaseReviewError as exc:
            click.echo(f"casereview: {exc.message}", err=True)
            sys.exit(exc.exit_code)
        except OperationalError as exc:
            click.echo(f"casereview: cannot use the database: {exc.orig}", err=True)
            sys.exit(1)

    return wrapper


def _actor(service: CaseReview, user_email: str | None, applicant: bool) -> Actor:
    from .accounts import require_user

    if applicant:
        return APPLICANT
    if not user_email:
        raise CaseReviewError("say who is acting: --user EMAIL or --applicant")
    with service.sessions() as db:
        user = require_user(db, user_email)
        db.expunge(user)
    return Actor(user.email, user)


@click.group()
def main() -> None:
    """ASB case reviews: initialise, seed, drive cases and run the worker."""


@main.command()
@handles_errors
def init() -> None:
    """Create or upgrade the schema and publish the shipped processes (idempotent)."""
    result = _service().init()
    click.echo(f"Database ready; process version {result['version']}"
               + (" published" if result["published"] else " already current"), err=True)
    _emit(result)


@main.command("seed-demo")
@handles_errors
def seed_demo() -> None:
    """Demo agencies, users and cases at different stages (idempotent)."""
    from .demo import seed

    service = _service()
    result = seed(service)
    click.echo(f"Demo password for every demo account: {service.settings.demo_password}", err=True)
    _emit(result)


def _initialised(service: CaseReview) -> CaseReview:
    """Commands that need the published process set up a fresh database first (init is idempotent)."""
    from sqlalchemy import inspect

    if not inspect(service.engine).has_table("process_version"):
        service.init()
    return service


@main.command("threshold-check")
@handles_errors
def threshold_check() -> None:
    """Read {application_date, incidents} on stdin and print the threshold result."""
    payload = _read_json("-", "request")
    service = _initialised(_service())
    try:
        _emit(service.threshold_check(payload))
    except NotInitialised:
        service.init()
        _emit(service.threshold_check(payload))


@main.command()
@click.option("--file", "source", required=True, help="JSON application; - for stdin")
@handles_errors
def apply(source: str) -> None:
    """Start a case from an application."""
    _emit(_initialised(_service()).apply(_read_json(source, "application")))


@main.command()
@click.option("--case", "reference")
@click.option("--user", "user_email")
@click.option("--json", "as_json", is_flag=True, help="JSON output (the default)")
@handles_errors
def tasks(reference: str | None, user_email: str | None, as_json: bool) -> None:
    """Ready tasks, optionally of one case or those one user may complete."""
    from .queries import ready_tasks

    service = _service()
    actor = _actor(service, user_email, False) if user_email else None
    with service.sessions() as db:
        _emit(ready_tasks(db, reference=reference, actor=actor))


@main.command()
@click.argument("task_id")
@click.option("--user", "user_email")
@click.option("--applicant", is_flag=True)
@click.option("--data-file", "source", required=True, help="JSON form data; - for stdin")
@handles_errors
def complete(task_id: str, user_email: str | None, applicant: bool, source: str) -> None:
    """Validate and complete a task."""
    if bool(user_email) == applicant:
        raise CaseReviewError("give exactly one of --user EMAIL or --applicant")
    service = _service()
    data = _read_json(source, "data")
    _emit(service.complete(task_id, _actor(service, user_email, applicant), data))


@main.command()
@click.argument("reference")
@click.option("--json", "as_json", is_flag=True, help="JSON output (the default)")
@handles_errors
def case(reference: str, as_json: bool) -> None:
    """A case: status, stage, threshold, actions, letters and history."""
    from .queries import case_view

    with _service().sessions() as db:
        _emit(case_view(db, reference))


@main.command()
@click.option("--at", "at", required=True, help="ISO 8601 instant")
@handles_errors
def wake(at: str) -> None:
    """Fire every timer due at that instant, as the worker would."""
    try:
        instant = parse_instant(at)
    except ValueError as exc:
        raise InvalidData([{"field": "--at", "message": str(exc)}], "The time is not valid") from None
    _emit({"fired": _service(FixedClock(instant)).fire_due_timers()})


@main.command()
@click.option("--once", is_flag=True, help="one pass, then exit")
@click.option("--interval", default=15.0, show_default=True, help="seconds between passes")
@handles_errors
def worker(once: bool, interval: float) -> None:
    """Fire due timers and deliver the outbox, in a loop."""
    from .worker import run_pass

    service = _service()
    while True:
        result = run_pass(service)
        if once:
            _emit(result)
            return
        if result["fired"] or result["sent"]:
            click.echo(f"fired {result['fired']} timer(s), sent {result['sent']} message(s)", err=True)
        time.sleep(interval)


@main.command()
@click.argument("reference")
@click.option("--reason", default="", help="why (recorded on the case)")
@handles_errors
def withdraw(reference: str, reason: str) -> None:
    """Withdraw a case: everything stops, with a letter and a record."""
    _emit(_service().withdraw(reference, reason=reason))


@main.command()
@click.argument("reference")
@click.option("--reason", required=True)
@handles_errors
def escalate(reference: str, reason: str) -> None:
    """Ask for an escalation of how the case review was handled."""
    _emit(_service().escalate(reference, reason))


@main.command("create-user")
@click.argument("email")
@click.option("--role", required=True)
@click.option("--agency", "agency", default=None)
@click.option("--name", default=None)
@click.option("--password", default=None, help="initial password (else the user cannot sign in yet)")
@handles_errors
def create_user(email: str, role: str, agency: str | None, name: str | None, password: str | None) -> None:
    """Create a user account."""
    from . import audit
    from .accounts import create_user as create

    service = _service()
    with service.transaction() as db:
        user, created = create(db, email, role, agency=agency, name=name, password=password, now=service.now())
        if created:
            audit.record(db, at=service.now(), actor="cli", event="user_created",
                         detail={"email": user.email, "role": user.role, "agency": user.agency})
        _emit({"email": user.email, "role": user.role, "agency": user.agency, "created": created})


@main.group()
def token() -> None:
    """API bearer tokens."""


@token.command("create")
@click.option("--user", "user_email", required=True)
@handles_errors
def token_create(user_email: str) -> None:
    """Create a token for a user; prints the token alone (it is not shown again)."""
    from . import audit
    from .tokens import create_token

    service = _service()
    with service.transaction() as db:
        value = create_token(db, user_email, service.now())
        audit.record(db, at=service.now(), actor="cli", event="api_token_created", detail={"user": user_email})
    click.echo(value)


@token.command("revoke")
@click.argument("value", required=False)
@click.option("--user", "user_email", default=None, help="revoke every token of this user")
@handles_errors
def token_revoke(value: str | None, user_email: str | None) -> None:
    """Revoke one token, or all of a user's tokens."""
    from . import audit
    from .tokens import revoke

    service = _service()
    with service.transaction() as db:
        count = revoke(db, token=value, email=user_email, now=service.now())
        audit.record(db, at=service.now(), actor="cli", event="api_token_revoked",
                     detail={"user": user_email, "count": count})
    _emit({"revoked": count})


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--debug", is_flag=True, help="Flask's development server with reloading")
@click.option("--worker/--no-worker", default=True, show_default=True,
              help="also fire timers and deliver letters in this process")
@handles_errors
def serve(host: str, port: int, debug: bool, worker: bool) -> None:
    """Serve the web app (waitress; the Flask debug server only with --debug)."""
    from web import create_app

    service = _service()
    app = create_app(service=service)
    if worker:
        from .worker import start_in_background

        start_in_background(service)
    click.echo(f"Serving on http://{host}:{port}", err=True)
    if debug:
        app.run(host=host, port=port, debug=True)
    else:
        from waitress import serve as waitress_serve

        waitress_serve(app, host=host, port=port, threads=8)


def _register_feature_commands() -> None:
    """Each module in engine/commands/ lists its click commands in COMMANDS; add them to `main`."""
    import importlib
    import pkgutil

    from . import commands

    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda item: item.name):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        for command in module.COMMANDS:
            main.add_command(command)


_register_feature_commands()

if __name__ == "__main__":  # pragma: no cover
    main()
