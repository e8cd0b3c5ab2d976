"""Staff accounts: sign in (throttled, with an optional second factor), sign out, change password.

Sessions are held on the server (engine/staff_sessions.py): the cookie carries a token that
works only while its session is open. Sign-in is throttled with Flask-Limiter by source address
and, progressively, by account; the account itself is never locked, so a stranger who knows an
email address cannot keep its owner out, and unknown and known accounts get the same answers."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from functools import wraps
from urllib.parse import urlparse

import pyotp
from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, session, url_for
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager, UserMixin, current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, Length

from engine import staff_sessions
from engine.accounts import check_password, find_user, hash_password
from engine.models import User
from engine.service import Actor

blueprint = Blueprint("auth", __name__)
login_manager = LoginManager()
login_manager.login_view = "auth.sign_in"
login_manager.login_message = "Sign in to continue."
login_manager.session_protection = "strong"

# Every sign-in attempt from one address; failed attempts on one account from one address, more
# slowly the more there are (unknown accounts counted the same, so the answers say nothing about
# who has one). Nothing locks an account: its owner elsewhere is never kept out.
SIGN_IN_LIMIT_PER_ADDRESS = "20 per 5 minutes"
SIGN_IN_LIMITS_PER_ACCOUNT = "5 per minute; 10 per 15 minutes; 20 per hour; 50 per day"
SECOND_FACTOR_LIMITS = "5 per minute; 20 per hour"  # six digits must not be guessable
TOO_MANY = "There have been too many sign-in attempts. Wait a few minutes, then try again."
SESSION_TOKEN = "staff_session"


@dataclass
class SignedInUser(UserMixin):
    id: int
    email: str
    name: str
    role: str
    agency: str | None
    active: bool

    @property
    def is_active(self) -> bool:  # Flask-Login refuses inactive users
        return self.active

    def get_id(self) -> str:
        return str(self.id)

    @property
    def actor(self) -> Actor:
        return Actor(self.email, self)

    @classmethod
    def of(cls, user: User) -> "SignedInUser":
        return cls(user.id, user.email, user.name, user.role, user.agency, user.active)


def init_app(app) -> None:
    login_manager.init_app(app)
    app.jinja_env.globals["home_page"] = home_page


def throttle_sign_in(app) -> None:
    """Flask-Limiter on the sign-in views, once the blueprint is registered (this app's own storage:
    storage shared between processes is a setting of the deployment)."""
    limiter = Limiter(get_remote_address, app=app, storage_uri=app.config.get("RATELIMIT_STORAGE_URI", "memory://"),
                      headers_enabled=False)
    app.extensions["sign_in_limiter"] = limiter
    failed = lambda response: response.status_code != 302  # noqa: E731 - a success is not held against anyone
    views = app.view_functions
    views["auth.sign_in"] = limiter.limit(
        SIGN_IN_LIMIT_PER_ADDRESS, methods=["POST"], error_message=TOO_MANY)(
        limiter.limit(SIGN_IN_LIMITS_PER_ACCOUNT, key_func=_account_key, methods=["POST"], deduct_when=failed,
                      error_message=TOO_MANY)(views["auth.sign_in"]))
    views["auth.second_factor"] = limiter.limit(
        SECOND_FACTOR_LIMITS, key_func=lambda: f"code:{session.get('pending_user_id')}", methods=["POST"],
        deduct_when=failed, error_message=TOO_MANY)(views["auth.second_factor"])


def _wall_clock() -> datetime:
    """Sessions expire in real time, whatever the service's (possibly fixed, demo) case clock says."""
    return datetime.now(timezone.utc)


def _account_key() -> str:
    """Failed attempts on one account from one address: guesses from a stranger's connection slow
    the stranger, never the account's owner signing in from their own."""
    email = (request.form.get("email") or "").strip().lower()[:320]
    return f"account:{email}:{get_remote_address()}"


@login_manager.user_loader
def load_user(user_id: str):
    """The signed-in user, only while the session this cookie names is open on the server."""
    if not user_id.isdigit():
        return None
    service = current_app.extensions["casereview"]
    with service.sessions() as db:
        user = staff_sessions.user_of(db, session.get(SESSION_TOKEN), int(user_id), _wall_clock())
        signed_in = SignedInUser.of(user) if user is not None else None
        db.commit()  # an idle session ended, or its last use noted
    return signed_in


def roles_required(*roles: str):
    """Declare who may use a view, at the door."""

    def decorate(view):
        @wraps(view)
        @login_required
        def guarded(*args, **kwargs):
            if current_user.role not in roles:
                abort(403)
            return view(*args, **kwargs)

        return guarded

    return decorate


class SignInForm(FlaskForm):
    email = EmailField("Email address", validators=[DataRequired("Enter your email address")])
    password = PasswordField("Password", validators=[DataRequired("Enter your password")])


class SecondFactorForm(FlaskForm):
    code = StringField("Security code", validators=[DataRequired("Enter the 6-digit code from your app"),
                                                     Length(min=6, max=6, message="The code has 6 digits")])


class ChangePasswordForm(FlaskForm):
    current = PasswordField("Current password", validators=[DataRequired("Enter your current password")])
    new = PasswordField("New password", validators=[
        DataRequired("Enter a new password"), Length(min=12, message="Use at least 12 characters")])
    confirm = PasswordField("Confirm new password", validators=[EqualTo("new", message="The passwords do not match")])


def error_items(form: FlaskForm, error: str | None, first_field: str) -> list[dict]:
    """GOV.UK error summary entries, each linking to its field."""
    items = [{"text": error, "href": f"#{first_field}"}] if error else []
    items += [{"text": f.errors[0], "href": f"#{f.id}"} for f in form if f.errors and f.name != "csrf_token"]
    return items


# Where each role starts after signing in (and the home page's button).
HOME_PAGES = {"owner": "studio.home", "admin": "admin.index"}


def home_page(user) -> str:
    return url_for(HOME_PAGES.get(user.role, "tasks.inbox"))


def _safe_next(target: str | None, user) -> str:
    if (target and target.isprintable() and not urlparse(target).netloc and target.startswith("/")
            and not target.startswith("//") and "\\" not in target):
        return target
    return home_page(user)


@blueprint.route("/sign-in", methods=["GET", "POST"])
def sign_in():
    form = SignInForm()
    error = None
    if form.validate_on_submit():
        service = current_app.extensions["casereview"]
        with service.transaction() as db:
            user = find_user(db, form.email.data)
            if user is None or not user.active or not check_password(user, form.password.data):
                error = "Enter a correct email address and password"
                if user is not None:
                    user.failed_sign_ins = (user.failed_sign_ins or 0) + 1  # for administrators to see
            else:
                user.failed_sign_ins, user.locked_until = 0, None
                signed_in = SignedInUser.of(user)
                if user.totp_secret:
                    session["pending_user_id"] = user.id
                    session["pending_next"] = request.args.get("next")
                    return redirect(url_for("auth.second_factor"))
        if error is None:
            return _complete_sign_in(signed_in, request.args.get("next"))
    status = 200 if error is None and not form.errors else 400
    return render_template("sign_in.html", form=form, error=error,
                           error_items=error_items(form, error, "email")), status


def _complete_sign_in(user: SignedInUser, next_url: str | None):
    service = current_app.extensions["casereview"]
    with service.transaction() as db:
        token = staff_sessions.start(db, user.id, _wall_clock())
    session.clear()  # nothing from before sign-in carries over (no session fixation)
    session.permanent = True
    session[SESSION_TOKEN] = token
    login_user(user)
    return redirect(_safe_next(next_url, user))


@blueprint.route("/sign-in/code", methods=["GET", "POST"])
def second_factor():
    user_id = session.get("pending_user_id")
    if not user_id:
        return redirect(url_for("auth.sign_in"))
    form = SecondFactorForm()
    error = None
    if form.validate_on_submit():
        service = current_app.extensions["casereview"]
        with service.sessions() as db:
            user = db.get(User, user_id)
            if user is not None and user.active and user.totp_secret and pyotp.TOTP(user.totp_secret).verify(form.code.data, valid_window=1):
                return _complete_sign_in(SignedInUser.of(user), session.get("pending_next"))
        error = "The code is not right. Enter the current code from your authenticator app."
    return render_template("second_factor.html", form=form, error=error,
                           error_items=error_items(form, error, "code")), (400 if error or form.errors else 200)


@blueprint.post("/sign-out")
def sign_out():
    service = current_app.extensions["casereview"]
    with service.transaction() as db:
        staff_sessions.end(db, session.get(SESSION_TOKEN), _wall_clock())  # a copied cookie stops working too
    logout_user()
    session.clear()
    flash("You have signed out.")
    return redirect(url_for("auth.sign_in"))


@blueprint.route("/account/password", methods=["GET", "POST"])
@login_required
def change_password():
    form = ChangePasswordForm()
    error = None
    if form.validate_on_submit():
        service = current_app.extensions["casereview"]
        with service.transaction() as db:
            user = db.get(User, current_user.id)
            if not check_password(user, form.current.data):
                error = "Your current password is not right"
            else:
                user.password_hash = hash_password(form.new.data)
                staff_sessions.end_all(db, user.id, _wall_clock(), keep=session.get(SESSION_TOKEN))
        if error is None:
            flash("Your password has been changed. You have been signed out everywhere else.")
            return redirect(url_for("tasks.inbox"))
    return render_template("change_password.html", form=form, error=error,
                           error_items=error_items(form, error, "current")), (400 if error or form.errors else 200)
