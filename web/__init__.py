"""The Flask app: staff sign-in, inbox, task and case pages (the public side and the API follow)."""
from __future__ import annotations

import secrets
from datetime import timedelta
from pathlib import Path

from flask import Flask, abort, jsonify, render_template, send_from_directory
from flask_wtf.csrf import CSRFProtect
from jinja2 import ChoiceLoader, FileSystemLoader, PackageLoader, PrefixLoader
from sqlalchemy import text

from engine.config import Settings, default_instance_dir
from engine.documents import FILES_PER_REQUEST, request_limit
from engine.service import CaseReview

HERE = Path(__file__).resolve().parent
csrf = CSRFProtect()

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def _secret_key() -> str:
    """CASEREVIEW_SECRET_KEY, or a random key kept in instance/ so sessions survive restarts."""
    import os

    if os.environ.get("CASEREVIEW_SECRET_KEY"):
        return os.environ["CASEREVIEW_SECRET_KEY"]
    path = default_instance_dir() / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


def create_app(settings: Settings | None = None, service: CaseReview | None = None, *,
               config: dict | None = None) -> Flask:
    app = Flask(__name__, static_folder=str(HERE / "static"), static_url_path="/static")
    service = service or CaseReview(settings or Settings.from_env())
    app.extensions["casereview"] = service
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=timedelta(minutes=30),
        WTF_CSRF_TIME_LIMIT=None,  # the session's own expiry bounds the token
        MAX_CONTENT_LENGTH=request_limit(service.settings),  # a form's worth of the largest uploads
        SESSION_COOKIE_SECURE=service.settings.https,
        REMEMBER_COOKIE_SECURE=service.settings.https,
    )
    app.config.update(config or {})
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _secret_key()
    app.jinja_loader = ChoiceLoader([FileSystemLoader(str(HERE / "templates")),
                                     PrefixLoader({"govuk_frontend_jinja": PackageLoader("govuk_frontend_jinja")})])
    app.jinja_env.globals["service_name"] = service.settings.service_name
    app.jinja_env.globals["service"] = service.settings.service  # name, phone, email, address
    app.jinja_env.filters["long_date"] = long_date
    csrf.init_app(app)
    from . import input_guard

    input_guard.init_app(app)  # before the blueprints: their routes use its integer converter

    from . import admin, api, auth, cases, coordinator, tasks
    from . import apply as apply_journey
    from . import letters
    from . import consent, track
    from . import reports
    from . import audit_viewer, subject_access
    from . import documents
    from . import studio
    from . import public

    auth.init_app(app)
    csrf.exempt(api.blueprint)  # bearer tokens, not cookies: no cross-site request can carry one
    app.register_blueprint(api.blueprint)
    app.register_blueprint(auth.blueprint)
    app.register_blueprint(tasks.blueprint)
    app.register_blueprint(cases.blueprint)
    app.register_blueprint(coordinator.blueprint)
    app.register_blueprint(admin.blueprint)
    app.register_blueprint(apply_journey.blueprint)
    app.register_blueprint(letters.blueprint)
    app.register_blueprint(track.blueprint)
    app.register_blueprint(consent.blueprint)
    app.register_blueprint(reports.blueprint)
    app.register_blueprint(audit_viewer.blueprint)
    app.register_blueprint(subject_access.blueprint)
    app.register_blueprint(documents.blueprint)
    app.register_blueprint(studio.blueprint)
    app.register_blueprint(public.blueprint)
    auth.throttle_sign_in(app)

    @app.get("/assets/<path:filename>")
    def govuk_assets(filename: str):
        """GOV.UK Frontend's and the MOJ Pattern Library's stylesheets ask for their fonts and images
        under /assets; GOV.UK's own come first, then MOJ's icons."""
        vendor = HERE / "static" / "vendor"
        for package in ("govuk", "moj"):
            if (vendor / package / "assets" / filename).is_file():
                return send_from_directory(vendor / package / "assets", filename)
        abort(404)

    @app.get("/health")
    def health():
        try:
            with service.sessions() as db:
                db.execute(text("SELECT 1"))
                versions = db.execute(text("SELECT count(*) FROM process_version")).scalar_one()
        except Exception as exc:  # the page exists to report exactly this
            return jsonify(status="error", database=type(exc).__name__), 503
        return jsonify(status="ok", database="ok", process_versions=versions)

    @app.get("/")
    def index():
        return render_template("index.html")

    for status, title in ((403, "You cannot see this page"), (404, "Page not found"),
                          (409, "This has changed"), (429, "Too many attempts")):
        app.register_error_handler(status, _error_page(status, title))

    @app.errorhandler(413)
    def too_large(_error):
        return render_template("error.html", title="The files you selected are too big", description=(
            f"Nothing was saved. Each file must be smaller than {service.settings.upload_max_mb}MB, and a form can "
            f"send up to {FILES_PER_REQUEST} files that size at once. Go back and add fewer files at a time.")), 413

    @app.after_request
    def security_headers(response):
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        if response.mimetype == "text/html":
            response.headers.setdefault("Cache-Control", "no-store")
        if service.settings.https:
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        return response

    return app


def long_date(value) -> str:
    """'26 November 2026' from a date, a datetime or an ISO string (GOV.UK date style); '–' if empty."""
    from datetime import date, datetime

    if not value:
        return "–"
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value) if "T" in value else date.fromisoformat(value)
        except ValueError:
            return value
    text = f"{value.day} {value:%B %Y}"
    return f"{text} {value:%H:%M}" if isinstance(value, datetime) else text


# What a person can do next, when a page gives them nothing else to say.
ERROR_WORDS = {
    403: "Your account does not let you use this page: each role sees the pages its work needs. If you need it "
         "for your work, ask an administrator to change your account.",
    404: "Check the address is right. If you followed a link, what it pointed to may have been removed, or may be "
         "something your account cannot see.",
    409: "Someone else changed this a moment ago. Go back, reload the page and try again.",
    429: "Wait 15 minutes and try again.",
}


def _error_page(status: int, title: str):
    def handler(error):
        description = getattr(error, "description", "") or ""
        if description == type(error).description:  # werkzeug's own words, not this service's
            description = ""
        return render_template("error.html", title=title, description=description or ERROR_WORDS.get(status, ""),
                               status=status), status

    return handler


def service_of(app_or_none=None) -> CaseReview:
    from flask import current_app

    return (app_or_none or current_app).extensions["casereview"]
