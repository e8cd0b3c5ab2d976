"""Pages every public service needs: the accessibility statement, the privacy notice and cookies.

What they state comes from what the service really does: the contact details and the retention
period from the settings (CASEREVIEW_SERVICE_*, CASEREVIEW_RETENTION_YEARS), the agencies from
the database, the session cookie's name and lifetime from the app's own configuration.
"""
from __future__ import annotations

from datetime import date

from flask import Blueprint, current_app, render_template
from sqlalchemy import select

from engine import application_drafts
from engine.models import Agency

blueprint = Blueprint("public", __name__)

# When the accessibility statement was written and last reviewed (a person changes these when
# they review it; the model statement asks for both).
STATEMENT_PREPARED = date(2026, 12, 2)
STATEMENT_REVIEWED = date(2026, 12, 2)


def _service():
    return current_app.extensions["casereview"]


def _minutes(delta) -> int:
    return int(delta.total_seconds() // 60)


@blueprint.get("/accessibility-statement")
def accessibility():
    return render_template("public/accessibility.html", title="Accessibility statement",
                           prepared=STATEMENT_PREPARED, reviewed=STATEMENT_REVIEWED,
                           base_url=_service().settings.base_url)


@blueprint.get("/privacy-notice")
def privacy():
    service = _service()
    with service.sessions() as db:
        agencies = list(db.scalars(select(Agency.name).order_by(Agency.name)))
    return render_template("public/privacy.html", title="Privacy notice", agencies=agencies,
                           retention_years=service.settings.retention_years,
                           link_days=service.settings.link_days,
                           draft_hours=int(application_drafts.LIFETIME.total_seconds() // 3600))


@blueprint.get("/cookies")
def cookies():
    config = current_app.config
    return render_template("public/cookies.html", title="Cookies",
                           cookie_name=config.get("SESSION_COOKIE_NAME") or "session",
                           staff_minutes=_minutes(config["PERMANENT_SESSION_LIFETIME"]),
                           draft_hours=int(application_drafts.LIFETIME.total_seconds() // 3600))
