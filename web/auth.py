"""Staff accounts: sign in (with lock-out and an optional second factor), sign out, change password."""
from __future__ import annotations

import time
from collections import defaultdict, deque
from dataclasses import dataclass
from datetime import timedelta
from functools import wraps
from urllib.parse import urlparse

import pyotp
from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, session, url_for
from flask_login import LoginManager, UserMixin, current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, Length

from engine.accounts import check_password, find_user, hash_password
from engine.models import User
from engine.service import Actor

blueprint = Blueprint("auth", __name__)
login_manager = LoginManager()
login_manager.login_view = "auth.sign_in"
login_manager.login_message = "Sign in to continue."
login_manager.session_protection = "strong"

MAX_FAILED_SIGN_INS = 5
LOCK_OUT_FOR = timedelta(minutes=15)
# Per address: at most this many sign-in attempts in the window (one process; a proxy limits the rest).
ATTEMPTS_PER_ADDRESS, ATTEMPT_WINDOW_SECONDS = 20, 300


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
    app.extensions["sign_in_attempts"] = defaultdict(deque)
    app.jinja_env.globals["home_page"] = home_page


@login_manager.user_loader
def load_user(user_id: str):
    service = current_app.extensions["casereview"]
    with service.sessions() as db:
        user = db.get(User, int(user_id)) if user_id.isdigit() else None
        return SignedInUser.of(user) if user is not None and user.active else None


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


def _too_many_attempts(address: str) -> bool:
    now = time.monotonic()
    window = current_app.extensions["sign_in_attempts"][address]
    while window and window[0] < now - ATTEMPT_WINDOW_SECONDS:
        window.popleft()
    window.append(now)
    return len(window) > ATTEMPTS_PER_ADDRESS


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
        if _too_many_attempts(request.remote_addr or "?"):
            abort(429, "There have been too many sign-in attempts from your connection. Wait 5 minutes.")
        service = current_app.extensions["casereview"]
        with service.transaction() as db:
            user = find_user(db, form.email.data)
            now = service.now()
            if user is not None and user.locked_until and user.locked_until > now:
                error = "Your account is locked after too many failed attempts. Try again in 15 minutes."
            elif user is None or not user.active or not check_password(user, form.password.data):
                error = "Enter a correct email address and password"
                if user is not None:
                    user.failed_sign_ins = (user.failed_sign_ins or 0) + 1
                    if user.failed_sign_ins >= MAX_FAILED_SIGN_INS:
                        user.locked_until, user.failed_sign_ins = now + LOCK_OUT_FOR, 0
                        error = "Your account is locked after too many failed attempts. Try again in 15 minutes."
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
    session.clear()
    session.permanent = True
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
            if user is not None and user.totp_secret and pyotp.TOTP(user.totp_secret).verify(form.code.data, valid_window=1):
                return _complete_sign_in(SignedInUser.of(user), session.get("pending_next"))
        error = "The code is not right. Enter the current code from your authenticator app."
    return render_template("second_factor.html", form=form, error=error,
                           error_items=error_items(form, error, "code")), (400 if error or form.errors else 200)


@blueprint.post("/sign-out")
def sign_out():
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
        if error is None:
            flash("Your password has been changed.")
            return redirect(url_for("tasks.inbox"))
    return render_template("change_password.html", form=form, error=error,
                           error_items=error_items(form, error, "current")), (400 if error or form.errors else 200)
