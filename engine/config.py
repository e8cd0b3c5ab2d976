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


# The demo's contact details (telephone numbers from Ofcom's drama range, an address that does
# not exist): a real service sets its own through CASEREVIEW_SERVICE_*.
DEMO_SERVICE = {
    "name": "ASB case review",
    "phone": "01632 960 100",
    "email": "asb.casereview@example.org",
    "address": "ASB case review coordinator, Office of the Police and Crime Commissioner, 1 County Hall, "
               "Exampleton, EX1 9ZZ",
}


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
    # How the public reaches the service: on the start page, the confirmation, the tracking pages,
    # the privacy and accessibility pages and every letter. The defaults are the demo's.
    service_name: str = DEMO_SERVICE["name"]
    service_phone: str = DEMO_SERVICE["phone"]
    service_email: str = DEMO_SERVICE["email"]
    service_address: str = DEMO_SERVICE["address"]
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
            service_name=_env("SERVICE_NAME") or DEMO_SERVICE["name"],
            service_phone=_env("SERVICE_PHONE") or DEMO_SERVICE["phone"],
            service_email=_env("SERVICE_EMAIL") or DEMO_SERVICE["email"],
            service_address=_env("SERVICE_ADDRESS") or DEMO_SERVICE["address"],
        )

    @property
    def service(self) -> dict[str, str]:
        """The service's name and contact details as letters and pages use them:
        `service.name`, `service.phone`, `service.email`, `service.address`."""
        return {"name": self.service_name, "phone": self.service_phone, "email": self.service_email,
                "address": self.service_address}


def _https(setting: str | None, base_url: str | None) -> bool:
    """CASEREVIEW_HTTPS if given; otherwise on unless the service is addressed over plain http
    (the demo's http://127.0.0.1:5000), so a real deployment is secure by default."""
    if setting:
        return setting.strip().lower() in ("1", "true", "yes", "on")
    return not (base_url or "http://").lower().startswith("http://")
