"""Administration: accounts, roles and agencies. Deactivating keeps a person's history."""
from __future__ import annotations

import re
from datetime import datetime, timezone

import pyotp
from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from engine import staff_sessions, audit
from engine.accounts import ROLES, create_user, ensure_agency
from engine.errors import CaseReviewError, InvalidData
from engine.models import Agency, User

from .auth import roles_required

blueprint = Blueprint("admin", __name__, url_prefix="/admin")


def _service():
    return current_app.extensions["casereview"]


def _page(errors=None, values=None, status=200):
    with _service().sessions() as db:
        users = list(db.scalars(select(User).order_by(User.active.desc(), User.role, User.email)))
        agencies = list(db.scalars(select(Agency).order_by(Agency.name)))
    items = [{"text": e["message"], "href": f"#user-{e['field']}"} for e in errors or []]
    values = values or {}
    role_items = [{"value": r, "text": r.capitalize(), "selected": values.get("role") == r} for r in ROLES]
    agency_items = [{"value": "", "text": "None"}] + [
        {"value": a.code, "text": a.name, "selected": values.get("agency") == a.code} for a in agencies]
    return render_template("admin.html", title="Users and agencies", users=users, agencies=agencies,
                           role_items=role_items, agency_items=agency_items,
                           errors={e["field"]: e["message"] for e in errors or []}, values=values,
                           error_items=items or None), status


@blueprint.get("/")
@roles_required("admin")
def index():
    return _page()


@blueprint.post("/users")
@roles_required("admin")
def add_user():
    service = _service()
    form = {k: (request.form.get(k) or "").strip() for k in ("email", "name", "role", "agency")}
    try:
        with service.transaction() as db:
            user, created = create_user(db, form["email"], form["role"], agency=form["agency"] or None,
                                        name=form["name"] or None, now=service.now())
            if not created:
                raise CaseReviewError(f"{user.email} already has an account")
            audit.record(db, at=service.now(), actor=current_user.email, event="user_created",
                         detail={"email": user.email, "role": user.role, "agency": user.agency})
    except InvalidData as error:
        return _page(error.errors, form, 422)
    except CaseReviewError as error:
        return _page([{"field": "email", "message": error.message}], form, 422)
    flash(f"Account created for {form['email']}. They set a password with `casereview` or the password reset.")
    return redirect(url_for("admin.index"))


@blueprint.post("/users/<int:user_id>/active")
@roles_required("admin")
def set_active(user_id: int):
    service = _service()
    active = request.form.get("active") == "yes"
    with service.transaction() as db:
        user = db.get(User, user_id)
        if user is None or user.id == current_user.id:
            flash("You cannot change that account here.")
            return redirect(url_for("admin.index"))
        user.active = active
        if not active:
            staff_sessions.end_all(db, user.id, datetime.now(timezone.utc))  # signed out everywhere, now
        audit.record(db, at=service.now(), actor=current_user.email,
                     event="user_reactivated" if active else "user_deactivated", detail={"email": user.email})
        email = user.email
    flash(f"{email} can sign in again." if active else f"{email} can no longer sign in. Their history is kept.")
    return redirect(url_for("admin.index"))


@blueprint.post("/agencies")
@roles_required("admin")
def add_agency():
    service = _service()
    code = (request.form.get("code") or "").strip().lower()
    name = (request.form.get("name") or "").strip()
    email = (request.form.get("email") or "").strip() or None
    if not code.isidentifier() or not name:
        flash("An agency needs a short code (letters, numbers, underscores) and a name: it was not added.")
        return redirect(url_for("admin.index"))
    with service.transaction() as db:
        ensure_agency(db, code, name, email)
        audit.record(db, at=service.now(), actor=current_user.email, event="agency_added",
                     detail={"code": code, "name": name})
    flash(f"{name} added.")
    return redirect(url_for("admin.index"))


_BASE32_SECRET = re.compile(r"[A-Z2-7]{16,64}")  # what pyotp.random_base32 makes; anything else is not ours


@blueprint.route("/two-factor", methods=["GET", "POST"])
@roles_required("admin")
def two_factor():
    """Administrators can add an authenticator-app code to their sign-in."""
    service = _service()
    posted = (request.form.get("secret") or "").strip()
    secret = posted if _BASE32_SECRET.fullmatch(posted) else pyotp.random_base32()
    error = None
    if request.method == "POST" and secret != posted:
        error = "The set-up code was not recognised. Add the new code below to your app, then enter the code it shows."
    elif request.method == "POST":
        if pyotp.TOTP(secret).verify((request.form.get("code") or "").strip(), valid_window=1):
            with service.transaction() as db:
                db.get(User, current_user.id).totp_secret = secret
                audit.record(db, at=service.now(), actor=current_user.email, event="two_factor_enabled")
            flash("Your sign-in now asks for a code from your authenticator app.")
            return redirect(url_for("admin.index"))
        error = "The code is not right. Enter the code your app shows now."
    uri = pyotp.TOTP(secret).provisioning_uri(name=current_user.email, issuer_name="ASB case review")
    return render_template("two_factor.html", title="Set up a security code", secret=secret, uri=uri, error=error,
                           error_items=[{"text": error, "href": "#code"}] if error else None), (422 if error else 200)
