"""The web app's factory and health page (the staff pages come with the web issue)."""
from __future__ import annotations

from web import create_app


def test_health_reports_database_and_versions(service):
    client = create_app(service=service).test_client()
    response = client.get("/health")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "ok", "process_versions": 1}
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_health_says_when_the_database_is_missing(settings, tmp_path):
    from engine.config import Settings

    broken = Settings(database_url=f"sqlite:///{tmp_path / 'empty.sqlite3'}", outbox_dir=tmp_path)
    response = create_app(broken).test_client().get("/health")
    assert response.status_code == 503
    assert response.get_json()["status"] == "error"
