"""Demo agencies, accounts and cases at different stages (`casereview seed-demo`)."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from .accounts import create_user, ensure_agency, hash_password
from .models import Case
from .scenarios import Walker, application
from .service import CaseReview
from .studio import start_draft

AGENCIES = {
    "police": ("Exampleshire Police", "police@demo.test"),
    "council": ("Exampleton District Council", "council@demo.test"),
    "housing": ("Exampleton Homes", "housing@demo.test"),
    "fire": ("Exampleshire Fire and Rescue", "fire@demo.test"),
}
STAFF = {
    "coordinator@demo.test": ("coordinator", "Casey Coordinator"),
    "chair@demo.test": ("chair", "Pat Chair"),
    "reviewer@demo.test": ("reviewer", "Robin Reviewer"),
    "owner@demo.test": ("owner", "Olive Owner"),
    "admin@demo.test": ("admin", "Ade Admin"),
}


def seed(service: CaseReview) -> dict:
    created_users = seed_accounts(service)
    with service.sessions() as db:
        has_cases = db.scalar(select(Case.id).limit(1)) is not None
    references = [] if has_cases else _demo_cases(service)
    return {"users_created": created_users, "cases_created": references}


def seed_accounts(service: CaseReview) -> int:
    """The demo agencies and one account per role (and per agency); returns how many were new."""
    # One hash for the shared demo password: argon2 is slow by design, and these are demo accounts.
    password_hash = hash_password(service.settings.demo_password)
    created_users = 0
    with service.transaction() as db:
        for code, (name, email) in AGENCIES.items():
            ensure_agency(db, code, name, email)
        for email, (role, name) in STAFF.items():
            created_users += create_user(db, email, role, name=name, password_hash=password_hash, now=service.now())[1]
        for code, (name, _email) in AGENCIES.items():
            created_users += create_user(db, f"{code}@demo.test", "partner", agency=code, name=f"{name} officer",
                                         password_hash=password_hash, now=service.now())[1]
    return created_users


def _demo_cases(service: CaseReview) -> list[str]:
    today = service.now().date()
    made = []
    # 1. Just received: partners are asked for their incident history.
    made.append(service.apply(application(today, name="Jordan Lee", postcode="EX1 1AA",
                                          reported_to="housing"))["reference"])
    # 2. Third party: waiting for the victim's consent. Mary has no email, so the coordinator asks
    #    her by phone or letter (a letter has gone to her address; her carer is told, without a link).
    made.append(service.apply(application(today, third_party=True, name="Mary Jones", postcode="EX2 2BB",
                                          victim_contact={"phone": "01632 960222", "preferred_contact": "phone",
                                                          "address": "4 Mill Lane, Exampleton"}))["reference"])
    # 3. Histories in: the coordinator verifies them.
    ref = service.apply(application(today, name="Chris Patel", postcode="EX3 3CC", reported_to="housing"))["reference"]
    Walker(service, ref).provide_histories()
    made.append(ref)
    # 4. Threshold met and confirmed: the panel is being arranged.
    made.append(_decided(service, application(today, hate=True, name="Taylor Green", postcode="EX4 4DD")).reference)
    # 5. Panel held (fire and rescue invited too: rubbish set alight in the bin store): actions are
    #    being delivered, one by each agency at the panel.
    walker = _decided(service, application(today, name="Morgan Smith", postcode="EX5 5EE"))
    walker.schedule_panel(today + timedelta(days=14), agencies=("police", "council", "fire"))
    walker.panel_inputs()
    walker.outcome([
        {"description": "Joint visit to the neighbour", "agency": "police", "owner": "PC Evans",
         "due": (today + timedelta(days=28)).isoformat()},
        {"description": "Install noise monitoring", "agency": "council", "owner": "Environmental health",
         "due": (today + timedelta(days=42)).isoformat()},
        {"description": "Home fire safety visit, and clear the rubbish set alight in the bin store",
         "agency": "fire", "owner": "Watch Manager Ahmed", "due": (today + timedelta(days=21)).isoformat()},
    ])
    made.append(walker.reference)
    # 6. Panel papers in (agency summaries, the victim's statement): the chair records the outcome.
    walker = _decided(service, application(today, name="Sam Khan", postcode="EX6 6FF"))
    walker.schedule_panel(today + timedelta(days=10))
    walker.panel_inputs()
    made.append(walker.reference)
    # 7. The applicant of case 4 asks for an escalation: the reviewer decides.
    service.escalate(made[3], "Nobody has told me when the panel will meet.")
    # 8. The process owner has a draft of the next version open in the studio.
    start_draft(service, by="owner@demo.test",
                note="Letters: check the wording with the victims' reference group before publishing")
    return made


def _decided(service: CaseReview, app: dict) -> Walker:
    """A case whose histories are in and whose threshold decision is confirmed."""
    walker = Walker(service, service.apply(app)["reference"])
    walker.provide_histories()
    walker.verify(app["incidents"])
    walker.confirm()
    return walker
