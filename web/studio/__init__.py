"""The process studio: process owners change diagrams, decision tables, forms and letters in a
draft, check it, publish it as a new version, compare and roll back versions, and move running
cases to a new version.

Every page is for the `owner` role only (checked once, at the blueprint's door, for every
route). The pages call engine.studio for everything that changes or judges a bundle (drafts,
validation, publishing, diffs, case moves, zips), so each change is audited by the engine
exactly as the command line's are. Two things happen here because they are about editing, not
about bundles: rewriting task and timer properties in the BPMN XML (bpmnprops.py) and editing
a form's schema field by field (formschema.py); their results are saved through the engine's
draft functions like any other edit.

Modules: home.py (studio home, new drafts, import and export), drafts.py (a draft's files, the
modelers, letters, check, publish), properties.py (task and timer properties without XML),
forms.py (the form editor), history.py (versions, differences, roll back), migration.py
(running cases).
"""
from __future__ import annotations

from datetime import datetime

from flask import Blueprint, abort, current_app, render_template
from flask_login import current_user

from engine.errors import NotFound
from engine.studio import ProcessDraft, get_draft

blueprint = Blueprint("studio", __name__, url_prefix="/studio")
ROLE = "owner"


@blueprint.before_request
def owners_only():
    """Sign-in first; then only process owners, whatever the route."""
    if not current_user.is_authenticated:
        return current_app.login_manager.unauthorized()
    if current_user.role != ROLE or not current_user.is_active:
        abort(403, "The process studio is for process owners.")
    return None


@blueprint.app_template_filter("studio_when")
def when(value) -> str:
    """An ISO string or datetime as '2 March 2026, 09:00 UTC'."""
    if not value:
        return ""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.strftime("%-d %B %Y, %H:%M UTC")


def service():
    return current_app.extensions["casereview"]


def who() -> str:
    return current_user.email


def load_draft(draft_id: int) -> ProcessDraft:
    with service().sessions() as db:
        try:
            draft = get_draft(db, draft_id)
        except NotFound:
            abort(404, f"There is no draft {draft_id}.")
        db.expunge(draft)
        return draft


def require_open(draft: ProcessDraft) -> None:
    """A published draft is read-only: say which version it became."""
    if draft.published_as is not None:
        abort(409, f"Draft {draft.id} was published as version {draft.published_as} and cannot change. "
                   "Start a new draft from the studio home page.")


def require_file(draft: ProcessDraft, name: str, *suffixes: str) -> str:
    if name not in draft.files or (suffixes and not name.endswith(suffixes)):
        abort(404, f"Draft {draft.id} has no file {name}.")
    return draft.files[name]


def conflict(message: str):
    return render_template("error.html", title="This draft has changed", description=message), 409


from . import drafts, forms, history, home, migration, properties  # noqa: E402,F401  (the routes)
