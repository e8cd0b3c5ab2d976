"""The Flask app. This issue ships the factory and a health page; the staff pages follow."""
from __future__ import annotations

from flask import Flask, jsonify
from sqlalchemy import text

from engine.config import Settings
from engine.service import CaseReview


def create_app(settings: Settings | None = None, service: CaseReview | None = None) -> Flask:
    app = Flask(__name__)
    service = service or CaseReview(settings or Settings.from_env())
    app.extensions["casereview"] = service

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
        return (
            "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>ASB case review</title></head>"
            "<body><main><h1>ASB case review</h1><p>The service is running. "
            "Staff pages are being built; see <a href='/health'>service health</a>.</p></main></body></html>"
        )

    @app.after_request
    def security_headers(response):
        response.headers.setdefault("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        return response

    return app
