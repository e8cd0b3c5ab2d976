"""Settings read from the environment (prefix CASEREVIEW_), with defaults for a single office."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(f"CASEREVIEW_{name}", default)


def default_instance_dir() -> Path:
    return Path(_env("INSTANCE_DIR") or PROJECT_ROOT / "instance")


@dataclass(frozen=True)
class Settings:
    database_url: str
    outbox_dir: Path
    smtp_host: str | None = None
    smtp_port: int = 25
    notify_api_key: str | None = None  # GOV.UK Notify: chosen over SMTP when set
    notify_template_id: str | None = None  # an email template with ((subject)) and ((body))
    notify_base_url: str = "https://api.notifications.service.gov.uk"
    mail_from: str = "asb-case-review@localhost"
    coordinator_email: str = "coordinator@demo.test"
    demo_password: str = "demo-password-2026"
    script_time_limit: float = 1.0
    base_url: str = "http://127.0.0.1:5000"  # where applicants' private links in letters point
    link_days: int = 90  # how long a case-tracking link works
    retention_years: int = 6  # closed cases are anonymised this many years after closure
    upload_max_mb: int = 10  # the largest document a form upload or the API accepts
    https: bool = False  # served over HTTPS: cookies marked Secure, HSTS sent
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_env(cls) -> "Settings":
        instance = default_instance_dir()
        url = _env("DATABASE_URL") or f"sqlite:///{instance / 'casereview.sqlite3'}"
        return cls(
            database_url=url,
            outbox_dir=Path(_env("OUTBOX_DIR") or instance / "outbox"),
            smtp_host=_env("SMTP_HOST") or None,
            smtp_port=int(_env("SMTP_PORT", "25")),
            notify_api_key=_env("NOTIFY_API_KEY") or None,
            notify_template_id=_env("NOTIFY_TEMPLATE_ID") or None,
            notify_base_url=_env("NOTIFY_BASE_URL") or "https://api.notifications.service.gov.uk",
            mail_from=_env("MAIL_FROM", "asb-case-review@localhost"),
            coordinator_email=_env("COORDINATOR_EMAIL", "coordinator@demo.test"),
            demo_password=_env("DEMO_PASSWORD") or "demo-password-2026",
            base_url=(_env("BASE_URL") or "http://127.0.0.1:5000").rstrip("/"),
            link_days=int(_env("LINK_DAYS") or "90"),
            retention_years=int(_env("RETENTION_YEARS") or "6"),
            upload_max_mb=int(_env("UPLOAD_MAX_MB") or "10"),
            https=_https(_env("HTTPS"), _env("BASE_URL")),
        )


def _https(setting: str | None, base_url: str | None) -> bool:
    """CASEREVIEW_HTTPS if given; otherwise on unless the service is addressed over plain http
    (the demo's http://127.0.0.1:5000), so a real deployment is secure by default."""
    if setting:
        return setting.strip().lower() in ("1", "true", "yes", "on")
    return not (base_url or "http://").lower().startswith("http://")
